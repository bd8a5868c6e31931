"""The check every command that takes a saved model directory makes before loading it."""

from pathlib import Path

MODEL_FILE = "config.json"
ADAPTER_FILE = "adapter_config.json"  # a PEFT adapter saved by `onevision-hf finetune`


def checked_model_dir(directory, flag: str = "--model", adapters: bool = False) -> Path:
    """``directory`` as a Path when it holds a saved model (or, with ``adapters``, a PEFT adapter); otherwise
    `OneVisionInputError` naming the flag and the folder, instead of transformers' attempt to read it as a hub id."""
    from ..errors import OneVisionInputError

    directory = Path(directory)
    if not directory.is_dir():
        raise OneVisionInputError(f"{flag} {directory}: no such directory.")
    markers = (MODEL_FILE, ADAPTER_FILE) if adapters else (MODEL_FILE,)
    if not any((directory / marker).is_file() for marker in markers):
        raise OneVisionInputError(f"{flag} {directory} is not a saved model directory (no {' or '.join(markers)}).")
    return directory
