"""Dataset-scale codec selection: a manifest of videos -> a `datasets` dataset of selections (Arrow shards).

Layout of ``OUTPUT/``::

    precompute.json                       the job's parameters (a resumed run must match them)
    shards/shard-00003-of-00010.arrow     one Arrow file per shard of ``shard_size`` manifest rows
    state.json, dataset_info.json         the merged index: `datasets.load_from_disk(OUTPUT)` reads all shards

Shard boundaries depend only on the manifest and ``shard_size``, never on the number of workers, and a
selection depends only on the video and the processor's parameters: one worker, several processes or several
machines write identical shards. A shard is written to a temporary file and renamed when complete, so an
interrupted run started again skips finished shards. Whichever worker finds every shard complete writes the
index (an idempotent, atomic rename), so no barrier between machines is needed.

Each row keeps the manifest's columns and adds ``positions`` (K, 3) int32 rows (t, h, w), ``patches``
the (K, 3, p, p) uint8 pixels of the kept patches as raw bytes (`stored_selection` views them as an array
without a copy; an Arrow list of K*3*p*p integers would cost a Python object per pixel to read back),
``frame_indices`` (T,), ``temporal_positions`` (T,), ``grid_size`` (T, grid_h, grid_w), ``patch_size``,
``method``, ``fallback_reason``, ``selection`` (the processor parameters, JSON) and ``error`` (None, or why the
video failed; such rows have no patches, and never stop the run).
"""

import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
from datasets.arrow_writer import ArrowWriter
from tqdm.auto import tqdm

from ..errors import OneVisionInputError
from ..processors.video_processing_onevision import OneVisionVideoProcessor
from .manifest import read_manifest

SHARD_DIR = "shards"
JOB_FILE = "precompute.json"
RANK_ENVIRONMENT = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))  # torchrun/accelerate, SLURM


@dataclass(frozen=True)
class PrecomputeJob:
    manifest: Path
    output: Path
    preset: str = "default"
    overrides: dict = field(default_factory=dict)  # OneVisionVideoProcessor parameters
    path_column: str = "path"
    shard_size: int = 64
    num_proc: int = 1
    rank: int = 0
    world_size: int = 1

    def processor(self) -> OneVisionVideoProcessor:
        return OneVisionVideoProcessor(preset=self.preset, **self.overrides)


@dataclass
class PrecomputeReport:
    videos_written: int  # by this worker, this run
    shards_written: int
    shards_skipped: int  # already complete (resumed)
    failures: list[tuple[str, str]]  # (path, error) of this run's failed videos
    merged: bool  # the index covers every shard


def worker_rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit values, else the environment of `torchrun` / `accelerate launch` / SLURM, else (0, 1)."""
    if rank is None and world_size is None:
        for rank_key, world_key in RANK_ENVIRONMENT:
            if rank_key in os.environ and world_key in os.environ:
                rank, world_size = int(os.environ[rank_key]), int(os.environ[world_key])
                break
    rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise OneVisionInputError(f"worker rank {rank} must lie in [0, world size {world_size}).")
    return rank, world_size


def shard_ranges(num_rows: int, shard_size: int) -> list[range]:
    if shard_size < 1:
        raise OneVisionInputError(f"shard_size must be >= 1, got {shard_size}.")
    return [range(start, min(start + shard_size, num_rows)) for start in range(0, num_rows, shard_size)]


def shard_path(output: Path, index: int, count: int) -> Path:
    return output / SHARD_DIR / f"shard-{index:05d}-of-{count:05d}.arrow"


def output_features(manifest_features: datasets.Features) -> datasets.Features:
    return datasets.Features({
        **manifest_features,
        "positions": datasets.Array2D((None, 3), "int32"),
        "patches": datasets.Value("binary"),
        "patch_size": datasets.Value("int32"),
        "frame_indices": datasets.Sequence(datasets.Value("int64")),
        "temporal_positions": datasets.Sequence(datasets.Value("int64")),
        "grid_size": datasets.Sequence(datasets.Value("int32")),
        "method": datasets.Value("string"),
        "fallback_reason": datasets.Value("string"),
        "selection": datasets.Value("string"),
        "error": datasets.Value("string"),
    })


def selection_parameters(processor: OneVisionVideoProcessor) -> str:
    """The parameters that decide a selection, as canonical JSON (stored with every row)."""
    return json.dumps({"preset": processor.preset, **dataclasses.asdict(processor.selection_recipe())}, sort_keys=True)


def select_record(processor: OneVisionVideoProcessor, path: str) -> dict:
    """One video -> its selection columns; a video that cannot be read gives an ``error`` instead."""
    try:
        selection = processor.select(path)
    except Exception as error:  # noqa: BLE001 (a failed video never stops the run; its error is recorded)
        return {
            "positions": np.zeros((0, 3), np.int32), "patches": b"", "patch_size": processor.patch_size,
            "frame_indices": [], "temporal_positions": [], "grid_size": [], "method": None,
            "fallback_reason": None, "error": f"{type(error).__name__}: {error}",
        }
    return {
        "positions": selection.positions.astype(np.int32),
        "patches": np.ascontiguousarray(selection.patches, dtype=np.uint8).tobytes(),
        "patch_size": processor.patch_size,
        "frame_indices": selection.frame_indices.tolist(),
        "temporal_positions": selection.temporal_positions.tolist(),
        "grid_size": list(selection.grid_size),
        "method": selection.method,
        "fallback_reason": selection.fallback_reason,
        "error": None,
    }


_WORKER_PROCESSOR: OneVisionVideoProcessor | None = None


def _init_worker(job: PrecomputeJob) -> None:
    global _WORKER_PROCESSOR
    _WORKER_PROCESSOR = job.processor()


def _select_in_worker(path: str) -> dict:
    return select_record(_WORKER_PROCESSOR, path)


def _records(job: PrecomputeJob, paths: list[str]) -> Iterator[dict]:
    """Selection records in manifest order, computed by ``num_proc`` processes."""
    if job.num_proc <= 1:
        processor = job.processor()
        yield from (select_record(processor, path) for path in paths)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(job.num_proc, initializer=_init_worker, initargs=(job,)) as pool:
        yield from pool.imap(_select_in_worker, paths, chunksize=1)


def _job_description(job: PrecomputeJob, manifest: datasets.Dataset, parameters: str) -> dict:
    paths = "\n".join(manifest[job.path_column]).encode()
    return {"selection": json.loads(parameters), "shard_size": job.shard_size, "num_rows": len(manifest),
            "manifest_sha256": hashlib.sha256(paths).hexdigest()}


def _check_or_write_job_file(output: Path, description: dict) -> None:
    job_file = output / JOB_FILE
    if job_file.exists():
        previous = json.loads(job_file.read_text())
        if previous != description:
            raise OneVisionInputError(
                f"{output} holds a precompute made with other parameters or another manifest ({job_file}); "
                "choose a new output folder or delete it to start over."
            )
        return
    output.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(job_file, json.dumps(description, indent=2, sort_keys=True))


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _write_shard(path: Path, features: datasets.Features, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    writer = ArrowWriter(features=features, path=str(temporary))
    for row in rows:
        writer.write(features.encode_example(row))
    writer.finalize()
    writer.close()
    os.replace(temporary, path)


def merge_shard_index(output: Path, features: datasets.Features, shard_count: int, fingerprint: str) -> bool:
    """Write ``state.json`` / ``dataset_info.json`` over all shards once every shard exists; return whether it did."""
    shards = [shard_path(output, index, shard_count) for index in range(shard_count)]
    if not all(shard.exists() for shard in shards):
        return False
    state = {
        "_data_files": [{"filename": shard.relative_to(output).as_posix()} for shard in shards],
        "_fingerprint": fingerprint, "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": None,
    }
    info = datasets.DatasetInfo(description="OneVision codec patch selections", features=features)
    _atomic_write_text(output / "dataset_info.json", json.dumps(dataclasses.asdict(info), indent=2))
    _atomic_write_text(output / "state.json", json.dumps(state, indent=2, sort_keys=True))
    return True


def run_precompute(job: PrecomputeJob, progress: bool = True) -> PrecomputeReport:
    manifest = read_manifest(job.manifest, job.path_column)
    processor = job.processor()
    parameters = selection_parameters(processor)
    description = _job_description(job, manifest, parameters)
    _check_or_write_job_file(job.output, description)
    features = output_features(manifest.features)
    shards = shard_ranges(len(manifest), job.shard_size)
    mine = [index for index in range(len(shards)) if index % job.world_size == job.rank]
    pending = [index for index in mine if not shard_path(job.output, index, len(shards)).exists()]
    rows = [row for index in pending for row in manifest.select(shards[index])]

    failures, written = [], 0
    records = _records(job, [row[job.path_column] for row in rows])
    bar = tqdm(total=len(rows), unit="video", desc=f"precompute (worker {job.rank}/{job.world_size})",
               disable=not progress)
    with bar:
        cursor = 0
        for index in pending:
            shard_rows = []
            for row in rows[cursor:cursor + len(shards[index])]:
                record = next(records)
                if record["error"] is not None:
                    failures.append((row[job.path_column], record["error"]))
                shard_rows.append({**row, **record, "selection": parameters})
                bar.update(1)
            cursor += len(shards[index])
            _write_shard(shard_path(job.output, index, len(shards)), features, shard_rows)
            written += 1
    fingerprint = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    merged = merge_shard_index(job.output, features, len(shards), fingerprint)
    return PrecomputeReport(videos_written=len(rows), shards_written=written,
                            shards_skipped=len(mine) - len(pending), failures=failures, merged=merged)


@dataclass
class StoredSelection:
    """A precomputed selection read back from the dataset; `OneVisionVideoProcessor.pack` accepts it."""

    positions: np.ndarray  # (K, 3) int64 (t, h, w)
    patches: np.ndarray  # (K, 3, p, p) uint8
    frame_indices: np.ndarray
    method: str


def stored_selection(row: dict) -> StoredSelection:
    """A dataset row (numpy-formatted or plain) -> `StoredSelection`; rows with an ``error`` are refused."""
    if row.get("error"):
        raise OneVisionInputError(f"video {row.get('path', '?')} failed in precompute: {row['error']}")
    positions = np.asarray(row["positions"], dtype=np.int64).reshape(-1, 3)
    patch_size = int(row["patch_size"])
    shape = (len(positions), 3, patch_size, patch_size)
    # `with_format("numpy")` turns binary into numpy.bytes_, which drops trailing NUL bytes: pad them back.
    raw = bytes(row["patches"]).ljust(int(np.prod(shape)), b"\x00")
    return StoredSelection(
        positions=positions,
        patches=np.frombuffer(raw, dtype=np.uint8).reshape(shape),
        frame_indices=np.asarray(row["frame_indices"], dtype=np.int64),
        method=row["method"],
    )
