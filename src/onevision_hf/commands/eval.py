"""``onevision-hf eval --model DIR --tasks chartqa_local,videomme_local --output OUT``: score a OneVision-LLaVA model.

Tasks are lmms-eval task YAMLs (the bundled ones, ``onevision-hf tasks``, plus any ``--include-path``), named by
task or tag (``mvbench_local`` runs every MVBench sub-task, ``onevision_hf_local`` every bundled task). Data comes
from local files under ``--data-root`` (default: the folder of each task file, where the bundled sample data
lies), never from the working directory. Writes ``OUT/results.json``, ``OUT/samples_<task>.jsonl``,
``OUT/summary.md`` and ``OUT/summary.png`` and prints the summary table.

Several processes (``accelerate launch --num_processes N -m onevision_hf.cli eval ...``) split the documents
and gather them before scoring: the outputs equal a one-process run's, document for document.
"""

from pathlib import Path

from .model_dirs import checked_model_dir


def add_parser(subparsers):
    parser = subparsers.add_parser("eval", help="evaluate a OneVision-LLaVA model on lmms-eval-style tasks",
                                   description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="saved OneVision-LLaVA model + processor directory")
    parser.add_argument("--tasks", required=True, help="comma-separated task names or tags")
    parser.add_argument("--output", type=Path, required=True, help="directory for results, samples and summary")
    parser.add_argument("--data-root", type=Path,
                        help="root of the task data (default: each task file's folder; the bundled sample data)")
    parser.add_argument("--include-path", type=Path, action="append", default=[],
                        help="another directory of task YAMLs (repeatable)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N documents of each task")
    parser.add_argument("--batch-size", type=int, default=1, help="documents per generate call (default: 1)")
    parser.set_defaults(func=run)


def run(args):
    import datasets
    from accelerate import PartialState

    from ..evaluation.model_adapter import OneVisionLlavaAdapter
    from ..evaluation.runner import evaluate_task, summary_table, write_outputs
    from ..evaluation.tasks import load_task, resolve_task_names

    checked_model_dir(args.model)
    datasets.disable_progress_bars()
    state = PartialState()
    names = resolve_task_names([name.strip() for name in args.tasks.split(",") if name.strip()], args.include_path)
    tasks = [load_task(name, args.data_root, args.include_path) for name in names]
    model = OneVisionLlavaAdapter.from_pretrained(args.model, batch_size=args.batch_size, device=state.device)
    results = [evaluate_task(model, task, limit=args.limit, batch_size=args.batch_size) for task in tasks]
    if state.is_main_process:
        write_outputs(results, args.output)
        print(summary_table(results), end="")
        print(f"results, samples and summary -> {args.output}")
    state.wait_for_everyone()
