"""``onevision-hf make-synthetic-dataset ROOT``: the labelled synthetic video dataset (`synthetic_dataset`).

Renders H.264 clips whose labels need motion and brief events (``direction`` of a travelling disc, ``which_moved``:
the tile that jumps for 3 frames, ``flash_count``: 0-3 flashes of 2 frames) into ``ROOT/<split>/``, with
``ROOT/<split>.csv`` (path + every task) and ``ROOT/<split>-<task>.csv`` (``path,label``, for ``onevision-hf probe``).
The ``pretrain`` split is also saved as ``ROOT/pretrain-dataset`` for ``onevision-hf pretrain``. The same
``--seed`` and counts give the same files.
"""

from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser("make-synthetic-dataset", help="generate the labelled synthetic video dataset",
                                   description=__doc__)
    parser.add_argument("root", type=Path, help="output folder")
    parser.add_argument("--num-train", type=int, default=480, help="training clips (default: %(default)s)")
    parser.add_argument("--num-val", type=int, default=160, help="validation clips (default: %(default)s)")
    parser.add_argument("--num-test", type=int, default=320, help="test clips (default: %(default)s)")
    parser.add_argument("--num-pretrain", type=int, default=0,
                        help="clips of the pretraining split, 0 for none (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args):
    from ..synthetic_dataset import write_dataset

    counts = {"train": args.num_train, "val": args.num_val, "test": args.num_test, "pretrain": args.num_pretrain}
    tables = write_dataset(args.root, {split: count for split, count in counts.items() if count}, seed=args.seed)
    for split, table in tables.items():
        print(f"{split:9s} {counts[split]} clips: {table}")
    return 0
