"""Pixels of the chosen patches only, bit-identical to cutting them from the fully placed frame.

`geometry.apply_geometry` places a whole frame: Pillow's bicubic resize (a horizontal pass into a uint8
intermediate, then a vertical pass) and the zero canvas. Once the global top-K is known, only ~12.5 % of the
patches are needed; `place_patches` runs the same two Pillow passes on just what those patches depend on:

* the horizontal pass on the source rows the needed output rows read (rows are independent in that pass, so
  a stack of gathered rows resized to the scaled width gives the very rows the full pass would);
* the vertical pass on the needed intermediate columns only, from a full-height buffer that holds the rows
  gathered above (the rows it leaves at zero are outside every needed row's filter window).

Each pass is Pillow's own resize with the same input and output sizes as the full one, so it computes the same
fixed-point coefficients: the result equals the full placement exactly (``tests/test_fast_patch_pixels.py``).
"""

import functools
import math

import numpy as np
from PIL import Image

from .geometry import FrameGeometry, apply_geometry

BICUBIC_SUPPORT = 2.0  # Pillow's bicubic filter reaches 2 source pixels (times the downscale factor)
# `place_region` runs when its two passes cost less than this fraction of the full placement's: each of its
# Pillow calls also pays the array conversions and the gathers of rows and columns (measured on 360 x 640 frames)
RESTRICTED_WORK_LIMIT = 0.35


def source_window_rows(out_rows: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """Sorted unique source indices that Pillow's bicubic resize ``in_size -> out_size`` reads for ``out_rows``.

    Pillow's bounds are ``int(center -/+ support + 0.5)`` with ``center = (y + 0.5) * scale``; one extra index on
    each side keeps the set a superset whatever the last bit of the float arithmetic does (extra rows cost a
    little work, never a pixel).
    """
    scale = in_size / out_size
    support = BICUBIC_SUPPORT * max(scale, 1.0)
    centers = (out_rows.astype(np.float64) + 0.5) * scale
    first = np.clip(np.floor(centers - support + 0.5).astype(np.int64) - 1, 0, in_size)
    last = np.clip(np.floor(centers + support + 0.5).astype(np.int64) + 1, 0, in_size)  # exclusive
    span = int(math.ceil(support)) * 2 + 3
    candidates = first[:, None] + np.arange(span)[None, :]
    candidates = candidates[candidates < last[:, None]]
    return np.unique(candidates)


def _resized(array: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(array)).resize((width, height), Image.Resampling.BICUBIC))


@functools.lru_cache(maxsize=64)
def pass_order(source_size: tuple[int, int], scaled_size: tuple[int, int]) -> str | None:
    """Which pass Pillow's bicubic resize ``source_size -> scaled_size`` runs first: ``"horizontal"``,
    ``"vertical"``, or None when neither single-pass composition reproduces it (then frames are placed whole).

    Pillow picks the order from the sizes (the cheaper one; it differs between versions), so it is observed,
    once per size pair, on a fixed random probe image rather than assumed.
    """
    (source_h, source_w), (scaled_h, scaled_w) = source_size, scaled_size
    probe = np.random.default_rng(0).integers(0, 256, (source_h, source_w, 3), dtype=np.uint8)
    full = _resized(probe, scaled_w, scaled_h)
    if np.array_equal(full, _resized(_resized(probe, scaled_w, source_h), scaled_w, scaled_h)):
        return "horizontal"
    if np.array_equal(full, _resized(_resized(probe, source_w, scaled_h), scaled_w, scaled_h)):
        return "vertical"
    return None


def _horizontal_first(source: np.ndarray, out_size: tuple[int, int], rows: np.ndarray,
                      cols: np.ndarray) -> np.ndarray:
    """Pixels ``[rows][:, cols]`` of ``source`` resized to ``out_size`` by a horizontal pass, then a vertical one.

    The horizontal pass runs on the source rows the needed output rows read (rows are independent in it); the
    vertical pass on the needed columns only, from a full-height buffer holding those rows (the rows it leaves
    at zero are outside every needed row's filter window). (len(rows), len(cols), 3) uint8.
    """
    (source_h, source_w), (out_h, out_w) = source.shape[:2], out_size
    source_rows = rows if out_h == source_h else source_window_rows(rows, source_h, out_h)
    band = source[source_rows]  # (r, W0, 3): the only source rows any needed pixel depends on
    if out_w != source_w:
        band = _resized(band, out_w, len(source_rows))  # the full horizontal pass's coefficients
    band = band[:, cols]
    if out_h == source_h:
        return band
    intermediate = np.zeros((source_h, len(cols), 3), np.uint8)
    intermediate[source_rows] = band
    return _resized(intermediate, len(cols), out_h)[rows]  # the full vertical pass's coefficients


def _vertical_first(source: np.ndarray, out_size: tuple[int, int], rows: np.ndarray,
                    cols: np.ndarray) -> np.ndarray:
    """`_horizontal_first` with the passes (and so the roles of rows and columns) swapped."""
    (source_h, source_w), (out_h, out_w) = source.shape[:2], out_size
    source_cols = cols if out_w == source_w else source_window_rows(cols, source_w, out_w)
    band = source[:, source_cols]  # (H0, c, 3)
    if out_h != source_h:
        band = _resized(band, len(source_cols), out_h)
    band = band[rows]
    if out_w == source_w:
        return band
    intermediate = np.zeros((len(rows), source_w, 3), np.uint8)
    intermediate[:, source_cols] = band
    return _resized(intermediate, out_w, len(rows))[:, cols]


def place_region(rgb: np.ndarray, geometry: FrameGeometry, canvas_rows: np.ndarray,
                 canvas_cols: np.ndarray) -> np.ndarray:
    """``apply_geometry(rgb, geometry)[canvas_rows][:, canvas_cols]`` without placing the whole frame.

    Args:
        rgb: (H0, W0, 3) uint8 upright source frame, ``geometry.source_size``.
        geometry: the frame's placement (bicubic resize to ``scaled_size`` at ``offset`` on the zero canvas).
        canvas_rows: (R,) int64 sorted unique canvas row indices.
        canvas_cols: (C,) int64 sorted unique canvas column indices.

    Returns:
        (R, C, 3) uint8, zero on padding.
    """
    scaled_h, scaled_w = geometry.scaled_size
    top, left = geometry.offset
    rows, cols = canvas_rows - top, canvas_cols - left  # in the scaled frame, sorted
    row_span = slice(*np.searchsorted(rows, [0, scaled_h]))  # the rows (columns) on the scaled frame
    col_span = slice(*np.searchsorted(cols, [0, scaled_w]))
    region = np.zeros((len(canvas_rows), len(canvas_cols), 3), np.uint8)
    rows, cols = rows[row_span], cols[col_span]
    if len(rows) and len(cols):
        first = _horizontal_first if pass_order(geometry.source_size, geometry.scaled_size) == "horizontal" \
            else _vertical_first
        region[row_span, col_span] = first(rgb, (scaled_h, scaled_w), rows, cols)
    return region


def _restricted_work(geometry: FrameGeometry, canvas_rows: np.ndarray, canvas_cols: np.ndarray) -> float:
    """`place_region`'s resampling work as a fraction of the full placement's (about half each pass); inf when
    Pillow's pass order for these sizes is unknown (the frame is then placed whole)."""
    if geometry.scaled_size == geometry.source_size:
        return 0.0
    order = pass_order(geometry.source_size, geometry.scaled_size)
    if order is None:
        return float("inf")
    (scaled_h, scaled_w), (top, left) = geometry.scaled_size, geometry.offset
    rows = np.count_nonzero((canvas_rows >= top) & (canvas_rows < top + scaled_h)) / scaled_h
    cols = np.count_nonzero((canvas_cols >= left) & (canvas_cols < left + scaled_w)) / scaled_w
    first, second = (rows, cols) if order == "horizontal" else (cols, rows)
    return 0.5 * min(1.0, first * 1.1) + 0.5 * second  # the first pass also reads its filter's margins


def place_patches(rgb: np.ndarray, geometry: FrameGeometry, cells: np.ndarray) -> np.ndarray:
    """(n, p, p, 3) uint8 pixels of patches ``cells`` ((n, 2) int64 grid rows (h, w)) of the placed frame.

    Equal to ``apply_geometry(rgb, geometry)`` cut into patches at ``cells`` (see the module docstring)."""
    p = geometry.patch_size
    grid_rows, row_of = np.unique(cells[:, 0], return_inverse=True)
    grid_cols, col_of = np.unique(cells[:, 1], return_inverse=True)
    offsets = np.arange(p)
    canvas_rows = (grid_rows[:, None] * p + offsets).ravel()
    canvas_cols = (grid_cols[:, None] * p + offsets).ravel()
    if _restricted_work(geometry, canvas_rows, canvas_cols) < RESTRICTED_WORK_LIMIT:
        region = place_region(rgb, geometry, canvas_rows, canvas_cols)
    else:  # the patches' rows and columns span most of the frame: placing it whole is cheaper (and as exact)
        region = apply_geometry(rgb, geometry)[canvas_rows][:, canvas_cols]
    blocks = region.reshape(len(grid_rows), p, len(grid_cols), p, 3)
    return blocks[row_of, :, col_of]  # (n, p, p, 3): advanced indices lead
