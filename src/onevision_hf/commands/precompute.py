"""``onevision-hf precompute INPUT OUTPUT``: select patches for every video of a manifest into a dataset.

INPUT is a CSV / JSONL manifest or a saved `datasets` dataset with a video path column (other columns are
kept). OUTPUT becomes a `datasets` dataset (`datasets.load_from_disk(OUTPUT)`), written as Arrow shards.
Run it again to resume. Several machines: start one worker per machine with the same arguments; the rank and
world size come from `torchrun` / `accelerate launch` / SLURM, or from --rank / --world-size.
"""

from pathlib import Path

from .selection_options import add_selection_arguments, selection_overrides


def add_parser(subparsers):
    parser = subparsers.add_parser("precompute", help="codec selections for a manifest of videos -> a dataset",
                                   description=__doc__)
    parser.add_argument("input", type=Path, help="manifest: .csv, .jsonl, or a saved datasets folder")
    parser.add_argument("output", type=Path, help="output dataset folder")
    parser.add_argument("--path-column", default="path", help="manifest column with video paths (default: path)")
    parser.add_argument("--num-proc", type=int, default=1, help="processes on this machine (default: 1)")
    parser.add_argument("--shard-size", type=int, default=64, help="videos per Arrow shard (default: 64)")
    parser.add_argument("--rank", type=int, help="this worker's rank (default: from the environment, else 0)")
    parser.add_argument("--world-size", type=int, help="number of workers (default: from the environment, else 1)")
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..data.precompute import PrecomputeJob, run_precompute, worker_rank_and_world

    rank, world_size = worker_rank_and_world(args.rank, args.world_size)
    job = PrecomputeJob(manifest=args.input, output=args.output, preset=args.preset,
                        overrides=selection_overrides(args), path_column=args.path_column,
                        shard_size=args.shard_size, num_proc=args.num_proc, rank=rank, world_size=world_size)
    report = run_precompute(job)
    print(report.summary(args.output))
    return report.exit_code
