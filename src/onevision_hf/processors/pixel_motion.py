"""Pixel-domain motion estimate for inputs without codec vectors (HEVC, VP9, AV1, MJPEG, decoded frames).

Block matching between a frame's luma and the previous frame's, coarse to fine: an exhaustive search at half
the working resolution (longer side about `WORKING_SIZE` pixels), then a +-1 refinement at the working
resolution and at each finer level down to full resolution, where the V-shaped SAD around the best offset
gives a sub-pixel step (a whole-pixel field at a coarse level cannot follow a 1 px/frame pan on fine
texture). It returns the same `MotionField` the codec path builds from exported vectors, so the camera model,
the residual proxy and normalisation are shared (`codec_energy`, `motion_energy`).

Every level holds integer sums of luma pixels (its area averages times their area: exact), int16 while they
fit, so the sums of absolute differences are exact integers, divided by the area once per block (the same
costs as summing float area averages wherever the area is a power of two). The refinement reads each block's
3 x 3 candidate windows from a sliding-window view of the edge-padded reference, one gather per offset.
"""

import math

import numpy as np

from .codec_energy import MotionField
from .tile_sums import tile_sums

WORKING_SIZE = 320  # longer side of the luma the search runs on
BLOCK = 8  # block side at the working resolution
COARSE_SEARCH = 8  # +- displacement searched at half the working resolution (+-16 working pixels)


def _area_sums(image: np.ndarray, factor: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) int32 sums over the whole ``factor x factor`` tiles of an integer image (the area average
    times the tile's area, exactly), edge-padded."""
    height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    sums = tile_sums(image[:height, :width], factor, np.int32)
    return np.pad(sums, ((0, rows - sums.shape[0]), (0, cols - sums.shape[1])), mode="edge")


def _level_image(luma: np.ndarray, area: int, factor: int, rows: int, cols: int) -> np.ndarray:
    """``luma`` at a level whose pixels sum ``area`` luma pixels (`_area_sums` by ``factor``), in the narrowest
    integer type that holds them and the differences of two of them."""
    return _area_sums(luma, factor, rows, cols).astype(_sum_dtype(area))


def _sum_dtype(area: int) -> type:
    return np.int16 if 255 * area <= np.iinfo(np.int16).max else np.int32


def _mean_costs(sums: np.ndarray, area: int) -> np.ndarray:
    """float32 sums of absolute differences of level pixels (integer sums over ``area`` luma pixels) in luma
    levels: one rounding of the exact quotient (equal to summing the area averages wherever ``area`` is a power
    of two)."""
    return (sums / area).astype(np.float32)


def _coarse_search(current: np.ndarray, previous: np.ndarray, area: int, block: int,
                   radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive integer search: per block the (dy, dx) minimising SAD, preferring small displacements on ties."""
    padded = np.pad(previous, radius, mode="edge")
    height, width = current.shape
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    costs = np.concatenate([  # per dy, every dx at once: (2 radius + 1, height, width) windows of the padded rows
        tile_sums(np.abs(current - np.lib.stride_tricks.sliding_window_view(
            padded[radius + dy:radius + dy + height], width, axis=1).transpose(1, 0, 2)), block, np.int32)
        for dy in range(-radius, radius + 1)
    ])  # (S, R, C), dy-major as ``shifts``
    penalty = np.array([abs(dy) + abs(dx) for dy, dx in shifts], np.float32) * 1e-3 * block * block
    best = np.argmin(_mean_costs(costs, area) + penalty[:, None, None], axis=0)
    shifts = np.array(shifts)
    return shifts[best, 0].astype(np.float32), shifts[best, 1].astype(np.float32)


def _refine(current: np.ndarray, previous: np.ndarray, area: int, block: int, dy: np.ndarray, dx: np.ndarray,
            subpixel: bool):
    """+-1 pixel refinement of per-block integer displacements by SAD; with ``subpixel``, then an offset per
    axis from the V (equiangular lines) through the best cost and its two neighbours (blocks whose best lies
    inside the 3 x 3 window; the offset is clipped to +-0.5)."""
    rows, cols = dy.shape
    # reads past the frame's edge are its edge pixels: an edge-padded copy clamps them
    pad = int(max(np.abs(dy).max(), np.abs(dx).max())) + 1
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(previous, pad, mode="edge"), (block, block))
    top = (np.arange(rows)[:, None] * block + dy.astype(np.intp) + pad)  # (R, C) each block's window at (0, 0)
    left = (np.arange(cols)[None, :] * block + dx.astype(np.intp) + pad)
    blocks = current.reshape(rows, block, cols, block).transpose(0, 2, 1, 3)  # (R, C, block, block)
    costs = np.empty((3, 3, rows, cols), np.float32)  # (oy + 1, ox + 1, R, C)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            penalty = (abs(oy) + abs(ox)) * 1e-3 * block * block
            difference = np.abs(blocks - windows[top + oy, left + ox])  # (R, C, block, block)
            costs[oy + 1, ox + 1] = _mean_costs(difference.sum(axis=(2, 3), dtype=np.int32), area) + penalty
    best = np.argmin(costs.reshape(9, *dy.shape), axis=0)  # (R, C)
    best_y, best_x = np.divmod(best, 3)
    if not subpixel:
        return dy + best_y - 1, dx + best_x - 1
    rows, cols = np.indices(dy.shape)
    sub_y = _subpixel_offset(costs, best_y, best_x, rows, cols, axis=0)
    sub_x = _subpixel_offset(costs, best_y, best_x, rows, cols, axis=1)
    return dy + best_y - 1 + sub_y, dx + best_x - 1 + sub_x


def _subpixel_offset(costs: np.ndarray, best_y, best_x, rows, cols, axis: int) -> np.ndarray:
    """(R, C) float32 sub-pixel offset of the cost minimum along one axis of the (3, 3, R, C) cost window."""
    centre = best_y if axis == 0 else best_x
    inside = (centre == 1)
    lower_y, lower_x = (best_y - 1, best_x) if axis == 0 else (best_y, best_x - 1)
    upper_y, upper_x = (best_y + 1, best_x) if axis == 0 else (best_y, best_x + 1)
    clamp = np.clip
    lower = costs[clamp(lower_y, 0, 2), clamp(lower_x, 0, 2), rows, cols]
    middle = costs[best_y, best_x, rows, cols]
    upper = costs[clamp(upper_y, 0, 2), clamp(upper_x, 0, 2), rows, cols]
    rise = np.maximum(lower, upper) - middle  # SAD is V-shaped around its minimum: the equiangular line fit
    offset = np.divide(lower - upper, 2 * rise, out=np.zeros_like(middle), where=inside & (rise > 0))
    return np.clip(offset, -0.5, 0.5).astype(np.float32)


def block_matching_field(luma: np.ndarray, previous: np.ndarray) -> MotionField:
    """Motion field of ``luma`` against ``previous`` (both (H, W)), in full-resolution pixels, sub-pixel."""
    height, width = luma.shape
    # at most the shorter side: a sliver of a frame (2 x 900) still has one whole tile per working pixel
    factor = max(1, min(round(max(height, width) / WORKING_SIZE), height, width))
    cell = BLOCK * factor
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    if rows % 2:  # the coarse level halves the grid
        rows += 1
    if cols % 2:
        cols += 1
    # every level holds integer sums of luma pixels (area averages times their area, exact): the searches
    # compare sums of absolute differences, int16 while the sums fit
    coarse_area = 4 * factor * factor
    current_work, previous_work = (_area_sums(image, factor, rows * BLOCK, cols * BLOCK)  # (rows*B, cols*B)
                                   for image in (luma, previous))
    coarse_dy, coarse_dx = _coarse_search(
        *(_level_image(image, coarse_area, 2, rows * BLOCK // 2, cols * BLOCK // 2)
          for image in (current_work, previous_work)),
        coarse_area, BLOCK, COARSE_SEARCH)  # (rows/2, cols/2) in half-working pixels
    dy = np.repeat(np.repeat(coarse_dy * 2, 2, 0), 2, 1) * factor  # (rows, cols) in full-resolution pixels
    dx = np.repeat(np.repeat(coarse_dx * 2, 2, 0), 2, 1) * factor
    for level in _refinement_levels(factor):  # +-1 at the working resolution, then finer, sub-pixel at the end
        area = level * level
        current, reference = ((image.astype(_sum_dtype(area)) for image in (current_work, previous_work))
                              if level == factor else
                              (_level_image(image, area, level, rows * cell // level, cols * cell // level)
                               for image in (luma, previous)))
        level_dy, level_dx = _refine(current, reference, area, cell // level, np.rint(dy / level),
                                     np.rint(dx / level), subpixel=level == 1)
        dy, dx = level_dy * level, level_dx * level
    covered = np.ones((rows, cols), dtype=bool)
    return MotionField(dx.astype(np.float32), dy.astype(np.float32), covered, cell)


def _refinement_levels(factor: int) -> list[int]:
    """Downsampling factors of the refinement stages: ``factor``, its halvings that divide it, then 1."""
    levels, level = [factor], factor // 2
    while level > 1:
        if factor % level == 0:
            levels.append(level)
        level //= 2
    return levels + ([1] if factor > 1 else [])
