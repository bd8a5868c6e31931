"""The labelled synthetic video dataset: reproducible, disjoint splits, labels that match what is drawn."""

import csv
import hashlib
import itertools

import av
import datasets
import numpy as np
import pytest

from onevision_hf.cli import main
from onevision_hf.errors import OneVisionInputError
from onevision_hf.evaluation.probe import read_video_list
from onevision_hf.processors.video_decoding import PICTURE_TYPE_B
from onevision_hf.processors.video_processing_onevision import OneVisionVideoProcessor
from onevision_hf.synthetic_dataset import (
    DIRECTIONS,
    FLASH_COLOR,
    MARKER_COLOR,
    TASKS,
    TILE_COLORS,
    ClipSpec,
    balanced_labels,
    clip_seed,
    event_seen,
    label_ids,
    num_label_ids,
    read_split,
    render_clip,
    tile_slots,
    write_dataset,
    write_split,
)

SPEC = ClipSpec()
COUNTS = {"train": 8, "val": 4, "test": 4, "pretrain": 4}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, COUNTS, seed=3, progress=False)
    return root


def every_label_combination():
    """One label dict per class of each task (the other tasks cycling), covering every class of every task."""
    return [{task: (index + shift) % len(classes) for shift, (task, classes) in enumerate(TASKS.items())}
            for index in range(4)]


def colour_centroid(frame: np.ndarray, colour) -> np.ndarray:
    rows, cols = np.nonzero((frame == colour).all(axis=-1))
    return np.array([rows.mean(), cols.mean()])


@pytest.mark.parametrize("labels", every_label_combination())
def test_the_disc_travels_in_the_labelled_direction(labels):
    clip = render_clip(labels, SPEC, seed=11)
    travel = colour_centroid(clip.frames[-1], MARKER_COLOR) - colour_centroid(clip.frames[0], MARKER_COLOR)
    expected = np.array(DIRECTIONS[TASKS["direction"][labels["direction"]]])
    assert travel @ expected > 0.4 * SPEC.size  # most of its travel along the labelled direction
    assert abs(travel @ expected[::-1]) < 3  # and none across it


@pytest.mark.parametrize("labels", every_label_combination())
def test_only_the_labelled_tile_leaves_its_place_and_only_during_the_jump(labels):
    clip = render_clip(labels, SPEC, seed=12)
    (jump,) = [event for event in clip.events if event.kind == "jump"]
    assert len(jump.frames) == SPEC.jump_frames
    for slot, ((y, x), colour) in enumerate(zip(tile_slots(SPEC), TILE_COLORS)):
        rest = np.array([y, x]) + SPEC.tile_size / 2
        away = [np.abs(colour_centroid(frame, colour) - rest).max() > SPEC.jump_offset / 2 for frame in clip.frames]
        expected = [slot == labels["which_moved"] and index in jump.frames for index in range(SPEC.num_frames)]
        assert away == expected, f"tile {slot}"


@pytest.mark.parametrize("labels", every_label_combination())
def test_the_white_square_flashes_the_labelled_number_of_times(labels):
    clip = render_clip(labels, SPEC, seed=13)
    lit = np.array([(frame == FLASH_COLOR).all(axis=-1).sum() >= SPEC.flash_size ** 2 // 2 for frame in clip.frames])
    onsets = np.flatnonzero(lit[1:] & ~lit[:-1]) + 1
    count = int(TASKS["flash_count"][labels["flash_count"]])
    assert len(onsets) == count and not lit[0] and not lit[-1]
    flashes = [event for event in clip.events if event.kind == "flash"]
    assert [event.frames.start for event in flashes] == onsets.tolist()
    assert all(len(event.frames) == SPEC.flash_frames for event in flashes)
    assert all(b.frames.start - a.frames.stop >= SPEC.flash_gap for a, b in itertools.pairwise(flashes))


def test_labels_are_balanced_within_a_split():
    labels = balanced_labels(40, seed=0, split="train")
    for task, classes in TASKS.items():
        assert np.bincount([row[task] for row in labels], minlength=len(classes)).tolist() == [10] * len(classes)


def decoded_luma(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="gray") for frame in container.decode(video=0)]).astype(np.int16)


def test_same_seed_regenerates_the_same_clips_and_another_seed_does_not(dataset_root, tmp_path):
    """Labels and drawn frames are a pure function of the seed; the H.264 bytes are x264's business (bit-exact
    on one machine, but not promised across machines), so the files are compared by what they decode to."""
    again = write_split(tmp_path / "again", "train", COUNTS["train"], seed=3, progress=False)
    assert again.read_text() == (dataset_root / "train.csv").read_text()
    for index in range(COUNTS["train"]):
        name = f"train/clip-{index:05d}.mp4"
        first, second = decoded_luma(dataset_root / name), decoded_luma(tmp_path / "again" / name)
        assert first.shape == second.shape == (SPEC.num_frames, SPEC.size, SPEC.size)
        assert np.abs(first - second).mean() < 0.5, name
    other = write_split(tmp_path / "other", "train", COUNTS["train"], seed=4, progress=False)
    assert other.read_text() != again.read_text()
    assert np.abs(decoded_luma(tmp_path / "other" / "train/clip-00000.mp4")
                  - decoded_luma(dataset_root / "train/clip-00000.mp4")).mean() > 10


def test_same_seed_draws_bit_identical_frames():
    labels = balanced_labels(4, seed=3, split="val")[1]
    first = render_clip(labels, SPEC, clip_seed(3, "val", 1))
    second = render_clip(labels, SPEC, clip_seed(3, "val", 1))
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames, strict=True))
    assert first.labels == second.labels == labels


def test_splits_are_disjoint(dataset_root):
    digests = {split: {digest(dataset_root / row["path"]) for row in read_split(dataset_root, split)}
               for split in COUNTS}
    assert all(len(found) == COUNTS[split] for split, found in digests.items())  # no clip twice in a split
    splits = list(digests)
    for position, first in enumerate(splits):
        for second in splits[position + 1:]:
            assert not digests[first] & digests[second], (first, second)


def test_clips_are_h264_with_b_frames_of_the_specified_size(dataset_root):
    with av.open(str(dataset_root / "test" / "clip-00000.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == SPEC.num_frames
    assert (frames[0].height, frames[0].width) == (SPEC.size, SPEC.size)
    assert any(int(frame.pict_type) == PICTURE_TYPE_B for frame in frames)


def test_probe_lists_and_pretraining_dataset_carry_the_split_labels(dataset_root):
    rows = read_split(dataset_root, "val")
    for task in TASKS:
        listed = read_video_list(dataset_root / f"val-{task}.csv")
        assert [(str(path.resolve()), label) for path, label in listed] == [(row["path"], row[task]) for row in rows]
    pretraining = datasets.load_from_disk(str(dataset_root / "pretrain-dataset"))
    expected = [label_ids(row) for row in read_split(dataset_root, "pretrain")]
    assert pretraining["labels"] == expected
    assert num_label_ids() == 12
    for row, ids in zip(read_split(dataset_root, "pretrain"), expected):  # direction 0-3, moved 4-7, count 8-11
        assert ids == [TASKS["direction"].index(row["direction"]), 4 + TASKS["which_moved"].index(row["which_moved"]),
                       8 + TASKS["flash_count"].index(row["flash_count"])]


def test_codec_selection_sees_the_jump_that_four_uniform_frames_miss(dataset_root):
    """The point of the dataset: a 3-frame event in 64 is in the codec's sparse input; four whole frames show
    it only when one of them happens to fall inside it."""
    processor = OneVisionVideoProcessor(num_frames=64, budget=256)
    seen = {"codec": 0, "frames": 0, "a uniform frame inside the jump": 0}
    rows = read_split(dataset_root, "train")
    for index, row in enumerate(rows):
        labels = {task: TASKS[task].index(row[task]) for task in TASKS}
        (jump,) = [event for event in render_clip(labels, SPEC, clip_seed(3, "train", index)).events
                   if event.kind == "jump"]
        uniform = processor.select(row["path"], num_frames=4, budget=1.0, keep_first_frame=False)
        seen["codec"] += event_seen(jump, processor.select(row["path"]))
        seen["frames"] += event_seen(jump, uniform)
        seen["a uniform frame inside the jump"] += any(frame in jump.frames for frame in uniform.frame_indices)
    assert seen["codec"] >= len(rows) - 1
    assert seen["frames"] == seen["a uniform frame inside the jump"] < seen["codec"]


def test_command_writes_every_split_and_its_probe_lists(tmp_path, capsys):
    assert main(["make-synthetic-dataset", str(tmp_path), "--num-train", "4", "--num-val", "4", "--num-test", "4",
                 "--seed", "1"]) == 0
    assert "test      4 clips" in capsys.readouterr().out
    with open(tmp_path / "train.csv", newline="") as file:
        assert next(csv.reader(file)) == ["path", *TASKS]
    assert not (tmp_path / "pretrain.csv").exists()  # --num-pretrain 0
    assert sorted(path.name for path in (tmp_path / "test").iterdir()) == [f"clip-{i:05d}.mp4" for i in range(4)]


def test_bad_arguments_are_refused_with_the_reason(tmp_path):
    with pytest.raises(OneVisionInputError, match="split must be one of"):
        write_split(tmp_path, "holdout", 4)
    with pytest.raises(OneVisionInputError, match="num_clips must be at least 1"):
        write_split(tmp_path, "train", 0)
    with pytest.raises(OneVisionInputError, match="num_frames must be at least"):
        ClipSpec(num_frames=16)
    with pytest.raises(OneVisionInputError, match="size must be even"):
        ClipSpec(size=111)
    with pytest.raises(OneVisionInputError, match="make-synthetic-dataset"):
        read_split(tmp_path, "val")
