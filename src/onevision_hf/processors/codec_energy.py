"""Per-pixel motion and residual energy of a frame from a motion field (codec vectors or block matching).

A `MotionField` holds one displacement per ``cell x cell`` pixel cell, pointing from the current frame into its
reference frame (``src - dst``, as FFmpeg exports it), and which cells carry a vector (intra-coded blocks do
not). From it:

* `motion_magnitude`: displacement length per cell after removing the camera motion (median vx, vy);
* `residual_magnitude`: |Y - prediction|, the prediction rebuilt from the reference luma with the field
  (the stock decoder does not expose residuals; this is their motion-compensated proxy); cells without a
  vector get the high-pass energy |Y - blur(Y)| of an intra block;
* `normalize_energy`: per-frame division by a percentile with a floor, clipped to [0, 1] (`exact_percentile`:
  numpy's value, bit for bit, without its cost).

Everything is float32; per-cell quantities (shifts, bilinear weights) are computed once per cell, not per pixel.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionField:
    """Displacements (into the reference frame) on a grid of ``cell x cell`` pixel cells."""

    dx: np.ndarray  # (rows, cols) float32 pixels
    dy: np.ndarray  # (rows, cols) float32 pixels
    covered: np.ndarray  # (rows, cols) bool, False where the block was intra coded (no vector)
    cell: int

    @classmethod
    def empty(cls, height: int, width: int, cell: int) -> "MotionField":
        shape = (math.ceil(height / cell), math.ceil(width / cell))
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(shape, bool), cell)

    def to_pixels(self, values: np.ndarray, height: int, width: int) -> np.ndarray:
        """Repeat a per-cell (rows, cols) array to an (H, W) per-pixel one."""
        return np.repeat(np.repeat(values, self.cell, axis=0), self.cell, axis=1)[:height, :width]


def codec_motion_field(vectors: np.ndarray | None, height: int, width: int, subpixel: bool = True,
                       use_future: bool = False, cell: int = 4) -> MotionField:
    """Rasterise exported motion vectors onto 4 x 4-pixel cells.

    ``subpixel=False`` keeps the whole-pixel ``src - dst`` the exporter rounds to (the released recipe);
    ``True`` uses ``motion / motion_scale``. Past-list vectors (source < 0) always count; with ``use_future``
    future-list vectors fill the cells no past vector covers, negated so both point backwards in time.
    """
    field = MotionField.empty(height, width, cell)
    if vectors is None or len(vectors) == 0:
        return field
    dx, dy = _block_displacements(vectors, subpixel)
    block, cells = _block_cells(vectors, field.dx.shape, cell)  # every covered cell of every block
    past = (vectors["source"] < 0)[block]
    layers = ((~past, -1.0), (past, 1.0)) if use_future else ((past, 1.0),)
    for layer, sign in layers:  # later layers overwrite earlier ones
        layer_cells, layer_blocks = cells[layer], block[layer]
        field.dx.reshape(-1)[layer_cells] = sign * dx[layer_blocks]
        field.dy.reshape(-1)[layer_cells] = sign * dy[layer_blocks]
        field.covered.reshape(-1)[layer_cells] = True
    return field


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


def motion_magnitude(field: MotionField, compensate_camera: bool = True) -> np.ndarray:
    """(rows, cols) float32 displacement length per covered cell, minus the camera motion.

    The camera motion is the median vector over the whole grid, cells without a vector counting as still
    (as the released recipe draws vectors on a zero grid); cells without a vector score 0.
    """
    dx, dy = field.dx, field.dy
    if compensate_camera:
        dx = dx - np.median(dx)
        dy = dy - np.median(dy)
    return np.where(field.covered, np.hypot(dx, dy), 0.0).astype(np.float32)


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


def compensated_prediction(reference: np.ndarray, field: MotionField) -> np.ndarray:
    """(H, W) float32 prediction of the current frame: the reference luma sampled (bilinearly) at x + dx, y + dy,
    sample positions outside the frame clamped to its edge."""
    return _frame_view(_cell_prediction(reference, field), *reference.shape)


def _frame_view(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """(rows, cell, cols, cell) values on the cell grid -> (H, W) view of the frame's pixels (overhang cut off)."""
    rows, cell, cols, _ = cells.shape
    return cells.reshape(rows * cell, cols * cell)[:height, :width]


def _cell_prediction(reference: np.ndarray, field: MotionField) -> np.ndarray:
    """(rows, cell, cols, cell) float32 `compensated_prediction` on the whole cell grid (cells may overhang).

    All pixels of a cell share its displacement, so its whole-pixel shift and bilinear weights are per cell:
    pixel (i, j) of every cell reads taps (i, j) to (i + 1, j + 1) from the cell's first tap on, one flat
    gather per tap position over all cells, from the reference edge-padded by ``cell + 1`` pixels (what
    clamping reads). The taps of row i + 1 are both the lower taps of pixel row i and the upper ones of row
    i + 1, and likewise for columns, so a cell reads (cell + 1)^2 taps, or cell^2 without fractions.
    """
    height, width = reference.shape
    cell = field.cell
    margin = cell + 1
    padded = np.pad(reference, margin, mode="edge").astype(np.float32)  # (H + 2m, W + 2m)
    stride = padded.shape[1]
    first_tap, frac_x, frac_y = _cell_taps(field, height, width, margin, stride)  # (rows, cols) each
    flat = padded.reshape(-1)
    tap_rows = cell + 1 if frac_y.any() else cell
    lines = [_tap_row(flat[row * stride:], first_tap, frac_x, cell) for row in range(tap_rows)]
    rows, cols = first_tap.shape
    prediction = np.empty((rows, cell, cols, cell), np.float32)
    for row in range(cell):
        if tap_rows > cell:
            _lerp_in_place(lines[row], lines[row + 1], frac_y)
        np.stack(lines[row], axis=-1, out=prediction[:, row])
    return prediction


def _cell_taps(field: MotionField, height: int, width: int, margin: int, stride: int):
    """Per cell: the flat index of its first (upper-left) tap in the ``margin``-padded reference, and the
    bilinear weights of the taps right of and below it; (rows, cols) each.

    A shift reaching beyond the padding is clamped to where every tap of the cell still reads the same edge.
    """
    cell = field.cell
    rows, cols = field.dx.shape
    shift_x, shift_y = np.floor(field.dx), np.floor(field.dy)  # whole-pixel part
    left = np.arange(cols) * cell + shift_x.astype(np.intp)  # first tap column, unpadded
    top = np.arange(rows)[:, None] * cell + shift_y.astype(np.intp)
    left = np.clip(left, -margin, width - 1 + margin - cell) + margin
    top = np.clip(top, -margin, height - 1 + margin - cell) + margin
    return top * stride + left, field.dx - shift_x, field.dy - shift_y


def _tap_row(flat: np.ndarray, first_tap: np.ndarray, frac_x: np.ndarray, cell: int) -> list[np.ndarray]:
    """The ``cell`` pixel columns of every cell sampled along one tap row: ``cell`` (rows, cols) planes."""
    columns = cell + 1 if frac_x.any() else cell
    # indices are in range by construction: mode "clip" only skips numpy's bounds check
    taps = [np.take(flat[column:], first_tap, mode="clip") for column in range(columns)]
    if columns > cell:
        _lerp_in_place(taps[:cell], taps[1:], frac_x)
    return taps[:cell]


def _lerp_in_place(near: list[np.ndarray], far: list[np.ndarray], frac: np.ndarray) -> None:
    """``near[k] = near[k] * (1 - frac) + far[k] * frac`` for each k, in order (``far`` may be ``near[1:]``)."""
    keep = 1 - frac
    for near_taps, far_taps in zip(near, far):
        near_taps *= keep
        near_taps += far_taps * frac


def residual_magnitude(luma: np.ndarray, reference: np.ndarray | None, field: MotionField) -> np.ndarray:
    """(H, W) float32 |Y - motion-compensated prediction|; intra cells (or no reference) get high-pass energy."""
    if reference is None or not field.covered.any():
        return highpass_energy(luma)
    height, width = luma.shape
    residual = _cell_prediction(reference, field)  # (rows, cell, cols, cell)
    pixels = _frame_view(residual, height, width)
    np.subtract(luma, pixels, out=pixels)
    np.abs(pixels, out=pixels)
    intra_y, intra_x = np.nonzero(~field.covered)
    if len(intra_y):
        cell = field.cell
        index = _cell_windows(intra_y, intra_x, cell, cell, residual.shape[2] * cell)
        residual.reshape(-1)[index] = _cell_highpass(luma, intra_y, intra_x, cell)
    return pixels


def normalize_energy(energy: np.ndarray, percentile: float, floor: float) -> np.ndarray:
    """(float32) divide by the frame's ``percentile`` (at least ``floor``) and clip to [0, 1]."""
    scale = max(exact_percentile(energy, percentile), floor) if energy.size else floor
    normalized = energy / np.float32(scale)
    return np.clip(normalized, 0.0, 1.0, out=normalized)


def exact_percentile(values: np.ndarray, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (linear method, no NaNs), bit for bit, at a fraction of its cost.

    The two order statistics around numpy's virtual index come from `_neighbouring_order_statistics`; numpy's
    own interpolation then runs on them, with the same weight.
    """
    flat = values.reshape(-1)
    position = (flat.size - 1) * (percentile / 100)  # numpy's virtual index
    lower = min(int(position), flat.size - 1)
    neighbours = np.array(_neighbouring_order_statistics(flat, lower), dtype=flat.dtype)
    return float(np.quantile(neighbours, position - lower))


def _neighbouring_order_statistics(flat: np.ndarray, rank: int) -> tuple:
    """The ``rank``-th and ``rank + 1``-th smallest values of a 1-D array (the last one twice at the end).

    One partition around ``rank``, the next value being the minimum above it. Ties at the minimum (pixels
    predicted exactly, often most of a frame) are counted and set aside first: a partition inside a long run
    of equal values is tens of times slower.
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
