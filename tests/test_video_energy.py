"""The fast per-frame energy kernels equal their straightforward definitions."""

import numpy as np
import pytest

from onevision_hf.processors.codec_energy import (
    MotionField,
    compensated_prediction,
    compensated_residual,
    exact_percentile,
    highpass_energy,
)


def _bilinear_with_clamping(reference: np.ndarray, field: MotionField) -> np.ndarray:
    """The definition: every pixel samples the reference at x + dx, y + dy, clamped into the frame (float64)."""
    height, width = reference.shape
    dx = field.to_pixels(field.dx, height, width).astype(np.float64)
    dy = field.to_pixels(field.dy, height, width).astype(np.float64)
    x = np.clip(np.arange(width)[None, :] + dx, 0, width - 1)
    y = np.clip(np.arange(height)[:, None] + dy, 0, height - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    ref = reference.astype(np.float64)
    top = ref[y0, x0] * (1 - fx) + ref[y0, x1] * fx
    bottom = ref[y1, x0] * (1 - fx) + ref[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _random_field(rng, height: int, width: int, cell: int, steps: int) -> MotionField:
    """Displacements in 1/steps pixels, many reaching far outside the frame; some cells intra."""
    shape = (-(-height // cell), -(-width // cell))
    reach = 2 * max(height, width)
    dx = (rng.integers(-reach * steps, reach * steps, shape) / steps).astype(np.float32)
    dy = (rng.integers(-reach * steps, reach * steps, shape) / steps).astype(np.float32)
    small = rng.random(shape) < 0.5  # half the cells move a few pixels only
    dx[small] /= 16
    dy[small] /= 16
    return MotionField(dx, dy, rng.random(shape) < 0.8, cell)


@pytest.mark.parametrize("steps", [1, 2, 4, 7])
@pytest.mark.parametrize("height, width, cell", [(32, 48, 4), (37, 53, 4), (20, 30, 8), (9, 11, 3)])
def test_prediction_equals_bilinear_sampling_with_clamping(height, width, cell, steps):
    rng = np.random.default_rng(height * width + steps)
    reference = rng.integers(0, 256, (height, width), dtype=np.uint8)
    for _ in range(5):
        field = _random_field(rng, height, width, cell, steps)
        prediction = compensated_prediction(reference, field)
        assert prediction.dtype == np.float32 and prediction.shape == (height, width)
        np.testing.assert_allclose(prediction, _bilinear_with_clamping(reference, field), rtol=0, atol=1e-5 * 255)


def test_residual_is_prediction_error_on_covered_cells_and_highpass_on_intra_cells():
    rng = np.random.default_rng(0)
    luma, reference = rng.integers(0, 256, (2, 37, 53), dtype=np.uint8)
    field = _random_field(rng, 37, 53, 4, 4)
    covered = field.to_pixels(field.covered, 37, 53)
    expected = np.where(covered, np.abs(luma - _bilinear_with_clamping(reference, field)), highpass_energy(luma))
    residual = compensated_residual(luma, [field], {1: reference})  # a field without distances: the previous frame
    np.testing.assert_allclose(residual, expected, rtol=0, atol=1e-5 * 255)


def test_highpass_is_distance_to_the_edge_replicated_box_mean():
    luma = np.random.default_rng(1).integers(0, 256, (720, 1280), dtype=np.uint8)  # big: sums exceed float32's 2^24
    padded = np.pad(luma.astype(np.float64), 1, mode="edge")
    mean = sum(padded[i:i + 720, j:j + 1280] for i in range(3) for j in range(3)) / 9
    np.testing.assert_allclose(highpass_energy(luma), np.abs(luma - mean), rtol=1e-6, atol=0)


def test_percentile_equals_numpy_bit_for_bit():
    rng = np.random.default_rng(2)
    arrays = [rng.random(1001).astype(np.float32), np.zeros(17, np.float32),
              np.where(rng.random(5000) < 0.95, 0, rng.random(5000)).astype(np.float32),  # mostly still pixels
              rng.integers(0, 4, (30, 40)).astype(np.float32), rng.normal(size=333), np.array([3.5], np.float32)]
    for values in arrays:
        for percentile in (0.0, 5.0, 50.0, 90.0, 95.0, 99.9, 100.0, 37.3):
            assert exact_percentile(values, percentile) == float(np.percentile(values, percentile))
