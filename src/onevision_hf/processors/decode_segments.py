"""Decoding an H.264 file for a selection: only the pictures it needs, in a few segments, one decoder each.

`plan_decode` demuxes the packets once (no decoding: a few ms for a short clip) and reads their NAL headers
(`h264_packets`). Two savings follow, neither changing a decoded frame or vector:

* **Non-reference pictures nobody reads are not decoded.** No other picture is predicted from them, so the
  decoder's output for every other packet is the same without them. The selection reads the sampled frames,
  the frame before each (the scene-cut test, an intra frame's block matching) and the reference pictures
  (what vectors point into); on x264's default B-frames and phone footage 35-45 % of the packets are left.
* **Segments cut at IDR pictures decode in parallel.** With motion-vector export FFmpeg's frame threading is
  not reproducible (the exported vectors differ from run to run on a few percent of frames), and slice
  threading gives nothing on the single-slice files cameras and encoders write, so one decoder runs on one
  core. An IDR picture resets the decoder: nothing after it refers to anything before it, so the segments
  decode separately to exactly the frames of one decode. A cut needs a clean boundary in both orders (every
  packet before it in decode order is displayed before it, every one after it after it), the container's key
  flag alone is not enough (a keyframe may be a recovery point, which later pictures may look past), and it
  is never a sampled frame (a sampled intra frame is compared with the frame before it). Cut points are the
  clean IDR pictures nearest to equal shares of the frames, as many segments as cores (`decode_segment_count`)
  while each keeps `MIN_SEGMENT_FRAMES` frames and a sampled frame, and only where decoding bounds the pass
  (`DECODE_NS_PER_PIXEL` against the scoring's estimate).

A frame's display index is its packet's rank by timestamp. Sources that cannot be opened twice (file objects,
playlists), other codecs, and files whose packets cannot be indexed (missing or repeated timestamps, a count
other than the header's) are decoded whole, every frame (`video_decoding.iter_frames`); a segment that meets
other packets or frames than planned, in another order or missing one (the first pictures of a stream cut inside a
GOP never decode), raises `SegmentMismatch`, and the selection decodes the file whole.
"""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from .h264_packets import avcc_length_size, picture_kind
from .video_decoding import (
    DecodedFrame,
    LocalPlaylist,
    SegmentMismatch,
    decode_packets,
    open_container,
    video_stream,
)

MAX_SEGMENTS = 4  # decoders at most, whatever the cores
MIN_SEGMENT_FRAMES = 48  # shorter segments are not worth a second decoder
# A second decoder pays only where decoding, not scoring, bounds the pass: where decoding the frames that fall to
# one sampled frame costs more than scoring it. The estimates, from per-function timings of selections on one
# core (the bundled phone clip and generated 720p clips): H.264 decodes at 2.5-3 ns a pixel; scoring a sampled
# frame costs about 6 ms plus 30 ns per pixel of its energy map (the default preset's 180 x 320 map: 8 ms;
# `reference`'s full-resolution 720p map: 34 ms). Below that balance (the bundled 360 x 640 clip: 3 ms of
# decoding per sampled frame), more decoders only compete with the scoring for the cores.
DECODE_NS_PER_PIXEL = 2.7
SCORING_NS_PER_FRAME = 6e6
SCORING_NS_PER_ENERGY_PIXEL = 30.0


@dataclass(frozen=True)
class DecodeSegment:
    """Frames ``first_index`` to ``end_index`` (excluded), decoded from the packet with timestamp ``start_pts``
    (None: the start of the file) up to the packet with ``end_pts`` (None: the end), excluded."""

    first_index: int
    end_index: int
    start_pts: int | None = None
    end_pts: int | None = None


@dataclass(frozen=True)
class DecodePlan:
    """How to decode a video for a selection: its segments, each frame's display index by timestamp, and the
    packets left undecoded (non-reference pictures that are neither sampled nor just before a sampled frame)."""

    segments: list[DecodeSegment]
    display_index: dict[int, int]
    skipped: frozenset[int] = field(default_factory=frozenset)

    def decoded_indices(self, segment: DecodeSegment) -> list[int]:
        """The display indices of the frames `iter_segment` yields for ``segment``, in order."""
        skipped = {self.display_index[pts] for pts in self.skipped}
        return [index for index in range(segment.first_index, segment.end_index) if index not in skipped]


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def decode_segment_count() -> int:
    """Decoders worth running here: the cores this process may use, at most `MAX_SEGMENTS`."""
    return min(available_cores(), MAX_SEGMENTS)


def plannable(video, codec: str) -> bool:
    """Whether ``video`` can be planned: H.264 (its packets say what they hold), from a source that can be
    opened twice (scanned, then decoded)."""
    reopenable = isinstance(video, (bytes, bytearray, memoryview)) or (
        isinstance(video, (str, os.PathLike)) and not isinstance(video, LocalPlaylist))
    return codec == "h264" and reopenable


def plan_decode(video, wanted: np.ndarray, count: int, frame_count: int,
                energy_pixels: Callable[[int, int], int]) -> DecodePlan | None:
    """The `DecodePlan` for reading the sampled frames ``wanted`` (sorted display indices) with at most
    ``count`` segments; ``energy_pixels(height, width)``: the size of a sampled frame's energy map (what scoring
    it costs). None when the packets cannot be indexed (missing or repeated timestamps, or another count than
    the header's ``frame_count``): then the video is decoded whole, every frame."""
    with open_container(video) as container:
        stream = video_stream(container)
        length_size = avcc_length_size(stream.codec_context.extradata)
        height, width = stream.codec_context.height, stream.codec_context.width
        packets = []  # (pts, PictureKind) in decode order
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    return None
                packets.append((packet.pts, picture_kind(bytes(packet), length_size)))
        except av.FFmpegError:
            return None  # a damaged file: the whole decode says what is wrong with it
    pts = np.array([stamp for stamp, _ in packets], dtype=np.int64)
    if len(packets) != frame_count or len(np.unique(pts)) != len(pts):
        return None
    display_index = np.argsort(np.argsort(pts, kind="stable"), kind="stable")  # rank by timestamp
    index_of = dict(zip(pts.tolist(), display_index.tolist()))
    read = set(wanted.tolist()) | {int(index) - 1 for index in wanted}  # sampled, and the frame before each
    skipped = frozenset(stamp for stamp, kind in packets if not kind.is_reference and index_of[stamp] not in read)
    earlier_max = np.maximum.accumulate(np.concatenate(([np.iinfo(np.int64).min], pts[:-1])))
    later_min = np.minimum.accumulate(np.concatenate((pts[1:], [np.iinfo(np.int64).max]))[::-1])[::-1]
    clean = [int(display_index[i]) for i, (_, kind) in enumerate(packets)
             if kind.is_idr and i > 0 and earlier_max[i] < pts[i] < later_min[i]]
    stamp_at = {index: stamp for stamp, index in index_of.items()}
    decoding = DECODE_NS_PER_PIXEL * (len(pts) - len(skipped)) * height * width / len(wanted)  # per sampled frame
    if decoding < SCORING_NS_PER_FRAME + SCORING_NS_PER_ENERGY_PIXEL * energy_pixels(height, width):
        count = 1
    for pieces in range(max(count, 1), 0, -1):  # as many segments as the cut points allow
        bounds = _cut_bounds(clean, len(pts), wanted, pieces)
        if bounds is not None:
            stamps = [None] + [stamp_at[index] for index in bounds[1:-1]] + [None]
            segments = [DecodeSegment(bounds[k], bounds[k + 1], stamps[k], stamps[k + 1]) for k in range(pieces)]
            return DecodePlan(segments, index_of, skipped)
    return DecodePlan([DecodeSegment(0, len(pts))], index_of, skipped)


def _cut_bounds(clean: list[int], frames: int, wanted: np.ndarray, pieces: int) -> list[int] | None:
    """Segment bounds (display indices, 0 ... frames) cutting at the ``clean`` points nearest to equal shares,
    or None when they leave a segment shorter than `MIN_SEGMENT_FRAMES` or without a sampled frame."""
    if pieces == 1:
        return [0, frames]
    unsampled = sorted(set(clean) - set(wanted.tolist()))
    cuts = []
    for share in range(1, pieces):
        target = share * frames / pieces
        options = [index for index in unsampled if index not in cuts]
        if not options:
            return None
        cuts.append(min(options, key=lambda index: (abs(index - target), index)))
    bounds = [0] + sorted(cuts) + [frames]
    if any(hi - lo < MIN_SEGMENT_FRAMES or not ((wanted >= lo) & (wanted < hi)).any()
           for lo, hi in zip(bounds, bounds[1:])):
        return None
    return bounds


def iter_segment(video, plan: DecodePlan, segment: DecodeSegment,
                 export_motion_vectors: bool) -> Iterator[DecodedFrame]:
    """Decode one segment of the plan in display order (`video_decoding.iter_frames` decodes every frame of
    the whole file); raises `SegmentMismatch` where the file holds other packets or frames than planned."""
    planned = plan.decoded_indices(segment)
    decoded = 0
    for frame, is_reference in decode_packets(video, export_motion_vectors, segment.start_pts, segment.end_pts,
                                              plan.skipped):
        index = plan.display_index.get(frame.pts, -1)
        if decoded == len(planned) or index != planned[decoded]:  # a picture that did not decode, or another one
            expected = planned[decoded] if decoded < len(planned) else "none"
            raise SegmentMismatch(f"frame {index} (timestamp {frame.pts}) decoded where frame {expected} was next")
        decoded += 1
        yield DecodedFrame(index, frame, is_reference)
    if decoded != len(planned):
        raise SegmentMismatch(f"{decoded} frames decoded, {len(planned)} planned")
