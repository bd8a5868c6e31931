"""Command-line options of a video selection recipe, shared by every command that selects patches."""

import argparse


def budget_value(text: str) -> int | float:
    """``"10368"`` -> a patch count, ``"0.125"`` -> a fraction of the dense grid."""
    value = float(text)
    return int(value) if value.is_integer() and value > 1 else value


SELECTION_OPTIONS = (  # (flag, processor parameter, argparse keyword arguments)
    ("--num-frames", "num_frames", {"type": int, "help": "frames to sample (T)"}),
    ("--patch-size", "patch_size", {"type": int, "help": "patch side in pixels"}),
    ("--resize", "resize", {"help": "native | square-pad:S | shorter-crop:S"}),
    ("--budget", "budget", {"type": budget_value, "help": "patches to keep: a count, or a fraction in (0, 1]"}),
    ("--keep-first-frame", "keep_first_frame",
     {"action": argparse.BooleanOptionalAction, "help": "keep the first sampled frame whole"}),
    ("--selection-unit", "selection_unit",
     {"type": int, "choices": (1, 2), "help": "select single patches or 2x2 blocks"}),
    ("--motion-source", "motion_source",
     {"choices": ("auto", "pixel"), "help": "codec vectors when available (auto) or pixel-domain block matching"}),
)


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("default", "reference"), default="default",
                        help="selection recipe; the options below override it (default: %(default)s)")
    for flag, _, keywords in SELECTION_OPTIONS:
        parser.add_argument(flag, default=None, **keywords)


def selection_overrides(args: argparse.Namespace) -> dict:
    """The processor parameters the user set on the command line."""
    return {name: getattr(args, name) for _, name, _ in SELECTION_OPTIONS if getattr(args, name) is not None}
