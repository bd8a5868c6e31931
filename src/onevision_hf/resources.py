"""The example media, models and tokenizer bundled with the package, as package data (``onevision_hf/assets``).

The same paths serve a source checkout, an editable install and a regular wheel, from any working directory: in
the repository ``src/onevision_hf/assets`` is a link to the top-level ``assets/`` folder, and a wheel build
copies what it points to into the package (``pyproject.toml``, ``[tool.setuptools.package-data]``). The
golden test fixtures under ``assets/`` stay out of the wheel. The evaluation tasks' sample data lives beside the
task files (`onevision_hf.evaluation.tasks.TASKS_DIR`).
"""

from importlib.resources import files
from pathlib import Path

from .errors import OneVisionInputError

ASSETS = Path(str(files("onevision_hf") / "assets")).resolve()  # in a checkout: the top-level assets/
EXAMPLE_VIDEO = "media/beach-portrait-h264.mp4"
DEFAULT_ENCODER = "default-model"
TINY_ENCODER = "reference-encoder/tiny-encoder"
TINY_LLM = "tiny-llm"


def bundled(relative_path: str) -> Path:
    """The bundled file or folder ``relative_path`` (e.g. `EXAMPLE_VIDEO`) of the installed package."""
    path = ASSETS / relative_path
    if not path.exists():
        raise OneVisionInputError(
            f"bundled asset {relative_path} is not at {path}: this installation of onevision-hf lacks its package "
            "data (reinstall it); pass your own file instead."
        )
    return path
