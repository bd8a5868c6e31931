"""Decoding by plan (`processors/decode_segments.py`): which pictures it leaves undecoded, where it cuts the
segments, and that the frames and the selection it gives are those of one whole decode, bit for bit."""

import dataclasses
import io

import numpy as np
import pytest

import onevision_hf.processors.decode_segments as decode_segments
import onevision_hf.processors.video_selection as video_selection
from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors.decode_segments import DecodeSegment, iter_segment, plannable
from onevision_hf.processors.video_decoding import SegmentMismatch, iter_frames, probe_stream, sample_frame_indices
from onevision_hf.synthetic_video import CameraMotion, render_scene, write_video

FRAMES = 150


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """name -> path: 150 frames of a panning scene, keyframes every 30 frames, closed and open GOPs."""
    directory = tmp_path_factory.mktemp("segments")
    scene = render_scene(FRAMES, 96, 160, num_objects=1, object_size=24, speed=2.0, seed=5,
                         camera=CameraMotion(pan=(0.5, 1.0)))
    encodings = {
        "closed, 2 B-frames": {"g": "30", "keyint_min": "30", "bf": "2", "crf": "26"},
        "closed, no B-frames": {"g": "30", "keyint_min": "30", "bf": "0", "crf": "26"},
        "open GOP": {"g": "30", "keyint_min": "30", "bf": "3", "crf": "26", "x264-params": "open-gop=1"},
    }
    paths = {}
    for index, (name, options) in enumerate(encodings.items()):
        paths[name] = directory / f"clip-{index}.mp4"
        write_video(paths[name], scene.frames, codec="libx264", rate=30, options=options)
    return paths


@pytest.fixture(autouse=True)
def segments_whatever_the_size(monkeypatch):
    """These clips are tiny: let them be cut as a large video would be (scoring estimated free)."""
    monkeypatch.setattr(decode_segments, "SCORING_NS_PER_FRAME", 0.0)
    monkeypatch.setattr(decode_segments, "SCORING_NS_PER_ENERGY_PIXEL", 0.0)


def _energy_pixels(height, width):
    return height * width // 4


def plan_decode(video, wanted, count, frame_count):
    return decode_segments.plan_decode(video, wanted, count, frame_count, _energy_pixels)


def test_a_second_decoder_runs_only_where_decoding_bounds_the_pass(clips, monkeypatch):
    monkeypatch.undo()
    wanted = sample_frame_indices(FRAMES, 16)
    plan = plan_decode(clips["closed, 2 B-frames"], wanted, 3, FRAMES)  # 96 x 160: 0.1 M pixels per sample
    assert plan.segments == [DecodeSegment(0, FRAMES)] and plan.skipped  # one decoder, still skipping
    monkeypatch.setattr(decode_segments, "DECODE_NS_PER_PIXEL", 1e4)  # a decoder 4000 times slower
    assert len(plan_decode(clips["closed, 2 B-frames"], wanted, 3, FRAMES).segments) == 2


def _frame_digest(frames):
    return [(frame.index, int(frame.frame.pts), frame.is_reference, frame.luma().tobytes(), _vectors(frame))
            for frame in frames]


def _vectors(frame):  # field by field: a structured array's padding bytes are not part of its value
    vectors = frame.motion_vectors()
    return None if vectors is None else np.stack([vectors[name].astype(np.int64)
                                                  for name in vectors.dtype.names]).tobytes()


@pytest.mark.parametrize("name", ["closed, 2 B-frames", "closed, no B-frames"])
def test_a_plan_decodes_exactly_the_frames_of_one_decode(clips, name):
    wanted = sample_frame_indices(FRAMES, 16)
    plan = plan_decode(clips[name], wanted, 3, FRAMES)
    # IDR pictures every 30 frames, none sampled; three segments would leave one shorter than 48 frames
    assert [(segment.first_index, segment.end_index) for segment in plan.segments] == [(0, 60), (60, FRAMES)]
    whole = _frame_digest(iter_frames(clips[name], export_motion_vectors=True))
    pieces = [item for segment in plan.segments for item in _frame_digest(iter_segment(clips[name], plan, segment,
                                                                                        True))]
    read = set(wanted.tolist()) | set((wanted - 1).tolist())
    kept = [item for item in whole if item[2] or item[0] in read]  # what the selection reads
    assert len(pieces) == len(kept) == FRAMES - len(plan.skipped)
    assert pieces == kept  # indices, timestamps, pixels and exported vectors of one whole decode
    if name == "closed, no B-frames":
        assert not plan.skipped  # every P-frame is a reference
    else:
        assert len(plan.skipped) >= FRAMES // 6  # x264's non-reference B-frames, not read


def test_open_gop_keyframes_are_not_cut_points(clips):
    wanted = sample_frame_indices(FRAMES, 16)
    plan = plan_decode(clips["open GOP"], wanted, 3, FRAMES)
    assert plan.segments == [DecodeSegment(0, FRAMES)]  # recovery points, not IDR pictures


def test_what_cannot_be_planned_is_decoded_whole(clips):
    path = clips["closed, 2 B-frames"]
    assert plannable(str(path), "h264") and plannable(path.read_bytes(), "h264")
    assert not plannable(io.BytesIO(path.read_bytes()), "h264")  # one file position, shared
    assert not plannable(str(path), "hevc")
    assert plan_decode(path, sample_frame_indices(FRAMES, 16), 2, FRAMES + 1) is None  # the header disagrees


def test_a_wrong_plan_is_detected(clips):
    path = clips["closed, 2 B-frames"]
    plan = plan_decode(path, sample_frame_indices(FRAMES, 16), 2, FRAMES)
    stamp_of = {index: stamp for stamp, index in plan.display_index.items()}
    short = DecodeSegment(0, 40, None, stamp_of[60])  # frames 40 to 59 come too
    with pytest.raises(SegmentMismatch, match="timestamp"):
        list(iter_segment(path, plan, short, True))
    nowhere = DecodeSegment(61, FRAMES, stamp_of[61], None)  # not a keyframe: seeking lands elsewhere
    with pytest.raises(SegmentMismatch, match="seeking"):
        list(iter_segment(path, plan, nowhere, True))


def test_a_stream_cut_inside_a_gop_is_read_from_its_first_decodable_frame(tmp_path):
    """A transport stream cut at an arbitrary packet (a recording or a segment started inside a GOP): its first
    pictures refer to frames before the cut and never decode, so a plan, which counts every packet, expects
    frames that never come; the selection reads the frames that decode, as one whole decode does."""
    scene = render_scene(60, 96, 160, num_objects=1, object_size=24, speed=2.0, seed=5)
    whole = tmp_path / "whole.ts"
    write_video(whole, scene.frames, codec="libx264", options={"bf": "2", "g": "30", "keyint_min": "30"},
                container_format="mpegts")
    data = whole.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[len(data) // 3 // 188 * 188:])  # whole 188-byte TS packets
    decoded = sum(1 for _ in iter_frames(cut, True))
    selection = OneVisionVideoProcessor(num_frames=16).select(cut)
    assert selection.source_frame_count == decoded < probe_stream(cut).frame_count
    np.testing.assert_array_equal(selection.frame_indices, sample_frame_indices(decoded, 16))


@pytest.mark.parametrize("preset", ["default", "reference"])
def test_selection_is_the_same_by_plan(clips, monkeypatch, preset):
    path = clips["closed, 2 B-frames"]
    processor = OneVisionVideoProcessor(preset=preset, num_frames=16)
    monkeypatch.setattr(video_selection, "plan_decode", lambda *args: None)
    whole = processor.select(path)
    monkeypatch.setattr(video_selection, "decode_segment_count", lambda: 3)
    plans = []
    monkeypatch.setattr(video_selection, "plan_decode",
                        lambda *args: plans.append(decode_segments.plan_decode(*args)) or plans[-1])
    planned = processor.select(path)
    assert len(plans[0].segments) == 2 and plans[0].skipped
    np.testing.assert_array_equal(planned.positions, whole.positions)
    np.testing.assert_array_equal(planned.patches, whole.patches)
    np.testing.assert_array_equal(planned.scores, whole.scores)


def test_a_misread_plan_falls_back_to_one_decode(clips, monkeypatch):
    path = clips["closed, 2 B-frames"]
    processor = OneVisionVideoProcessor(num_frames=16)
    monkeypatch.setattr(video_selection, "plan_decode", lambda *args: None)
    whole = processor.select(path)
    plan = plan_decode(path, sample_frame_indices(FRAMES, 16), 2, FRAMES)
    wrong = dataclasses.replace(plan, segments=[DecodeSegment(0, 61, None, plan.segments[1].start_pts),
                                                DecodeSegment(61, FRAMES, plan.segments[1].start_pts, None)])
    monkeypatch.setattr(video_selection, "plan_decode", lambda *args: wrong)
    fallback = processor.select(path)
    np.testing.assert_array_equal(fallback.positions, whole.positions)
    np.testing.assert_array_equal(fallback.patches, whole.patches)
