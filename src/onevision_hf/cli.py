"""The ``onevision-hf`` command line: one subcommand per module in `onevision_hf.commands`.

Each command module defines ``add_parser(subparsers)`` and imports its heavy dependencies only when run, and this
module imports nothing heavy either: the console script (`onevision_hf_cli`) parses the command line before
``onevision_hf`` itself is initialised, so ``onevision-hf --help`` returns without importing torch or
transformers. ``python -m onevision_hf.cli`` works too (e.g. under ``accelerate launch`` or ``torchrun``).
"""

import argparse
import importlib
import sys

COMMANDS = ("demo", "encode", "select", "precompute", "convert_llava", "make_tiny_llava", "finetune", "generate",
            "pretrain", "pseudo_labels", "eval", "tasks", "probe", "make_synthetic_dataset")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onevision-hf", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"onevision_hf.commands.{name}").add_parser(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run a parsed subcommand; bad input (a typed error of this package) ends in one line on stderr and exit
    code 2."""
    from .errors import AttentionBackendUnavailableError, OneVisionInputError

    try:
        return args.func(args) or 0
    except (OneVisionInputError, AttentionBackendUnavailableError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return run(parser, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
