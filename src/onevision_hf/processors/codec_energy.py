"""Per-pixel residual energy of a frame from its motion fields (codec vectors or block matching).

A `MotionField` holds one displacement per ``cell x cell`` pixel cell, pointing from the current frame into its
reference frame (``src - dst``, as FFmpeg exports it), which cells carry a vector (intra-coded blocks do not),
and which reference each cell's vector points into (`reference_frames`). A frame has one field per
prediction list (past, future). From them:

* `codec_motion_fields`: exported vectors rasterised per list, each cell with its reference's distance;
* `compensated_residual`: |Y - prediction| (or its sampling-insensitive form), the prediction rebuilt from
  each cell's reference luma with the fields (the past list first); the stock decoder does not expose
  residuals and this is their motion-compensated proxy. Cells without a vector get the high-pass energy
  |Y - blur(Y)| of an intra block;
* `normalize_energy`: per-frame division by a percentile with a floor, clipped to [0, 1] (`exact_percentile`:
  numpy's value, bit for bit, without its cost).

Everything is float32; per-cell quantities (shifts, bilinear weights) are computed once per cell, not per pixel.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESIDUAL_MEASURES = ("difference", "sampling-insensitive")
CODEC_CELL = 4  # energy pixels per side of a motion-field cell (at full resolution: H.264's smallest partition)

# `exact_percentile` brackets its order statistic with every 17th value: a prime, so the sample meets every
# column of a coding block's grid (a stride of 16 read only block edges of a 1280-wide residual, whose values
# differ from the rest: the bracket missed on 20 of 30 frames of the 720p clip)
PERCENTILE_SAMPLE_STEP = 17
MIN_PERCENTILE_SAMPLE = 64  # smaller samples: the array is partitioned whole
# the bracket's half-width in sample ranks, times the square root of the sample's size (a sample rank's standard
# deviation is at most half that: 6 of them)
PERCENTILE_SAMPLE_MARGIN = 3.0


@dataclass(frozen=True)
class MotionField:
    """Displacements (into the reference frame) on a grid of ``cell x cell`` pixel cells."""

    dx: np.ndarray  # (rows, cols) float32 pixels
    dy: np.ndarray  # (rows, cols) float32 pixels
    covered: np.ndarray  # (rows, cols) bool, False where the block was intra coded (no vector)
    cell: int
    # (rows, cols) int16 signed distance of each cell's reference (d > 0: d frames earlier, d < 0: later;
    # 0: unknown reference); None: every cell predicts from the previous frame (d = 1)
    distance: np.ndarray | None = None

    @classmethod
    def empty(cls, height: int, width: int, cell: int) -> "MotionField":
        shape = (math.ceil(height / cell), math.ceil(width / cell))
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(shape, bool), cell)

    def downscaled(self, factor: int) -> "MotionField":
        """The same field in the pixels of the frame downsampled by ``factor`` (which divides ``cell``)."""
        if factor == 1:
            return self
        return MotionField(self.dx / np.float32(factor), self.dy / np.float32(factor), self.covered,
                           self.cell // factor, self.distance)

    def distances(self) -> np.ndarray:
        """(rows, cols) int16 reference distance of every cell (1 everywhere without per-cell references)."""
        return np.ones(self.dx.shape, np.int16) if self.distance is None else self.distance

    def to_pixels(self, values: np.ndarray, height: int, width: int) -> np.ndarray:
        """Repeat a per-cell (rows, cols) array to an (H, W) per-pixel one."""
        return np.repeat(np.repeat(values, self.cell, axis=0), self.cell, axis=1)[:height, :width]


def codec_motion_fields(vectors: np.ndarray | None, height: int, width: int, distances: np.ndarray,
                        subpixel: bool = True, use_future: bool = False, downscale: int = 1) -> list[MotionField]:
    """Rasterise exported motion vectors onto cells of 4 x 4 energy pixels: the past-list field, then
    (``use_future``) the future-list one, each cell carrying its vector's reference distance from
    ``distances`` ((n,) int16, `identify_references`; 0 = no candidate frame, the cell stays uncovered).

    The fields are in the pixels of a luma downsampled by ``downscale`` (1, 2 or 4; (height, width) its size):
    a cell covers ``4 x downscale`` video pixels (blocks smaller than that share a cell: the last one listed
    is kept), displacements are divided by ``downscale``.
    ``subpixel=False`` keeps the whole-pixel ``src - dst`` the exporter rounds to (the released recipe);
    ``True`` uses ``motion / motion_scale``.
    """
    cell = CODEC_CELL
    if vectors is None or len(vectors) == 0:
        return [MotionField.empty(height, width, cell)]
    dx, dy = _block_displacements(vectors, subpixel)
    dx, dy = dx / np.float32(downscale), dy / np.float32(downscale)
    block, cells = _block_cells(vectors, (math.ceil(height / cell), math.ceil(width / cell)), cell * downscale)
    future = (vectors["source"] > 0)[block]
    fields = []
    for in_list in ((~future, future) if use_future else (~future,)):
        field = MotionField.empty(height, width, cell)
        field = MotionField(field.dx, field.dy, field.covered, cell, np.zeros(field.dx.shape, np.int16))
        chosen = in_list & (distances[block] != 0)
        list_cells, list_blocks = cells[chosen], block[chosen]
        field.dx.reshape(-1)[list_cells] = dx[list_blocks]
        field.dy.reshape(-1)[list_cells] = dy[list_blocks]
        field.distance.reshape(-1)[list_cells] = distances[list_blocks]
        field.covered.reshape(-1)[list_cells] = True
        fields.append(field)
    return fields


def _block_displacements(vectors: np.ndarray, subpixel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(n,) float32 dx, dy of each exported block, in pixels, pointing into its reference."""
    if subpixel:
        scale = np.maximum(vectors["motion_scale"], 1).astype(np.float32)
        return vectors["motion_x"] / scale, vectors["motion_y"] / scale
    dx = (vectors["src_x"] - vectors["dst_x"]).astype(np.float32)
    return dx, (vectors["src_y"] - vectors["dst_y"]).astype(np.float32)


def _block_cells(vectors: np.ndarray, grid_shape: tuple[int, int], cell: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid cells each block covers: (m,) block index and (m,) flat cell index, cells off the grid dropped."""
    rows, cols = grid_shape
    top = (vectors["dst_y"].astype(np.intp) - vectors["h"] // 2) // cell
    left = (vectors["dst_x"].astype(np.intp) - vectors["w"] // 2) // cell
    span_y = np.maximum(vectors["h"] // cell, 1).astype(np.int32)  # int32: its division is much faster than int64's
    span_x = np.maximum(vectors["w"] // cell, 1).astype(np.int32)
    count = span_y * span_x
    block = np.repeat(np.arange(len(vectors)), count)  # (m,) one entry per covered cell, blocks in order
    first_of_block = np.repeat(np.cumsum(count, dtype=np.int32) - count, count)
    within = np.arange(len(block), dtype=np.int32) - first_of_block  # raster order inside each block
    offset_y, offset_x = np.divmod(within, span_x[block])
    cell_y = top[block] + offset_y
    cell_x = left[block] + offset_x
    inside = (cell_y >= 0) & (cell_y < rows) & (cell_x >= 0) & (cell_x < cols)
    return block[inside], (cell_y * cols + cell_x)[inside]


def highpass_energy(luma: np.ndarray) -> np.ndarray:
    """(H, W) float32 |Y - blur(Y)|, blur the 3 x 3 box mean with edges replicated: the residual an intra block
    leaves, texture without motion."""
    return _highpass(np.pad(luma, 1, mode="edge"))


def _highpass(padded: np.ndarray) -> np.ndarray:
    """(h + 2, w + 2, ...) uint8 windows -> (h, w, ...) float32 |Y - 3 x 3 box mean| of their inner pixels.

    Computed as |9 Y - window sum| / 9 in int16 (at most 9 x 255), so only the final division rounds.
    """
    height, width = padded.shape[0] - 2, padded.shape[1] - 2
    wide = padded.astype(np.int16)
    columns = wide[:height] + wide[1:height + 1]  # vertical sums of 3, then horizontal ones
    columns += wide[2:]
    sums = columns[:, :width] + columns[:, 1:width + 1]
    sums += columns[:, 2:]
    difference = wide[1:-1, 1:-1] * np.int16(9)
    difference -= sums
    highpass = np.abs(difference, out=difference).astype(np.float32)
    highpass /= np.float32(9)
    return highpass


def _cell_highpass(luma: np.ndarray, cell_y: np.ndarray, cell_x: np.ndarray, cell: int) -> np.ndarray:
    """(cell, cell, n) float32 `highpass_energy` of the listed cells only (cells overhanging the frame read
    its replicated edge; those pixels are dropped by the caller)."""
    height, width = luma.shape
    bottom = max(1, (cell_y.max() + 1) * cell + 1 - height)
    right = max(1, (cell_x.max() + 1) * cell + 1 - width)
    padded = np.pad(luma, ((1, bottom), (1, right)), mode="edge")
    index = _cell_windows(cell_y, cell_x, cell, cell + 2, padded.shape[1])
    return _highpass(np.take(padded.reshape(-1), index, mode="clip"))


def _cell_windows(cell_y: np.ndarray, cell_x: np.ndarray, cell: int, size: int, row_length: int) -> np.ndarray:
    """(size, size, n) flat indices, in a row-major image ``row_length`` wide, of the ``size x size`` window
    starting at the first pixel of each listed cell."""
    span = np.arange(size)
    return (span[:, None] * row_length + span)[:, :, None] + (cell_y * cell * row_length + cell_x * cell)


@dataclass(frozen=True)
class CellShifts:
    """Per listed cell of a ``cell x cell`` grid with ``cols`` columns: flat cell index, displacement and the
    reference plane it reads; (n,) each."""

    cells: np.ndarray  # (n,) intp flat cell index
    dx: np.ndarray  # (n,) float32
    dy: np.ndarray  # (n,) float32
    plane: np.ndarray  # (n,) intp index into the stacked references
    cols: int
    cell: int


@dataclass(frozen=True)
class ReferencePlanes:
    """The reference lumas a frame's cells are predicted from, ready for the prediction's gathers: their signed
    distances in ascending order and the planes, in that order, edge-padded by one pixel and stacked as one flat
    float32 array (built once per frame, read by every prediction of it: by the vectors and by the camera)."""

    distances: np.ndarray  # (R,) int16 ascending
    flat: np.ndarray  # (R * (height + 2) * (width + 2),) float32
    height: int
    width: int

    @classmethod
    def of(cls, references: Mapping[int, np.ndarray]) -> "ReferencePlanes":
        """From equal (H, W) lumas by signed distance."""
        order = sorted(references)
        height, width = references[order[0]].shape if order else (0, 0)
        stacked = np.empty((len(order), height + 2, width + 2), np.float32)
        for plane, distance in zip(stacked, order):
            plane[1:-1, 1:-1] = references[distance]
            plane[0, 1:-1], plane[-1, 1:-1] = plane[1, 1:-1], plane[-2, 1:-1]
            plane[:, 0], plane[:, -1] = plane[:, 1], plane[:, -2]
        return cls(np.array(order, np.int16), stacked.reshape(-1), height, width)

    @classmethod
    def for_fields(cls, fields: Sequence[MotionField], references: Mapping[int, np.ndarray]) -> "ReferencePlanes":
        """Those of ``references`` some cell of ``fields`` is predicted from."""
        used = set()
        for field in fields:
            used.update(int(d) for d in np.unique(field.distances()[field.covered]))
        return cls.of({d: references[d] for d in used if d in references})


def compensated_prediction(reference: np.ndarray, field: MotionField) -> np.ndarray:
    """(H, W) float32 prediction of the current frame: the reference luma sampled (bilinearly) at x + dx, y + dy,
    sample positions outside the frame clamped to its edge."""
    rows, cols = field.dx.shape
    count = rows * cols
    shifts = CellShifts(np.arange(count), field.dx.reshape(-1), field.dy.reshape(-1), np.zeros(count, np.intp),
                        cols, field.cell)
    return _frame_prediction(ReferencePlanes.of({1: reference}), shifts, rows)[:reference.shape[0], :reference.shape[1]]


class _PredictionTaps:
    """The bilinear taps of a cell grid's prediction (`_frame_prediction`), gathered in the frame's layout.

    All pixels of a cell share its displacement, so its whole-pixel shift and bilinear weights are per cell:
    pixel (i, j) of a cell reads taps (i, j) to (i + 1, j + 1) from the cell's first tap on, gathered at once
    from the references stacked and edge-padded by one pixel, each pixel's first tap clamped to one pixel
    around the frame (so that every tap reads what clamping it to the frame reads). Each listed cell reads its
    own plane of ``references``; unlisted cells the unshifted first plane (the caller overwrites them)."""

    def __init__(self, references: ReferencePlanes, shifts: CellShifts, rows: int):
        height, width = references.height, references.width
        cell, cols = shifts.cell, shifts.cols
        self.flat, self.stride, self.shape = references.flat, width + 2, (rows * cell, cols * cell)
        dx, dy = np.zeros(rows * cols, np.float32), np.zeros(rows * cols, np.float32)
        plane = np.zeros(rows * cols, np.intp)
        dx[shifts.cells], dy[shifts.cells], plane[shifts.cells] = shifts.dx, shifts.dy, shifts.plane
        shift_x, shift_y = np.floor(dx), np.floor(dy)  # whole-pixel part
        # each cell's fractions repeated along its pixel columns, (rows, 1, cols * cell): products broadcast
        # over a cell's pixel rows only, with long inner loops
        self.frac_x = np.repeat((dx - shift_x).reshape(rows, cols), cell, axis=1)[:, None, :]
        self.frac_y = np.repeat((dy - shift_y).reshape(rows, cols), cell, axis=1)[:, None, :]
        span = np.arange(cell)
        top = (np.arange(rows)[:, None] * cell + shift_y.reshape(rows, cols).astype(np.intp))  # (rows, cols)
        left = (np.arange(cols)[None, :] * cell + shift_x.reshape(rows, cols).astype(np.intp))
        # a pixel's first tap: its cell's plane and row offset, (rows, cell, cols), repeated along the cell's
        # pixel columns, plus its column, (rows, cols * cell); every pass in place, with long inner loops
        row_offsets = top[:, None, :] + span[:, None]
        np.clip(row_offsets, -1, height - 1, out=row_offsets)
        row_offsets += 1
        row_offsets *= self.stride
        row_offsets += (plane.reshape(rows, cols) * ((height + 2) * self.stride))[:, None]
        first_cols = np.repeat(left, cell, axis=1)
        first_cols += np.tile(span, cols)
        np.clip(first_cols, -1, width - 1, out=first_cols)
        first_cols += 1
        self.first = np.repeat(row_offsets, cell, axis=2)
        self.first += first_cols[:, None, :]
        self._gathered: dict[int, np.ndarray] = {}

    def at(self, offset: int) -> np.ndarray:
        """(rows, cell, cols * cell) float32: every pixel's tap ``offset`` flat positions past its first (gathered
        once: a later call for the same offset returns the same array)."""
        if offset not in self._gathered:
            # indices are in range by construction: mode "clip" only skips numpy's bounds check
            self._gathered[offset] = np.take(self.flat, self.first + offset if offset else self.first, mode="clip")
        return self._gathered[offset]

    def interpolated(self) -> np.ndarray:
        """(rows, cell, cols * cell) float32 bilinear values: the horizontal, then the vertical interpolation, as
        ``near * (1 - frac) + far * frac`` in float32 (one tap where no cell has a fraction)."""
        frac_x, frac_y = self.frac_x, self.frac_y
        fractional_x, fractional_y = bool(frac_x.any()), bool(frac_y.any())

        def tap_row(offset: int) -> np.ndarray:
            near = self.at(offset)
            return near * (1 - frac_x) + self.at(offset + 1) * frac_x if fractional_x else near

        prediction = tap_row(0)
        if fractional_y:
            prediction = prediction * (1 - frac_y) + tap_row(self.stride) * frac_y
        return prediction


def _frame_prediction(references: ReferencePlanes, shifts: CellShifts, rows: int) -> np.ndarray:
    """(rows * cell, cols * cell) float32 `compensated_prediction` of the cell grid (`_PredictionTaps`)."""
    taps = _PredictionTaps(references, shifts, rows)
    return taps.interpolated().reshape(taps.shape)


def _frame_prediction_bounds(references: ReferencePlanes, shifts: CellShifts,
                            rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows * cell, cols * cell) float32 bounds of what each pixel's sub-sample prediction may be: the bilinear
    value widened towards the least and the greatest of the taps it weighs, by the larger of ``4 f (1 - f)``
    over the cell's two fractions f (the shape of linear interpolation's error bound: 0 at a sample, the whole
    tap range half-way). A tap of weight 0 (along an axis where the cell has no fraction) is left out."""
    taps = _PredictionTaps(references, shifts, rows)
    value = taps.interpolated()
    first = taps.at(0)
    low, high = first.copy(), first.copy()
    weighted_x, weighted_y = taps.frac_x > 0, taps.frac_y > 0
    for offset, weighted in ((1, weighted_x), (taps.stride, weighted_y), (taps.stride + 1, weighted_x & weighted_y)):
        if weighted.any():
            tap = taps.at(offset) if weighted.all() else np.where(weighted, taps.at(offset), first)
            np.minimum(low, tap, out=low)
            np.maximum(high, tap, out=high)
    widening = np.float32(4) * np.maximum(taps.frac_x * (1 - taps.frac_x), taps.frac_y * (1 - taps.frac_y))
    low -= value
    low *= widening
    low += value
    high -= value
    high *= widening
    high += value
    return low.reshape(taps.shape), high.reshape(taps.shape)


def compensated_residual(luma: np.ndarray, fields: Sequence[MotionField],
                         references: Mapping[int, np.ndarray] | ReferencePlanes,
                         unpredicted_highpass: bool = True, measure: str = "difference") -> np.ndarray:
    """(H, W) float32 residual of the prediction (``measure``): each covered cell predicted from the reference its
    distance names, by the first field (list) covering it (a bi-predicted block's past prediction stands for
    the average of both: each is a good prediction on its own, and it halves the work); cells no list predicts
    get high-pass energy, or +inf with ``unpredicted_highpass=False`` (for a caller that takes per cell the
    lesser of two residuals and has those cells' high-pass energy already).

    ``measure`` (`RESIDUAL_MEASURES`): ``"difference"``, |Y - bilinear prediction|; ``"sampling-insensitive"``,
    how far Y lies outside the bounds of what the sub-sample prediction may be (0 inside them; after
    Birchfield and Tomasi's sampling-insensitive dissimilarity, 1998): the bilinear value widened towards the
    least and greatest of the reference samples it weighs, by ``4 f (1 - f)`` (`_frame_prediction_bounds`).
    A luma at a coarser resolution than the decoder's, or a decoder's sub-pixel filter other than bilinear,
    gives a texture a prediction error the codec did not leave: a whole-pixel copy at an odd shift is a
    half-sample shift of a 2x-downsampled luma, whose bilinear value blurs the texture, though the copy is
    exact and the true value lies between the samples. Interpolation's error vanishes at a sample and is
    largest half-way, and so is the widening: a whole-sample shift is the plain difference, and a prediction
    a hair off a sample (a still camera's fitted motion) stays nearly one, so an object creeping by a
    fraction of a sample against it still leaves its residual.

    Works in the frame's layout: every predicted cell, whatever its reference, in one gather per tap.
    ``references``: the lumas by signed distance, or their `ReferencePlanes` (a caller predicting one frame
    twice builds them once)."""
    height, width = luma.shape
    if not isinstance(references, ReferencePlanes):
        references = ReferencePlanes.for_fields(fields, references)
    shifts = _first_list_shifts(fields, references)
    if shifts is None:
        return highpass_energy(luma) if unpredicted_highpass else np.full(luma.shape, np.inf, np.float32)
    cell, cols = shifts.cell, shifts.cols
    rows = fields[0].dx.shape[0]
    padded = luma
    if (rows * cell, cols * cell) != (height, width):
        padded = np.pad(luma, ((0, rows * cell - height), (0, cols * cell - width)), mode="edge")
    if measure == "sampling-insensitive":
        low, high = _frame_prediction_bounds(references, shifts, rows)
        residual = np.maximum(low - padded, padded - high, out=low)
        residual = np.maximum(residual, 0, out=residual)
    else:
        residual = _frame_prediction(references, shifts, rows)
        residual -= padded
        residual = np.abs(residual, out=residual)
    unpredicted = np.ones(rows * cols, bool)
    unpredicted[shifts.cells] = False
    intra = np.flatnonzero(unpredicted)
    if len(intra):
        intra_y, intra_x = np.divmod(intra, cols)
        cells = residual.reshape(rows, cell, cols, cell)  # a view: (cell row, pixel row, cell column, pixel column)
        cells[intra_y, :, intra_x, :] = (_cell_highpass(luma, intra_y, intra_x, cell).transpose(2, 0, 1)
                                         if unpredicted_highpass else np.inf)
    return np.ascontiguousarray(residual[:height, :width])


def _first_list_shifts(fields: Sequence[MotionField], references: ReferencePlanes) -> CellShifts | None:
    """The `CellShifts` of every cell some field covers with a vector into a known reference: from the first
    field whose vector keeps the cell inside the reference frame, else from the first field (a prediction read
    past the frame's edge is clamped edge pixels, not what the decoder predicted from the other list); planes
    index ``references.distances``. None when no cell is predicted."""
    known, height, width = references.distances, references.height, references.width
    taken = np.zeros(fields[0].dx.size, bool)
    planes, predictable = [], []  # per field: each cell's plane, and whether it has a vector into a known one
    for field in fields:
        distance = field.distances().reshape(-1)
        plane = np.minimum(np.searchsorted(known, distance), max(len(known) - 1, 0))
        planes.append(plane)
        predictable.append(field.covered.reshape(-1) & (known[plane] == distance) if len(known)
                           else np.zeros(distance.shape, bool))
    parts = []
    for inside_only in (True, False):
        for field, plane, usable in zip(fields, planes, predictable):
            usable = usable & ~taken
            if inside_only:
                usable &= _stays_inside(field, height, width)
            cells = np.nonzero(usable)[0]
            taken[cells] = True
            parts.append((cells, field.dx.reshape(-1)[cells], field.dy.reshape(-1)[cells], plane[cells]))
    cells, dx, dy, plane = (np.concatenate(column) for column in zip(*parts))
    if len(cells) == 0:
        return None
    return CellShifts(cells, dx, dy, plane, fields[0].dx.shape[1], fields[0].cell)


def _stays_inside(field: MotionField, height: int, width: int) -> np.ndarray:
    """(rows * cols,) bool: the cell displaced by its vector lies wholly inside an (height, width) frame."""
    rows, cols = field.dx.shape
    top = (np.arange(rows, dtype=np.float32) * field.cell)[:, None] + field.dy
    left = (np.arange(cols, dtype=np.float32) * field.cell)[None, :] + field.dx
    return ((top >= 0) & (top + field.cell <= height) & (left >= 0) & (left + field.cell <= width)).reshape(-1)


def normalize_energy(energy: np.ndarray, percentile: float, floor: float) -> np.ndarray:
    """(float32) divide by the frame's ``percentile`` (at least ``floor``) and clip to [0, 1], in place: ``energy``
    (a float32 array of the caller's own) becomes the result."""
    scale = max(exact_percentile(energy, percentile), floor) if energy.size else floor
    np.divide(energy, np.float32(scale), out=energy)
    return np.clip(energy, 0.0, 1.0, out=energy)


def exact_percentile(values: np.ndarray, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (linear method, no NaNs), bit for bit, at a fraction of its cost.

    The two order statistics around numpy's virtual index come from `_neighbouring_order_statistics`; numpy's
    own interpolation (`numpy.lib._function_base_impl._lerp`: from the nearer end, in the values' dtype) then
    runs on them, with the same weight.
    """
    flat = values.reshape(-1)
    position = (flat.size - 1) * (percentile / 100)  # numpy's virtual index
    lower = min(int(position), flat.size - 1)
    real = flat.dtype.type if flat.dtype.kind == "f" else np.float64  # the dtype numpy interpolates in
    below, above = (real(value) for value in _neighbouring_order_statistics(flat, lower))
    weight = position - lower
    difference = above - below
    if weight >= 0.5:
        return float(above - difference * real(1 - weight))
    return float(below + difference * real(weight))


def _neighbouring_order_statistics(flat: np.ndarray, rank: int) -> tuple:
    """The ``rank``-th and ``rank + 1``-th smallest values of a 1-D array (the last one twice at the end).

    Most values are far from ``rank``: an evenly strided sample (every `PERCENTILE_SAMPLE_STEP`-th value) brackets
    the order statistic between two of its own order statistics, ``lo`` and ``hi``, ranks apart by
    `PERCENTILE_SAMPLE_MARGIN` times the square root of its size either side. Counting the values at most ``lo``
    then places ``rank`` exactly: at ``lo`` itself (a run of equal values, often the zeros of pixels predicted
    exactly), or among the few values in (``lo``, ``hi``], which alone are partitioned (2-4x faster than
    partitioning the whole map: `benchmarks/frame_kernels.py --kernel percentile`). The result is exact whatever
    the sample: a bracket that misses (a pattern that aliases with the stride) is detected by the counts and the
    whole array partitioned instead (`_order_statistics_by_partition`).
    """
    size = flat.size
    sample = flat[::PERCENTILE_SAMPLE_STEP]
    if len(sample) < MIN_PERCENTILE_SAMPLE:
        return _order_statistics_by_partition(flat, rank)
    centre = rank * len(sample) // size
    margin = int(PERCENTILE_SAMPLE_MARGIN * math.sqrt(len(sample))) + 2
    kth = [max(centre - margin, 0), min(centre + margin, len(sample) - 1)]
    lo, hi = np.partition(sample, kth)[kth]
    at_most_lo = np.count_nonzero(flat <= lo)
    if rank < at_most_lo:  # at lo, unless the bracket lies above the order statistic
        if rank < np.count_nonzero(flat < lo):
            return _order_statistics_by_partition(flat, rank)
        if rank + 1 < at_most_lo:
            return lo, lo
        above = flat[flat > lo]
        return lo, above.min() if len(above) else lo
    inside = flat[(flat > lo) & (flat <= hi)]
    k = rank - at_most_lo  # rank among the values in (lo, hi]
    if k + 1 < len(inside):
        ordered = np.partition(inside, [k, k + 1])
        return ordered[k], ordered[k + 1]
    if k + 1 == len(inside):
        above = flat[flat > hi]
        value = inside.max()
        return value, above.min() if len(above) else value
    return _order_statistics_by_partition(flat, rank)  # the bracket lies below the order statistic


def _order_statistics_by_partition(flat: np.ndarray, rank: int) -> tuple:
    """`_neighbouring_order_statistics` by one partition of the whole array around ``rank``, the next value being
    the minimum above it. Ties at the minimum are counted and set aside first: a partition inside a long run of
    equal values is tens of times slower.
    """
    lowest = flat.min()
    above = flat[flat > lowest]
    rank -= flat.size - len(above)  # rank among the values above the minimum
    if rank < -1 or (rank == -1 and len(above) == 0):
        return lowest, lowest
    if rank == -1:
        return lowest, above.min()
    ordered = np.partition(above, rank)
    return ordered[rank], ordered[rank + 1:].min() if rank + 1 < len(above) else ordered[rank]
