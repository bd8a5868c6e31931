"""The ``onevision-hf`` command line: one subcommand per module in `onevision_hf.commands`.

Each command module defines ``add_parser(subparsers)`` and imports its heavy dependencies only when run, so
``onevision-hf --help`` stays fast. ``python -m onevision_hf.cli`` works too (e.g. under ``accelerate launch``).
"""

import argparse
import importlib
import sys

COMMANDS = ("demo", "encode", "select", "precompute", "convert_llava", "make_tiny_llava", "finetune", "generate",
            "pretrain", "pseudo_labels", "eval", "probe", "make_synthetic_dataset")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onevision-hf", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"onevision_hf.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; bad input (a typed error of this package) ends in one line on stderr and exit code 2."""
    from .errors import AttentionBackendUnavailableError, OneVisionInputError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (OneVisionInputError, AttentionBackendUnavailableError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
