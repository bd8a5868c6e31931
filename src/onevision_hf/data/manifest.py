"""Manifests: the list of videos a dataset-scale job reads (CSV, JSON lines, or a saved `datasets` dataset)."""

from pathlib import Path

import datasets

from ..errors import OneVisionInputError

MANIFEST_SUFFIXES = {".csv": "csv", ".jsonl": "json", ".json": "json"}


def read_manifest(source: str | Path, path_column: str = "path") -> datasets.Dataset:
    """Load a manifest as a `datasets.Dataset` whose ``path_column`` holds absolute video paths.

    Relative paths are taken relative to the manifest file's folder (or the saved dataset's folder); every
    other column is kept as it is.
    """
    source = Path(source)
    if source.is_dir():
        try:
            manifest = datasets.load_from_disk(str(source))
        except FileNotFoundError as error:
            raise OneVisionInputError(f"manifest folder {source} is not a saved `datasets` dataset: {error}") from None
        base = source
    elif source.suffix in MANIFEST_SUFFIXES:
        if not source.is_file():
            raise OneVisionInputError(f"manifest {source} does not exist.")
        if source.stat().st_size < 4096 and not source.read_text(errors="replace").strip():
            raise OneVisionInputError(f"manifest {source} lists no videos (the file is empty).")
        try:
            manifest = datasets.load_dataset(MANIFEST_SUFFIXES[source.suffix], data_files=str(source), split="train",
                                             cache_dir=None, keep_in_memory=True)
        except ValueError as error:
            if "corresponds to no data" in str(error):  # a header without rows
                raise OneVisionInputError(f"manifest {source} lists no videos (no rows).") from None
            raise OneVisionInputError(f"manifest {source} cannot be read: {error}") from None
        except datasets.exceptions.DatasetGenerationError as error:
            raise OneVisionInputError(f"manifest {source} cannot be read: {error.__cause__ or error}") from None
        base = source.parent
    else:
        raise OneVisionInputError(
            f"manifest {source} must be a .csv, .jsonl or .json file, or a folder saved by `datasets`."
        )
    if path_column not in manifest.column_names:
        raise OneVisionInputError(
            f"manifest {source} has no {path_column!r} column (columns: {manifest.column_names}); "
            "name the video path column with --path-column."
        )
    if len(manifest) == 0:
        raise OneVisionInputError(f"manifest {source} lists no videos.")

    def absolute(row):
        path = Path(str(row[path_column]))
        return {path_column: str(path if path.is_absolute() else (base / path).resolve())}

    return manifest.map(absolute, keep_in_memory=True, desc="manifest paths")
