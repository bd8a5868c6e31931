"""``onevision-hf tasks``: the evaluation tasks, their tags and metrics; ``--path`` prints the bundled task folder.

The bundled task files (and the sample data beneath them) sit in one folder of the installed package, which is
what lmms-eval's ``--include_path`` takes: ``--include_path "$(onevision-hf tasks --path)"``.
"""

from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser("tasks", help="list the evaluation tasks (or print their folder)",
                                   description=__doc__)
    parser.add_argument("--path", action="store_true", help="print only the bundled task folder")
    parser.add_argument("--include-path", type=Path, action="append", default=[],
                        help="another directory of task YAMLs to list (repeatable)")
    parser.set_defaults(func=run)


def run(args):
    from ..evaluation.tasks import TASKS_DIR, task_summaries

    if args.path:
        print(TASKS_DIR)
        return 0
    lines = ["| task | tags | metrics | data files | task file |", "|---|---|---|---|---|"]
    for summary in task_summaries(args.include_path):
        lines.append(f"| {summary.name} | {', '.join(summary.tags)} | {', '.join(summary.metrics)} | "
                     f"{', '.join(summary.data_files)} | {summary.path} |")
    print("\n".join(lines))
    print(f"\nbundled task folder (lmms-eval --include_path): {TASKS_DIR}")
    return 0
