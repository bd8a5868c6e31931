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

import collections
import dataclasses
import hashlib
import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
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
WORKER_ATTEMPTS = 2  # a video whose worker process dies is tried once more on a fresh worker


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

    def __post_init__(self):
        for name, minimum in (("shard_size", 1), ("num_proc", 1), ("world_size", 1), ("rank", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise OneVisionInputError(f"{name} (--{name.replace('_', '-')}) must be an integer >= {minimum}, "
                                          f"got {value!r}.")

    def processor(self) -> OneVisionVideoProcessor:
        return OneVisionVideoProcessor(preset=self.preset, **self.overrides)


@dataclass
class PrecomputeReport:
    videos_written: int  # by this worker, this run
    shards_written: int
    shards_skipped: int  # already complete (resumed)
    failures: list[tuple[str, str]]  # (path, error) of this run's failed videos, recorded in their rows
    merged: bool  # the index covers every shard
    rank: int = 0
    world_size: int = 1
    lost_shards: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    # (shard index, [(path, why)]): shards left unwritten because a worker process died on one of their videos

    @property
    def exit_code(self) -> int:
        """0 when every shard of this worker was written (failed videos are recorded, not fatal), else 1."""
        return 1 if self.lost_shards else 0

    def summary(self, output: Path) -> str:
        lines = [f"worker {self.rank}/{self.world_size}: {self.videos_written} videos in {self.shards_written} shards "
                 f"({self.shards_skipped} shards already done), {len(self.failures)} failed"]
        lines += [f"  failed: {path}: {error}" for path, error in self.failures]
        for index, videos in self.lost_shards:
            lines += [f"  shard {index} not written: {path}: {why}" for path, why in videos]
        if self.lost_shards:
            lines.append(f"{len(self.lost_shards)} shard(s) not written because worker processes died; run the same "
                         "command again to retry them")
        elif self.merged:
            lines.append(f"dataset ready: datasets.load_from_disk({str(output)!r})")
        else:
            lines.append("other workers' shards are still missing; the last worker to finish writes the index")
        return "\n".join(lines)


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


@dataclass(frozen=True)
class LostVideo:
    """A video whose worker process died (killed, out of memory, crashed decoder) on every attempt."""

    reason: str


def _records(job: PrecomputeJob, paths: list[str]) -> Iterator[dict | LostVideo]:
    """Selection records in manifest order, computed by ``num_proc`` processes."""
    if job.num_proc <= 1:
        processor = job.processor()
        yield from (select_record(processor, path) for path in paths)
        return
    yield from _records_in_processes(job, paths)


def _worker_loop(job: PrecomputeJob, connection: Connection) -> None:
    """A worker process: receive ``(index, path)``, send back ``(index, record)``, until it receives None."""
    processor = job.processor()
    while (task := connection.recv()) is not None:
        index, path = task
        connection.send((index, select_record(processor, path)))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    task: int | None = None  # index of the path it is selecting


def _start_worker(context, job: PrecomputeJob) -> _Worker:
    ours, theirs = context.Pipe()
    process = context.Process(target=_worker_loop, args=(job, theirs), daemon=True)
    process.start()
    theirs.close()
    return _Worker(process, ours)


def _death_reason(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _records_in_processes(job: PrecomputeJob, paths: list[str]) -> Iterator[dict | LostVideo]:
    """Records in manifest order from ``num_proc`` worker processes, each given one video at a time.

    A worker that dies (``kill -9``, the OOM killer, a decoder crash) is replaced; the video it held is tried again
    on a fresh worker, up to `WORKER_ATTEMPTS` times, then given as a `LostVideo`. At most ``2 * num_proc`` videos
    past the next one in order are in flight or waiting, so memory stays bounded.
    """
    context = multiprocessing.get_context("spawn")
    results: dict[int, dict | LostVideo] = {}
    attempts: collections.Counter = collections.Counter()
    waiting = collections.deque(range(len(paths)))
    next_out, idle_deaths, window = 0, 0, 2 * job.num_proc
    workers = [_start_worker(context, job) for _ in range(min(job.num_proc, len(paths)))]
    try:
        while True:
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1
            if next_out == len(paths):
                break
            for worker in workers:  # after the yields: they move the window
                if worker.task is None and waiting and waiting[0] < next_out + window:
                    worker.task = waiting.popleft()
                    worker.connection.send((worker.task, paths[worker.task]))
            ready = set(wait([w.connection for w in workers] + [w.process.sentinel for w in workers]))
            for worker in [w for w in workers if w.connection in ready or w.process.sentinel in ready]:
                try:
                    if worker.connection.poll():
                        index, record = worker.connection.recv()
                        results[index], worker.task = record, None
                        continue
                except (EOFError, OSError):  # it died while sending
                    pass
                if worker.process.is_alive():
                    continue
                worker.process.join()
                reason = _death_reason(worker.process)
                if worker.task is None:
                    idle_deaths += 1
                    if idle_deaths > WORKER_ATTEMPTS * job.num_proc:
                        raise RuntimeError(f"precompute worker processes keep dying before taking a video ({reason}).")
                else:
                    attempts[worker.task] += 1
                    if attempts[worker.task] < WORKER_ATTEMPTS:
                        waiting.appendleft(worker.task)
                    else:
                        results[worker.task] = LostVideo(
                            f"the worker process selecting it died {attempts[worker.task]} times ({reason})")
                workers[workers.index(worker)] = _start_worker(context, job)
    finally:
        for worker in workers:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        for worker in workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()


def _job_description(job: PrecomputeJob, manifest: datasets.Dataset, parameters: str) -> dict:
    """What decides the output: selection parameters, sharding, and every manifest column (type and values)."""
    return {"selection": json.loads(parameters), "shard_size": job.shard_size, "num_rows": len(manifest),
            "path_column": job.path_column,
            "columns": {name: str(feature) for name, feature in manifest.features.items()},
            "column_sha256": _column_hashes(manifest)}


def _column_hashes(manifest: datasets.Dataset) -> dict[str, str]:
    digests = {name: hashlib.sha256() for name in manifest.column_names}
    for batch in manifest.iter(batch_size=4096):
        for name, values in batch.items():
            digests[name].update(json.dumps(values, sort_keys=True, default=repr).encode())
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _job_changes(previous: dict, current: dict) -> list[str]:
    """What differs between the job an output was made by and this one, in words."""
    if set(previous) != set(current):
        return ["it was written by another version of onevision-hf (a job file without per-column fingerprints)"]
    changes = [f"selection parameter {key}: {previous['selection'].get(key)!r} -> {current['selection'].get(key)!r}"
               for key in sorted(set(previous["selection"]) | set(current["selection"]))
               if previous["selection"].get(key) != current["selection"].get(key)]
    changes += [f"{key}: {previous[key]!r} -> {current[key]!r}" for key in ("shard_size", "num_rows", "path_column")
                if previous[key] != current[key]]
    old_columns, new_columns = previous["columns"], current["columns"]
    if added := sorted(set(new_columns) - set(old_columns)):
        changes.append(f"manifest column(s) added: {added}")
    if removed := sorted(set(old_columns) - set(new_columns)):
        changes.append(f"manifest column(s) removed: {removed}")
    common = [name for name in new_columns if name in old_columns]
    if retyped := [name for name in common if old_columns[name] != new_columns[name]]:
        changes.append(f"manifest column type(s) changed: {retyped}")
    if edited := [name for name in common if previous["column_sha256"][name] != current["column_sha256"][name]
                  and name not in retyped]:
        changes.append(f"manifest column value(s) changed: {edited}")
    return changes


def _check_or_write_job_file(output: Path, description: dict) -> None:
    job_file = output / JOB_FILE
    if job_file.exists():
        previous = json.loads(job_file.read_text())
        if previous != description:
            raise OneVisionInputError(
                f"{output} holds a precompute made with other parameters or another manifest ({job_file}): "
                f"{'; '.join(_job_changes(previous, description))}. Choose a new output folder, or delete it to "
                "start over."
            )
        return
    output.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(job_file, json.dumps(description, indent=2, sort_keys=True))


def _remove_interrupted_writes(path: Path) -> None:
    """Delete the temporary files an interrupted run left for the shard at ``path`` (only this worker writes it)."""
    for temporary in path.parent.glob(f"{path.name}.tmp-*"):
        temporary.unlink(missing_ok=True)


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
    for index in pending:
        _remove_interrupted_writes(shard_path(job.output, index, len(shards)))
    rows = [row for index in pending for row in manifest.select(shards[index])]

    failures, lost_shards, written, videos_written = [], [], 0, 0
    records = _records(job, [row[job.path_column] for row in rows])
    bar = tqdm(total=len(rows), unit="video", desc=f"precompute (worker {job.rank}/{job.world_size})",
               disable=not progress)
    with bar:
        cursor = 0
        for index in pending:
            shard_rows, lost = [], []
            for row in rows[cursor:cursor + len(shards[index])]:
                record = next(records)
                bar.update(1)
                if isinstance(record, LostVideo):
                    lost.append((row[job.path_column], record.reason))
                    continue
                if record["error"] is not None:
                    failures.append((row[job.path_column], record["error"]))
                shard_rows.append({**row, **record, "selection": parameters})
            cursor += len(shards[index])
            if lost:  # not written: the next run tries the shard again
                lost_shards.append((index, lost))
                continue
            _write_shard(shard_path(job.output, index, len(shards)), features, shard_rows)
            written, videos_written = written + 1, videos_written + len(shard_rows)
    fingerprint = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    merged = merge_shard_index(job.output, features, len(shards), fingerprint)
    return PrecomputeReport(videos_written=videos_written, shards_written=written,
                            shards_skipped=len(mine) - len(pending), failures=failures, merged=merged,
                            rank=job.rank, world_size=job.world_size, lost_shards=lost_shards)


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
