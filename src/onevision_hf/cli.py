"""The ``onevision-hf`` command line: one subcommand per module in `onevision_hf.commands`.

Each command module defines ``add_parser(subparsers)`` and imports its heavy dependencies only when run, so
``onevision-hf --help`` stays fast. ``python -m onevision_hf.cli`` works too (e.g. under ``accelerate launch``).
"""

import argparse
import importlib

COMMANDS = ("demo", "encode", "select", "precompute", "convert_llava", "make_tiny_llava", "finetune", "generate",
            "pretrain", "pseudo_labels", "eval", "probe")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onevision-hf", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"onevision_hf.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
