"""Paths of the example data and checkpoints bundled in the repository's ``assets/`` folder.

They exist in a source checkout (the README installs it editable); a wheel install has no ``assets/``, and
asking for one then raises an error that says so.
"""

from pathlib import Path

from .errors import OneVisionInputError

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLE_VIDEO = "media/beach-portrait-h264.mp4"
DEFAULT_ENCODER = "default-model"


def bundled(relative_path: str) -> Path:
    path = ASSETS / relative_path
    if not path.exists():
        raise OneVisionInputError(
            f"bundled asset {relative_path} is not at {path}: the assets ship with a source checkout of "
            "onevision-hf (pip install -e .); pass your own file instead."
        )
    return path
