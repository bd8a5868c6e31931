"""Block matching (`processors/pixel_motion.py`), the motion of inputs without codec vectors: it finds a known
translation at every working-resolution factor, whichever integer type its levels are held in."""

import numpy as np
import pytest

from onevision_hf.processors.pixel_motion import WORKING_SIZE, block_matching_field


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """(height, width) uint8 smooth random texture: gradients everywhere, no repeats a search could lock onto."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 6 + 2, width // 6 + 2))
    rows, cols = np.linspace(0, coarse.shape[0] - 1.001, height), np.linspace(0, coarse.shape[1] - 1.001, width)
    top, left = rows.astype(int), cols.astype(int)
    fy, fx = (rows - top)[:, None], (cols - left)[None, :]
    value = ((coarse[top][:, left] * (1 - fx) + coarse[top][:, left + 1] * fx) * (1 - fy)
             + (coarse[top + 1][:, left] * (1 - fx) + coarse[top + 1][:, left + 1] * fx) * fy)
    return np.clip(value + rng.normal(0, 2, value.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("height, width", [(144, 176), (360, 640), (480, 854), (720, 1280), (1080, 1920)])
@pytest.mark.parametrize("shift", [(3, -5), (-7, 2)])
def test_block_matching_finds_a_translation_at_every_working_factor(height, width, shift):
    factor = max(1, round(max(height, width) / WORKING_SIZE))  # 1, 2, 3, 4, 6: int16 and int32 levels
    previous = _texture(height, width, seed=height)
    current = np.roll(previous, shift, axis=(0, 1))  # current (y, x) shows previous (y - sy, x - sx)
    field = block_matching_field(current, previous)
    assert field.cell == 8 * factor
    margin = 2 + (max(map(abs, shift)) * 2) // field.cell  # blocks whose window the roll wrapped around
    rows = slice(margin, (height // field.cell) - margin)
    cols = slice(margin, (width // field.cell) - margin)
    error = np.hypot(field.dy[rows, cols] + shift[0], field.dx[rows, cols] + shift[1])
    assert error.size > 50
    # whole-pixel truth: the sub-pixel step of a V-shaped cost leaves it within a tenth of a pixel, on all but a
    # few blocks (a smooth texture repeats locally: measured 0-1.5 % off by up to a pixel, before and after the
    # integer levels)
    assert np.mean(error <= 0.1) >= 0.97
    assert np.median(error) <= 0.05


@pytest.mark.parametrize("height, width", [(1, 1), (2, 900), (900, 3), (5, 2000)])
def test_block_matching_takes_slivers_of_frames(height, width):
    previous = np.random.default_rng(width).integers(0, 256, (height, width), dtype=np.uint8)
    field = block_matching_field(np.roll(previous, 1, axis=1), previous)
    assert field.dx.shape == field.dy.shape == field.covered.shape
    assert field.dx.shape[0] * field.cell >= height and field.dx.shape[1] * field.cell >= width
    assert np.isfinite(field.dx).all() and np.isfinite(field.dy).all()
