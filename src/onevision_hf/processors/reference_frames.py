"""Which decoded frame each exported motion vector points into.

A stock decoder exports, per block, a vector and its list (``source`` -1: past, +1: future), but not the
reference index. H.264 encoders use several references: x264 lets a P-frame point up to ``ref`` reference
frames back (16 frames and more with B-frames in between), a B-frame's past vectors often point into the
B-frame just before it (B-pyramid: B-frames are references too), and its future vectors into any frame up to
the next I/P frame. Predicting every block from "the last I/P frame" (the obvious reading) makes the residual
and the motion of most blocks wrong as soon as anything moves, the camera above all.

`identify_references` recovers each block's reference the way the encoder chose it: the candidate frame in
the vector's direction whose displaced block matches the current block best (sum of absolute differences
on an 8 x 8 window at the block's centre, every second pixel, counting only the samples the vector
displaces into the frame: past its edge every candidate reads the same clamped edge pixels). Ties (flat
areas, a still scene) go to the frame's dominant reference, the one most confidently identified blocks use.
Candidates first compete on `PROBE_BLOCKS` evenly spread blocks; only the nearest and those that win there
confidently (once is enough) compete on all blocks. Candidates are reference pictures only
(`video_selection.frame_motion` leaves out what the packets mark as non-reference: nothing is predicted from
those).

`ReferenceWindow` keeps the decoded frames a sampled frame may reference while the video streams in display
order: up to `PAST_WINDOW` earlier frames back to the last keyframe (an IDR picture resets the decoder: no
later frame refers to what came before it), and, for a B-frame, the later frames up to the next I/P frame (at
most `FUTURE_WINDOW`), which the decoder outputs after it.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

PAST_WINDOW = 16  # H.264's largest decoded picture buffer
FUTURE_WINDOW = 16  # B-frames between two anchors, at most
PROBE_BLOCKS = 128  # candidates first compete on about this many blocks, evenly spread
# a candidate that confidently wins none of the probed blocks drops out (one win keeps it: a reference that only
# a few percent of the blocks use, e.g. 4 % of a zoomed P-frame's blocks 8 frames back, must still compete)
MIN_PROBE_WINS = 1
CONFIDENT_RATIO = 0.7  # best cost at most this share of the second best: a confident identification
TIE_TOLERANCE = 1.25  # the dominant reference is kept when its cost is within this factor of the best (+1/px)
_OFFSETS = np.array([-3, -1, 1, 3])  # sample rows / columns around a block's centre
_SAMPLES = len(_OFFSETS) ** 2


@dataclass(frozen=True)
class ReferenceFrames:
    """The decoded lumas a frame's vectors may point into: signed distance -> (H, W) uint8 luma.

    Distance ``d > 0`` is the frame ``d`` frames earlier in display order (past list), ``d < 0`` the frame
    ``-d`` later (future list)."""

    lumas: dict[int, np.ndarray]

    def distances(self, future: bool) -> list[int]:
        """The candidate distances of one list, nearest first."""
        return sorted((d for d in self.lumas if (d < 0) == future), key=abs)


def identify_references(vectors: np.ndarray, luma: np.ndarray, references: ReferenceFrames,
                        subpixel: bool) -> np.ndarray:
    """(n,) int16 signed distance of each vector's reference frame (0 when its list has no candidate)."""
    distance = np.zeros(len(vectors), np.int16)
    if len(vectors) == 0:
        return distance
    windows = _BlockWindows.of(vectors, luma, subpixel)
    for future in (False, True):
        in_list = np.nonzero((vectors["source"] > 0) == future)[0]
        candidates = references.distances(future)
        if len(in_list) == 0 or not candidates:
            continue

        def costs(candidate_distances, blocks):
            chosen = in_list[blocks]
            block_current, displaced = windows.current[chosen], windows.displaced_points(chosen)
            edge = np.nonzero(~windows.inside[chosen].all(axis=1))[0]  # blocks with samples past the edge
            inside = windows.inside[chosen[edge]]

            def cost(d):
                difference = block_current - displaced.read(references.lumas[d])
                np.abs(difference, out=difference)
                difference[edge] *= inside
                return difference.sum(axis=1)

            return np.stack([cost(d) for d in candidate_distances])  # (m, blocks)

        if len(candidates) > 1:
            probe = np.arange(0, len(in_list), max(1, len(in_list) // PROBE_BLOCKS))
            probed = costs(candidates, probe)
            wins = np.bincount(np.argmin(probed, axis=0)[_confident(probed)], minlength=len(candidates))
            candidates = [d for index, (d, won) in enumerate(zip(candidates, wins))
                          if index == 0 or won >= MIN_PROBE_WINS]
        distance[in_list] = _choose(np.asarray(candidates), costs(candidates, np.arange(len(in_list))))
    return distance


def unused_list_vectors(vectors: np.ndarray, luma: np.ndarray, references: ReferenceFrames, distances: np.ndarray,
                        subpixel: bool) -> np.ndarray:
    """(n,) bool: the exported vectors of a list that their block is not predicted from.

    FFmpeg exports, for every partition of a macroblock, the vector of each list the *macroblock* uses, also
    where that partition uses only the other list: the decoder's stored (0, 0) of a list not used (the
    reference index, which says so, is not exported). Such a vector points at unrelated pixels, so its motion
    and its prediction are wrong. A block exported in both lists, one of them (0, 0) and the other not, is
    read the way the encoder decided it: the zero list is unused where the other list's prediction alone
    matches the block at least as well as the average of both (bi-prediction), on the windows
    `identify_references` compares (each at its identified reference)."""
    unused = np.zeros(len(vectors), bool)
    past = np.nonzero((vectors["source"] < 0) & (distances != 0))[0]
    future = np.nonzero((vectors["source"] > 0) & (distances != 0))[0]
    if len(past) == 0 or len(future) == 0:
        return unused

    def block_keys(indices):
        block = vectors[indices]
        return ((block["dst_y"].astype(np.int64) * 65536 + block["dst_x"]) * 65536
                + block["w"].astype(np.int64) * 256 + block["h"])

    _, in_past, in_future = np.intersect1d(block_keys(past), block_keys(future), return_indices=True)
    first, second = past[in_past], future[in_future]
    zero = (vectors["motion_x"] == 0) & (vectors["motion_y"] == 0)
    one_zero = zero[first] != zero[second]
    first, second = first[one_zero], second[one_zero]
    if len(first) == 0:
        return unused
    pairs = np.concatenate((first, second))
    windows = _BlockWindows.of(vectors[pairs], luma, subpixel)  # row k: vector pairs[k]
    predicted = np.zeros((len(pairs), _SAMPLES), np.int16)
    for d in np.unique(distances[pairs]):
        chosen = np.nonzero(distances[pairs] == d)[0]
        predicted[chosen] = windows.displaced_points(chosen).read(references.lumas[int(d)])
    first_prediction, second_prediction = predicted[:len(first)], predicted[len(first):]
    current = windows.current[:len(first)]

    def cost(prediction):
        return np.abs(current - prediction).sum(axis=1)

    average = cost((first_prediction + second_prediction + 1) // 2)  # H.264's rounded bi-prediction
    first_unused = zero[first] & (cost(second_prediction) <= average)
    second_unused = zero[second] & (cost(first_prediction) <= average)
    unused[first[first_unused]] = True
    unused[second[second_unused]] = True
    return unused


@dataclass(frozen=True)
class _BlockWindows:
    """The 4 x 4 sample points around each vector's block centre, the block's pixels there, and where its
    vector displaces them."""

    current: np.ndarray  # (n, 16) int16 the block's pixels at its sample points (clipped to the frame)
    ref_rows: np.ndarray  # (n, 4) intp displaced sample rows, clipped to the frame
    ref_cols: np.ndarray  # (n, 4) intp
    inside: np.ndarray  # (n, 16) int16 1 where the displaced sample lies in the frame (else a clamped edge pixel)

    @classmethod
    def of(cls, vectors: np.ndarray, luma: np.ndarray, subpixel: bool) -> "_BlockWindows":
        height, width = luma.shape
        rows = np.clip(vectors["dst_y"].astype(np.intp)[:, None] + _OFFSETS, 0, height - 1)
        cols = np.clip(vectors["dst_x"].astype(np.intp)[:, None] + _OFFSETS, 0, width - 1)
        shift_x, shift_y = _whole_pixel_displacements(vectors, subpixel)
        displaced_rows, displaced_cols = rows + shift_y[:, None], cols + shift_x[:, None]
        rows_inside = (displaced_rows >= 0) & (displaced_rows < height)
        cols_inside = (displaced_cols >= 0) & (displaced_cols < width)
        inside = (rows_inside[:, :, None] & cols_inside[:, None, :]).reshape(len(rows), -1).astype(np.int16)
        return cls(_SamplePoints(rows, cols).read(luma), np.clip(displaced_rows, 0, height - 1),
                   np.clip(displaced_cols, 0, width - 1), inside)

    def displaced_points(self, blocks: np.ndarray) -> "_SamplePoints":
        """The displaced sample points of ``blocks``, to read from any reference."""
        return _SamplePoints(self.ref_rows[blocks], self.ref_cols[blocks])


def _choose(candidates: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(blocks,) chosen distance from (m, blocks) costs: the best, or the dominant reference where it ties."""
    best = np.argmin(cost, axis=0)
    if len(candidates) == 1:
        return candidates[best]
    confident = _confident(cost)
    dominant = int(np.argmax(np.bincount(best[confident], minlength=len(candidates)))) if confident.any() else 0
    tie = cost[dominant] <= TIE_TOLERANCE * cost.min(axis=0) + _SAMPLES
    return candidates[np.where(tie & ~confident, dominant, best)]


def _confident(cost: np.ndarray) -> np.ndarray:
    """(blocks,) whether each block's best candidate beats the second clearly: by `CONFIDENT_RATIO`, and by at
    least one luma level per sample (two perfect matches are a tie, not a confident pick)."""
    ordered = np.partition(cost, 1, axis=0)
    return ordered[0] + _SAMPLES <= CONFIDENT_RATIO * ordered[1]


class _SamplePoints:
    """The 4 x 4 sample points (rows (n, 4) x columns (n, 4)) of n blocks, read from (H, W) lumas in place (a
    strided view of the decoder's buffer is not copied): as flat offsets into the luma's rows, computed once per
    row stride and read with one `take` per luma instead of 2-D fancy indexing (the same pixels)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray):
        self.rows, self.cols = rows, cols
        self._offsets: dict[int, np.ndarray] = {}  # row stride (bytes) -> (n, 16) intp

    def read(self, luma: np.ndarray) -> np.ndarray:
        """(n, 16) int16 pixels of ``luma`` at the points."""
        stride = luma.strides[0]
        if luma.dtype != np.uint8 or luma.strides[1] != 1 or stride < luma.shape[1]:  # not rows of bytes
            return luma[self.rows[:, :, None], self.cols[:, None, :]].reshape(len(self.rows), -1).astype(np.int16)
        offsets = self._offsets.get(stride)
        if offsets is None:
            offsets = (self.rows[:, :, None] * stride + self.cols[:, None, :]).reshape(len(self.rows), -1)
            self._offsets[stride] = offsets
        span = (luma.shape[0] - 1) * stride + luma.shape[1]  # the bytes the (H, W) view covers, row gaps included
        return np.lib.stride_tricks.as_strided(luma, shape=(span,), strides=(1,)).take(offsets).astype(np.int16)


def _whole_pixel_displacements(vectors: np.ndarray, subpixel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(n,) intp rounded displacement of each block into its reference."""
    if subpixel:
        scale = np.maximum(vectors["motion_scale"], 1)
        return (np.rint(vectors["motion_x"] / scale).astype(np.intp),
                np.rint(vectors["motion_y"] / scale).astype(np.intp))
    return ((vectors["src_x"] - vectors["dst_x"]).astype(np.intp),
            (vectors["src_y"] - vectors["dst_y"]).astype(np.intp))


class ReferenceWindow:
    """Decoded frames in display order, and the sampled frames waiting for the later frames they may reference.

    `push` a frame (``sampled``: it is to be scored); `ready` then yields, in sampling order, each sampled frame
    whose references have all arrived, with its `ReferenceFrames` source (the window's frames by distance).
    `flush` yields the rest at the end of the stream."""

    def __init__(self, future_references: bool):
        self.future_references = future_references
        self.frames: deque = deque(maxlen=PAST_WINDOW + FUTURE_WINDOW + 1)
        self.waiting: deque = deque()

    def push(self, frame, sampled: bool) -> None:
        self.frames.append(frame)
        if sampled:
            self.waiting.append(frame)

    def ready(self):
        """(frame, {distance: frame}) of the sampled frames whose references are all decoded, in order."""
        while self.waiting and self._complete(self.waiting[0]):
            yield self._take()

    def flush(self):
        while self.waiting:
            yield self._take()

    def _complete(self, frame) -> bool:
        if not self.future_references or frame.is_anchor:
            return True
        later = [other for other in self.frames if other.index > frame.index]
        return len(later) >= FUTURE_WINDOW or any(other.is_anchor for other in later)

    def _take(self):
        frame = self.waiting.popleft()
        nearby = {}
        for other in reversed(self.frames):  # latest first, back to the keyframe nothing after refers past
            distance = frame.index - other.index
            if distance > PAST_WINDOW:
                break
            if distance > 0:
                nearby[distance] = other
                if other.is_keyframe:
                    break
        if self.future_references and not frame.is_anchor:
            for other in sorted((o for o in self.frames if o.index > frame.index), key=lambda o: o.index):
                nearby[frame.index - other.index] = other
                if other.is_anchor or frame.index - other.index <= -FUTURE_WINDOW:
                    break
        return frame, nearby
