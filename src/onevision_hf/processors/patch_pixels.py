"""Pixels of the chosen patches only, bit-identical to cutting them from the fully placed frame.

`geometry.apply_geometry` places a whole frame with Pillow's bicubic resize: two separable fixed-point passes
(22-bit coefficients, a uint8 intermediate, the order of the passes Pillow's choice) onto a zero canvas. Once
the global top-K is known only ~12.5 % of the patches are needed, so `place_patches` evaluates the same two
passes for just those pixels, in numpy:

* `bicubic_coefficients` recomputes Pillow's coefficients (`pillow_weights`, then ``normalize_coeffs_8bpc``
  of Pillow's ``Resample.c``: the same double-precision operations in the same order, the same rounding);
* the first pass runs on the source rows (or columns) each patch's filter windows read, for the patch's own
  columns (rows) only; the second pass on the patch's own pixels; both round and clip as Pillow does.

Exactness is checked, not assumed: `exact_pass_order` verifies once per placement that this reproduces
``apply_geometry`` on a random probe frame with one of the two pass orders; when neither does (another Pillow),
frames are placed whole. ``tests/test_fast_patch_pixels.py`` pins the equality on many geometries.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from .geometry import FrameGeometry, apply_geometry
from .pillow_weights import FILTERS, resampling_weights

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit resampling
BICUBIC_SUPPORT = FILTERS["bicubic"][1]
# A frame is placed whole (Pillow's C passes) when its patches' source windows hold at least this fraction of
# its source pixels. Per window pixel the numpy passes now cost little more than what Pillow spends per source
# pixel, though they hold the GIL for part of it while the cut runs on two threads: `benchmarks/patch_cut.py`
# (the phone clip and the 30 s 720p clip, both presets, three runs) measured the cut at 0.75 against 1/3 (the
# fraction before stop 28) 6-31 % faster in 7 of 10 comparisons and 7-16 % slower in 3, all on the phone clip;
# medians by case: 20 % faster (phone, default), 7 % slower (phone, `reference`), 7 and 16 % faster (720p).
WHOLE_FRAME_FRACTION = 0.75
CHUNK_BYTES = 32 * 2**20  # bound on the float64 temporaries of one batch of patches (large downscales)


@dataclass(frozen=True)
class Coefficients:
    """One axis of Pillow's bicubic resize ``in_size -> out_size``.

    Attributes:
        first: (out_size,) int64 first source index each output reads.
        weights: (out_size, taps) int32 fixed-point weights (zero past each output's window).
    """

    first: np.ndarray
    weights: np.ndarray


@functools.lru_cache(maxsize=64)
def bicubic_coefficients(in_size: int, out_size: int) -> Coefficients:
    """Pillow's fixed-point coefficients (``normalize_coeffs_8bpc``) for resizing an axis of ``in_size`` pixels
    to ``out_size`` (box = the whole axis)."""
    normalised = resampling_weights(in_size, out_size, "bicubic")
    scaled = normalised.weights * (1 << PRECISION_BITS)
    fixed = np.trunc(np.where(normalised.weights < 0, -0.5 + scaled, 0.5 + scaled)).astype(np.int32)
    return Coefficients(normalised.first, fixed)


@dataclass(frozen=True)
class PixelIndex:
    """Windows of whole pixels of an (H, W, 3) uint8 array, read without copying the array.

    Pixel (r, c) starts at byte ``origin + r * row_step + c * col_step`` of ``pixels``, an (N,) uint8 read-only
    view of the same memory (so any view with channel stride 1 works: PyAV's padded rows, the rotated views of
    `upright`). `transposed` swaps the roles of rows and columns.
    """

    pixels: np.ndarray
    origin: int
    row_step: int
    col_step: int
    shape: tuple[int, int]

    @classmethod
    def of(cls, rgb: np.ndarray) -> "PixelIndex":
        if rgb.strides[2] != 1:
            rgb = np.ascontiguousarray(rgb)
        (height, width), (row_step, col_step) = rgb.shape[:2], rgb.strides[:2]
        first_row = height - 1 if row_step < 0 else 0  # the pixel at the lowest address
        first_col = width - 1 if col_step < 0 else 0
        lowest = rgb[first_row:, first_col:]
        span = (height - 1) * abs(row_step) + (width - 1) * abs(col_step) + 3
        pixels = np.lib.stride_tricks.as_strided(lowest, shape=(span,), strides=(1,), writeable=False)
        origin = -first_row * row_step - first_col * col_step
        return cls(pixels, origin, row_step, col_step, (height, width))

    def transposed(self) -> "PixelIndex":
        return PixelIndex(self.pixels, self.origin, self.col_step, self.row_step, self.shape[::-1])

    def windows(self, top: np.ndarray, left: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(n, size[0], size[1], 3) uint8 copies of the (rows, columns) ``size`` windows whose first pixels are
        (n,) ``top`` x ``left``; a window reaching past the far edges repeats the edge pixels there."""
        height, width = self.shape
        image = np.lib.stride_tricks.as_strided(self.pixels[self.origin:], shape=(height, width, 3),
                                                strides=(self.row_step, self.col_step, 1), writeable=False)
        past_bottom, past_right = int(top.max()) + size[0] - height, int(left.max()) + size[1] - width
        if past_bottom > 0 or past_right > 0:
            image = np.pad(image, ((0, max(past_bottom, 0)), (0, max(past_right, 0)), (0, 0)), mode="edge")
        # each window row is one run of whole pixels: gathered as (n, rows, columns, 3) it copies runs of bytes
        return np.lib.stride_tricks.sliding_window_view(image, (*size, 3))[top, left, 0]


def _window_matrices(coefficients: Coefficients, outputs: np.ndarray,
                     in_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's resampling along one axis as a small dense matrix.

    Args:
        outputs: (n, q) output indices of each patch along the axis (consecutive).

    Returns:
        (n,) int64 first source index of each patch's window of s samples (moved back to end at the axis's end
        where it can: Pillow's taps past the end carry zero weight) and (n, q, s) float64 fixed-point weights:
        output j of patch i = sum_k weights[i, j, k] * source[start[i] + k].
    """
    first = coefficients.first[outputs]  # (n, q)
    taps = coefficients.weights.shape[1]
    span = int((first[:, -1] - first[:, 0]).max()) + taps
    start = np.minimum(first[:, 0], max(in_size - span, 0))
    count, width = outputs.shape
    slots = (first - start[:, None])[:, :, None] + np.arange(taps)  # (n, q, taps)
    matrices = np.zeros((count, width, int(slots.max()) + 1))
    matrices[np.arange(count)[:, None, None], np.arange(width)[None, :, None], slots] = coefficients.weights[outputs]
    return start, matrices[:, :, :span]  # past span: only taps beyond the axis's end, all zero weights


def _round_clip(accumulated: np.ndarray) -> np.ndarray:
    """Pillow's ``clip8((1 << 21 + sum) >> 22)`` on float64 sums of integers (exact: all below 2 ** 53)."""
    return np.clip(np.floor((accumulated + (1 << (PRECISION_BITS - 1))) / (1 << PRECISION_BITS)), 0, 255)


def _two_passes(source: PixelIndex, out_size: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, p, p, 3) uint8 output pixels (n, p) ``rows`` x (n, p) ``cols`` of ``source`` resized to ``out_size``
    by a pass along the columns (axis 1) first, then one along the rows, as Pillow's fixed-point passes.

    Per patch: its source window (s_r, s_c) is gathered once, the first pass is a (s_c, p) matrix product, its
    rounding and clipping Pillow's; then the second a (p, s_r) product. The sums are exact integers in float64
    whatever the order of summation, so they equal Pillow's int32 sums. Equal sizes give identity weights.
    """
    (in_rows, in_cols), (out_rows, out_cols) = source.shape, out_size
    top, vertical = _window_matrices(bicubic_coefficients(in_rows, out_rows), rows, in_rows)
    left, horizontal = _window_matrices(bicubic_coefficients(in_cols, out_cols), cols, in_cols)
    size = (vertical.shape[2], horizontal.shape[2])
    pixels = source.windows(top, left, size).transpose(0, 3, 1, 2).astype(np.float64)  # (n, 3, s_r, s_c)
    intermediate = _round_clip(pixels @ horizontal.transpose(0, 2, 1)[:, None])  # (n, 3, s_r, p)
    placed = _round_clip(vertical[:, None] @ intermediate)  # (n, 3, p, p)
    return placed.astype(np.uint8).transpose(0, 2, 3, 1)


def _window_size(source_size: tuple[int, int], out_size: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """An upper bound on the (rows, columns) of source pixels one patch's two passes read."""
    return tuple(math.ceil(patch_size * max(a / b, 1.0)) + 2 * math.ceil(BICUBIC_SUPPORT * max(a / b, 1.0)) + 2
                 for a, b in zip(source_size, out_size))


def _scaled_patches(rgb: np.ndarray, geometry: FrameGeometry, cells: np.ndarray, order: str) -> np.ndarray:
    """(n, p, p, 3) uint8 pixels of content patches ``cells`` (wholly on the scaled frame) by ``order``."""
    p = geometry.patch_size
    top, left = geometry.offset
    offsets = np.arange(p)
    rows = cells[:, :1] * p - top + offsets  # (n, p) rows of the scaled frame
    cols = cells[:, 1:] * p - left + offsets
    source = PixelIndex.of(rgb)
    if order == "vertical":  # the horizontal-first recipe on the transposed frame, transposed back
        source, out_size, rows, cols = source.transposed(), geometry.scaled_size[::-1], cols, rows
    else:  # Pillow's horizontal pass (along W) first
        out_size = geometry.scaled_size
    window_h, window_w = _window_size(source.shape, out_size, p)
    chunk = max(1, CHUNK_BYTES // (window_h * window_w * 3 * 8 * 3))  # float64 window, product, rounding
    placed = np.concatenate([_two_passes(source, out_size, rows[start:start + chunk], cols[start:start + chunk])
                             for start in range(0, len(rows), chunk)])
    return placed.transpose(0, 2, 1, 3) if order == "vertical" else placed


def _whole_frame_patches(rgb: np.ndarray, geometry: FrameGeometry, cells: np.ndarray) -> np.ndarray:
    p = geometry.patch_size
    grid_h, grid_w = geometry.grid_size
    grid = apply_geometry(np.ascontiguousarray(rgb), geometry).reshape(grid_h, p, grid_w, p, 3)
    return grid[cells[:, 0], :, cells[:, 1]]  # advanced indices lead


@functools.lru_cache(maxsize=64)
def exact_pass_order(geometry: FrameGeometry) -> str | None:
    """``"horizontal"`` or ``"vertical"``: the pass order whose numpy evaluation equals ``apply_geometry`` for
    this placement on a fixed random probe frame; None when neither does. The probe's patches are a full row
    and a full column of content patches: together they compute every output row and column the fast path can
    be asked for (each coefficient row of both passes, on random pixels)."""
    mask = geometry.content_patch_mask()
    if not mask.any():
        return None
    middle_row, middle_col = np.argwhere(mask)[mask.sum() // 2]
    strips = np.zeros_like(mask)
    strips[middle_row], strips[:, middle_col] = mask[middle_row], mask[:, middle_col]
    content = np.argwhere(strips)
    probe = np.random.default_rng(0).integers(0, 256, (*geometry.source_size, 3), dtype=np.uint8)
    want = _whole_frame_patches(probe, geometry, content)
    for order in ("horizontal", "vertical"):  # Pillow picks the cheaper order from the sizes
        if np.array_equal(_scaled_patches(probe, geometry, content, order), want):
            return order
    return None


def place_patches(rgb: np.ndarray, geometry: FrameGeometry, cells: np.ndarray) -> np.ndarray:
    """(n, p, p, 3) uint8 pixels of patches ``cells`` ((n, 2) int64 grid rows (h, w)) of the placed frame.

    Equal to cutting ``apply_geometry(rgb, geometry)`` at ``cells``; ``rgb`` is the (H0, W0, 3) uint8 upright
    source frame (a strided view is fine). Frames whose patches' windows cover much of the frame
    (`WHOLE_FRAME_FRACTION`), with a chosen patch on padding, or whose placement `exact_pass_order` could not
    verify are placed whole.
    """
    window_h, window_w = _window_size(geometry.source_size, geometry.scaled_size, geometry.patch_size)
    source_h, source_w = geometry.source_size
    on_content = geometry.content_patch_mask()[cells[:, 0], cells[:, 1]].all()
    if len(cells) * window_h * window_w >= WHOLE_FRAME_FRACTION * source_h * source_w or not on_content:
        return _whole_frame_patches(rgb, geometry, cells)
    order = exact_pass_order(geometry)
    if order is None:
        return _whole_frame_patches(rgb, geometry, cells)
    return _scaled_patches(rgb, geometry, cells, order)
