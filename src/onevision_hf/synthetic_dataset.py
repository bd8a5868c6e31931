"""A procedurally generated, labelled video dataset whose labels need motion and brief events.

Every clip (`ClipSpec`: 64 frames of 112 x 112 at 25 fps, H.264 with B-frames written by PyAV, so the codec
path is real) shows, over a static random texture with textured squares bouncing around as distractors:

* ``direction``: a yellow disc travelling in a straight line, ``left``, ``right``, ``up`` or ``down``;
* ``which_moved``: four still coloured tiles, one per quadrant; one of them jumps out of its place for
  ``jump_frames`` frames (3) and back, which one (``top-left``, ``top-right``, ``bottom-left``, ``bottom-right``);
* ``flash_count``: a white square flashing ``0``-``3`` times, ``flash_frames`` frames (2) each, at random
  places and times at least ``flash_gap`` frames apart.

``direction`` is visible in any few frames; ``which_moved`` and ``flash_count`` are events of 2-3 frames in
64, which a few uniformly sampled frames mostly miss. Labels are balanced within each split; every clip is a
pure function of ``(seed, split, index)``, so splits are disjoint and regenerate the same clips (the drawn
frames bit-identical; the H.264 bytes too on one machine, x264 promising no more).

`write_dataset` writes ``ROOT/<split>/clip-NNNNN.mp4`` and ``ROOT/<split>.csv`` (``path`` plus one column per
task), and ``ROOT/<split>-<task>.csv`` (``path,label``: the video lists of ``onevision-hf probe``).
`write_dataset` also saves the ``pretrain`` split as ``ROOT/pretrain-dataset/`` (`write_pretraining_dataset`):
``video`` + ``labels`` rows for ``onevision-hf pretrain``, three labels per clip (its class of each task).
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .errors import OneVisionInputError
from .synthetic_video import SyntheticScene, moving_patches, render_scene, write_video

TASKS: dict[str, tuple[str, ...]] = {
    "direction": ("left", "right", "up", "down"),
    "which_moved": ("top-left", "top-right", "bottom-left", "bottom-right"),
    "flash_count": ("0", "1", "2", "3"),
}
SPLITS = ("train", "val", "test", "pretrain")
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}  # (dy, dx)
MARKER_COLOR = (255, 220, 0)
FLASH_COLOR = (255, 255, 255)
TILE_COLORS = ((220, 40, 40), (40, 90, 230), (40, 190, 70), (200, 60, 200))
PRETRAINING_DATASET = "pretrain-dataset"
ENCODER_OPTIONS = {"bf": "2", "crf": "23", "threads": "1"}


@dataclass(frozen=True)
class ClipSpec:
    """How every clip is drawn."""

    num_frames: int = 64
    size: int = 112  # square frames, a multiple of 2 (H.264 4:2:0)
    fps: int = 25
    marker_radius: int = 6
    marker_travel: float = 0.55  # distance the disc travels, as a share of the frame side
    tile_size: int = 22
    jump_frames: int = 3
    jump_offset: int = 10  # pixels the tile jumps
    flash_size: int = 14
    flash_frames: int = 2
    flash_gap: int = 6  # frames between the ends of two flashes, at least
    num_distractors: int = 2
    distractor_size: int = 16
    distractor_speed: float = 2.0

    def __post_init__(self):
        if self.size % 2 or self.size < 4 * self.tile_size:
            raise OneVisionInputError(
                f"size must be even and at least 4 tiles ({4 * self.tile_size}), got {self.size}."
            )
        needed = len(TASKS["flash_count"]) * (self.flash_frames + self.flash_gap) + 2 * self.jump_frames
        if self.num_frames < needed:
            raise OneVisionInputError(
                f"num_frames must be at least {needed} to fit every event, got {self.num_frames}."
            )


@dataclass
class ClipEvent:
    """A brief event: what it is, the frames it lasts, the pixels it changes."""

    kind: str  # "jump" (the moved tile out of its place) or "flash"
    frames: range
    mask: np.ndarray  # (H, W) bool: the flash square; the jumped tile's slot and where it jumped to


@dataclass
class LabelledClip:
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    labels: dict[str, int]  # task -> class index into TASKS[task]
    events: list[ClipEvent] = field(default_factory=list)  # the jump first, then the flashes in time order


def tile_slots(spec: ClipSpec) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the four tiles, in the order of TASKS["which_moved"]."""
    near, far = spec.size // 4 - spec.tile_size // 2, 3 * spec.size // 4 - spec.tile_size // 2
    return [(near, near), (near, far), (far, near), (far, far)]


def marker_track(direction: str, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) float centre (y, x) of the disc moving in ``direction`` at constant speed, inside the frame."""
    dy, dx = DIRECTIONS[direction]
    travel = spec.marker_travel * spec.size
    low, high = spec.marker_radius + 1, spec.size - spec.marker_radius - 2
    along_start = rng.uniform(low, high - travel)
    across = rng.uniform(low, high)
    along = along_start + np.linspace(0, travel, spec.num_frames)
    if dy + dx < 0:  # left / up: run the track backwards
        along = along[::-1]
    return np.stack((along, np.full_like(along, across)) if dy else (np.full_like(along, across), along), axis=1)


def event_starts(count: int, length: int, gap: int, num_frames: int, rng: np.random.Generator) -> list[int]:
    """``count`` sorted start frames of events lasting ``length`` frames, separated by at least ``gap`` frames,
    all within frames 1 .. num_frames - 2: every event has an uneventful frame before and after it."""
    slack = num_frames - 2 - count * length - max(count - 1, 0) * gap
    free = np.sort(rng.integers(0, slack + 1, size=count))  # stars and bars: the spare frames before each event
    return [1 + int(free[i]) + i * (length + gap) for i in range(count)]


def render_clip(labels: dict[str, int], spec: ClipSpec, seed: int) -> LabelledClip:
    """Draw one clip showing ``labels`` (task -> class index); ``seed`` decides everything else."""
    rng = np.random.default_rng(seed)
    scene = render_scene(spec.num_frames, spec.size, spec.size, num_objects=spec.num_distractors,
                         object_size=spec.distractor_size, speed=spec.distractor_speed, seed=seed)
    frames = [frame // 3 + 80 for frame in scene.frames]  # a calmer background: the objects stand out
    rows, cols = np.mgrid[0:spec.size, 0:spec.size]

    slots = tile_slots(spec)
    moved = labels["which_moved"]
    (jump_start,) = event_starts(1, spec.jump_frames, 0, spec.num_frames, rng)
    jump = range(jump_start, jump_start + spec.jump_frames)
    jump_dy, jump_dx = spec.jump_offset * np.array(list(DIRECTIONS.values())[rng.integers(4)])
    track = marker_track(TASKS["direction"][labels["direction"]], spec, rng)  # (T, 2)
    flash_count = int(TASKS["flash_count"][labels["flash_count"]])
    flashes = [range(start, start + spec.flash_frames) for start in
               event_starts(flash_count, spec.flash_frames, spec.flash_gap, spec.num_frames, rng)]
    flash_corners = rng.integers(0, spec.size - spec.flash_size, size=(flash_count, 2))

    inset = spec.tile_size // 4  # tiles have a darker centre: an edge inside them
    for index, frame in enumerate(frames):
        for slot, ((y, x), color) in enumerate(zip(slots, TILE_COLORS)):
            if slot == moved and index in jump:
                y, x = y + jump_dy, x + jump_dx
            frame[y:y + spec.tile_size, x:x + spec.tile_size] = color
            frame[y + inset:y + spec.tile_size - inset, x + inset:x + spec.tile_size - inset] //= 2
        centre_y, centre_x = track[index]
        frame[(rows - centre_y) ** 2 + (cols - centre_x) ** 2 <= spec.marker_radius ** 2] = MARKER_COLOR
        for flash, (y, x) in zip(flashes, flash_corners):
            if index in flash:
                frame[y:y + spec.flash_size, x:x + spec.flash_size] = FLASH_COLOR
    slot_y, slot_x = slots[moved]
    events = [ClipEvent("jump", jump, _box(spec.size, [(slot_y, slot_x), (slot_y + jump_dy, slot_x + jump_dx)],
                                          spec.tile_size))]
    events += [ClipEvent("flash", flash, _box(spec.size, [corner], spec.flash_size))
               for flash, corner in zip(flashes, flash_corners)]
    return LabelledClip(frames, dict(labels), events)


def _box(size: int, corners, side: int) -> np.ndarray:
    """(size, size) bool: the union of the ``side``-pixel squares at ``corners`` (y, x)."""
    mask = np.zeros((size, size), dtype=bool)
    for y, x in corners:
        mask[max(y, 0):y + side, max(x, 0):x + side] = True
    return mask


def event_seen(event: ClipEvent, selection, coverage: float = 0.25) -> bool:
    """Whether a `VideoSelection` of the clip holds a patch of a frame during ``event`` that is at least
    ``coverage`` covered by the event's pixels: whether the encoder's input shows the event at all."""
    quiet = np.zeros_like(event.mask)
    last = int(selection.frame_indices.max())
    scene = SyntheticScene([], [event.mask if index in event.frames else quiet for index in range(last + 1)])
    truth = moving_patches(scene, selection.frame_indices, selection.geometry, coverage)  # (T, gh, gw)
    return bool((truth & selection.patch_mask()).any())


def balanced_labels(num_clips: int, seed: int, split: str) -> list[dict[str, int]]:
    """Per clip, task -> class index; every class of every task equally often (up to one), independently shuffled."""
    per_task = {}
    for task_index, (task, classes) in enumerate(TASKS.items()):
        rng = np.random.default_rng([seed, SPLITS.index(split), task_index, 7])
        per_task[task] = rng.permutation(np.arange(num_clips) % len(classes))
    return [{task: int(values[index]) for task, values in per_task.items()} for index in range(num_clips)]


def clip_seed(seed: int, split: str, index: int) -> int:
    """The seed of clip ``index`` of ``split``: distinct for every (seed, split, index)."""
    return int(np.random.default_rng([seed, SPLITS.index(split), index]).integers(2**31))


def write_split(root: str | Path, split: str, num_clips: int, seed: int = 0, spec: ClipSpec = ClipSpec(),
                progress: bool = True) -> Path:
    """Render and encode ``num_clips`` clips of ``split`` under ``root``; returns ``root/<split>.csv``."""
    if split not in SPLITS:
        raise OneVisionInputError(f"split must be one of {SPLITS}, got {split!r}.")
    if num_clips < 1:
        raise OneVisionInputError(f"{split}: num_clips must be at least 1, got {num_clips}.")
    root = Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    rows = []
    labels = balanced_labels(num_clips, seed, split)
    for index in tqdm(range(num_clips), desc=f"{split} clips", unit="clip", disable=not progress):
        clip = render_clip(labels[index], spec, clip_seed(seed, split, index))
        name = f"{split}/clip-{index:05d}.mp4"
        write_video(root / name, clip.frames, rate=spec.fps, options=ENCODER_OPTIONS)
        rows.append({"path": name, **{task: TASKS[task][value] for task, value in clip.labels.items()}})
    table = root / f"{split}.csv"
    _write_csv(table, ["path", *TASKS], rows)
    for task in TASKS:
        _write_csv(root / f"{split}-{task}.csv", ["path", "label"],
                   [{"path": row["path"], "label": row[task]} for row in rows])
    return table


def write_dataset(root: str | Path, num_clips: dict[str, int], seed: int = 0, spec: ClipSpec = ClipSpec(),
                  progress: bool = True) -> dict[str, Path]:
    """Every split of ``num_clips`` (split -> count); returns split -> its CSV. The ``pretrain`` split is also
    saved as a pretraining dataset, ``root/pretrain-dataset``."""
    tables = {split: write_split(root, split, count, seed, spec, progress) for split, count in num_clips.items()}
    if "pretrain" in tables:
        write_pretraining_dataset(root, "pretrain", Path(root) / PRETRAINING_DATASET)
    return tables


def read_split(root: str | Path, split: str) -> list[dict[str, str]]:
    """Rows of ``root/<split>.csv``, with ``path`` made absolute."""
    table = Path(root) / f"{split}.csv"
    if not table.is_file():
        raise OneVisionInputError(f"{table} does not exist: generate the split with `onevision-hf make-synthetic-"
                                  f"dataset {root}`.")
    with open(table, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    missing = {"path", *TASKS} - set(rows[0] if rows else {})
    if missing:
        raise OneVisionInputError(f"{table}: missing column(s) {sorted(missing)}.")
    return [{**row, "path": str((table.parent / row["path"]).resolve())} for row in rows]


def label_ids(row: dict[str, str]) -> list[int]:
    """The clip's class of every task as ids in one label space, tasks in TASKS order (direction 0-3,
    which_moved 4-7, flash_count 8-11): its multi-label pretraining labels."""
    ids, offset = [], 0
    for task, classes in TASKS.items():
        ids.append(offset + classes.index(row[task]))
        offset += len(classes)
    return ids


def num_label_ids() -> int:
    return sum(len(classes) for classes in TASKS.values())


def write_pretraining_dataset(root: str | Path, split: str, output: str | Path):
    """``split`` as a `datasets` dataset of ``video`` (path) and ``labels`` (`label_ids`) rows, saved at ``output``:
    the input of an ``onevision-hf pretrain`` head with ``num_classes: num_label_ids()`` (12)."""
    import datasets

    rows = read_split(root, split)
    dataset = datasets.Dataset.from_dict({"video": [row["path"] for row in rows],
                                          "labels": [label_ids(row) for row in rows]})
    dataset.save_to_disk(str(output))
    return dataset


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
