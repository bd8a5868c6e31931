"""Pixel-domain motion estimate for inputs without codec vectors (HEVC, VP9, AV1, MJPEG, decoded frames).

Two-level block matching between a frame's luma and the previous frame's: an exhaustive search at a quarter
of the working resolution, then a +-1 refinement at the working resolution (longer side about
``working_size`` pixels). It returns the same `MotionField` the codec path builds from exported vectors, so
camera compensation, the residual proxy and normalisation are shared (`codec_energy`).
"""

import math

import numpy as np

from .codec_energy import MotionField

WORKING_SIZE = 320  # longer side of the luma the search runs on
BLOCK = 8  # block side at the working resolution
COARSE_SEARCH = 8  # +- displacement searched at half the working resolution (+-16 working pixels)


def _downsample(luma: np.ndarray, factor: int, rows: int, cols: int) -> np.ndarray:
    """Area-average by an integer factor, then edge-pad to (rows, cols)."""
    height, width = (luma.shape[0] // factor) * factor, (luma.shape[1] // factor) * factor
    small = luma[:height, :width].astype(np.float32)
    small = small.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))
    return np.pad(small, ((0, rows - small.shape[0]), (0, cols - small.shape[1])), mode="edge")


def _block_sums(values: np.ndarray, block: int) -> np.ndarray:
    """(..., R*block, C*block) -> (..., R, C) sums over block x block tiles."""
    *lead, height, width = values.shape
    tiles = values.reshape(*lead, height // block, block, width // block, block)
    return tiles.sum(axis=(-3, -1))


def _coarse_search(current: np.ndarray, previous: np.ndarray, block: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive integer search: per block the (dy, dx) minimising SAD, preferring small displacements on ties."""
    padded = np.pad(previous, radius, mode="edge")
    height, width = current.shape
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    costs = np.stack([
        _block_sums(np.abs(current - padded[radius + dy:radius + dy + height, radius + dx:radius + dx + width]), block)
        for dy, dx in shifts
    ])  # (S, R, C)
    penalty = np.array([abs(dy) + abs(dx) for dy, dx in shifts], np.float32) * 1e-3 * block * block
    best = np.argmin(costs + penalty[:, None, None], axis=0)
    shifts = np.array(shifts)
    return shifts[best, 0].astype(np.float32), shifts[best, 1].astype(np.float32)


def _refine(current: np.ndarray, previous: np.ndarray, block: int, dy: np.ndarray, dx: np.ndarray):
    """+-1 pixel refinement of per-block integer displacements by SAD."""
    height, width = current.shape
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    block_dy = np.repeat(np.repeat(dy, block, 0), block, 1).astype(np.int64)
    block_dx = np.repeat(np.repeat(dx, block, 0), block, 1).astype(np.int64)
    offsets = [(oy, ox) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]
    costs = []
    for oy, ox in offsets:
        y = np.clip(ys + block_dy + oy, 0, height - 1)
        x = np.clip(xs + block_dx + ox, 0, width - 1)
        costs.append(_block_sums(np.abs(current - previous[y, x]), block) + (abs(oy) + abs(ox)) * 1e-3 * block * block)
    best = np.argmin(np.stack(costs), axis=0)  # (R, C)
    offsets = np.array(offsets, np.float32)
    return dy + offsets[best, 0], dx + offsets[best, 1]


def block_matching_field(luma: np.ndarray, previous: np.ndarray) -> MotionField:
    """Motion field of ``luma`` against ``previous`` (both (H, W)), in full-resolution pixels."""
    height, width = luma.shape
    factor = max(1, round(max(height, width) / WORKING_SIZE))
    cell = BLOCK * factor
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    if rows % 2:  # the coarse level halves the grid
        rows += 1
    if cols % 2:
        cols += 1
    current_work = _downsample(luma, factor, rows * BLOCK, cols * BLOCK)  # (rows*B, cols*B)
    previous_work = _downsample(previous, factor, rows * BLOCK, cols * BLOCK)
    coarse_dy, coarse_dx = _coarse_search(_downsample(current_work, 2, rows * BLOCK // 2, cols * BLOCK // 2),
                                          _downsample(previous_work, 2, rows * BLOCK // 2, cols * BLOCK // 2),
                                          BLOCK, COARSE_SEARCH)  # (rows/2, cols/2) in half-working pixels
    dy = np.repeat(np.repeat(coarse_dy * 2, 2, 0), 2, 1)  # (rows, cols) in working pixels
    dx = np.repeat(np.repeat(coarse_dx * 2, 2, 0), 2, 1)
    dy, dx = _refine(current_work, previous_work, BLOCK, dy, dx)
    covered = np.ones((rows, cols), dtype=bool)
    return MotionField(dx * factor, dy * factor, covered, cell)
