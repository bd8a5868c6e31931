"""The fast per-frame energy kernels equal their straightforward definitions."""

import numpy as np
import pytest

from onevision_hf.processors.codec_energy import (
    PERCENTILE_SAMPLE_STEP,
    MotionField,
    compensated_prediction,
    compensated_residual,
    exact_percentile,
    highpass_energy,
)
from onevision_hf.processors.frame_energy import downsampled_luma


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


def _prediction_bounds(reference: np.ndarray, field: MotionField) -> tuple[np.ndarray, np.ndarray]:
    """The definition: the bilinear value widened towards the least and greatest clamped tap it weighs (a tap
    along an axis without a fraction has weight 0 and is left out) by 4 f (1 - f), f the larger of both axes'
    (float64)."""
    height, width = reference.shape
    dx = field.to_pixels(field.dx, height, width).astype(np.float64)
    dy = field.to_pixels(field.dy, height, width).astype(np.float64)
    x, y = np.arange(width)[None, :] + dx, np.arange(height)[:, None] + dy
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    ref = reference.astype(np.float64)
    taps = [ref[np.clip(y0 + i, 0, height - 1), np.clip(x0 + j, 0, width - 1)]
            for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))]
    weighted = [np.ones_like(x, bool), x > x0, y > y0, (x > x0) & (y > y0)]
    low = np.min([np.where(w, tap, np.inf) for tap, w in zip(taps, weighted)], axis=0)
    high = np.max([np.where(w, tap, -np.inf) for tap, w in zip(taps, weighted)], axis=0)
    fx, fy = x - x0, y - y0
    value = (taps[0] * (1 - fx) + taps[1] * fx) * (1 - fy) + (taps[2] * (1 - fx) + taps[3] * fx) * fy
    widening = 4 * np.maximum(fx * (1 - fx), fy * (1 - fy))
    return value + widening * (low - value), value + widening * (high - value)


@pytest.mark.parametrize("height, width, cell, steps", [(37, 53, 4, 4), (20, 30, 8, 2), (9, 11, 3, 1)])
def test_sampling_insensitive_residual_is_the_distance_to_the_prediction_bounds(height, width, cell, steps):
    rng = np.random.default_rng(height + steps)
    luma, reference = rng.integers(0, 256, (2, height, width), dtype=np.uint8)
    for _ in range(3):
        field = _random_field(rng, height, width, cell, steps)
        low, high = _prediction_bounds(reference, field)
        distance = np.maximum(np.maximum(low - luma, luma - high), 0)
        expected = np.where(field.to_pixels(field.covered, height, width), distance, highpass_energy(luma))
        residual = compensated_residual(luma, [field], {1: reference}, measure="sampling-insensitive")
        np.testing.assert_allclose(residual, expected, rtol=0, atol=1e-5 * 255)
        # the bilinear value lies within its bounds: never more than the difference
        difference = compensated_residual(luma, [field], {1: reference})
        assert (residual <= difference + 1e-3).all()


def test_sampling_insensitive_residual_ignores_a_downsampled_odd_shift_but_not_new_content():
    """An exact whole-pixel copy at an odd shift is a half-sample shift of the 2x-downsampled luma: bilinear
    interpolation blurs the texture into a residual the codec never had; the range measure leaves ~nothing of
    it, and still sees content that no shift of the reference holds."""
    rng = np.random.default_rng(5)
    scene = np.kron(rng.integers(0, 256, (40, 70)), np.ones((3, 3))).astype(np.float64)  # 3-px texture grains
    reference = scene[:, 10:202]  # the camera pans 3 video pixels: the current frame reads the reference 3 px on
    current = scene[:, 13:205].copy()
    current[40:72, 80:112] = rng.integers(0, 256, (32, 32))  # content no reference shows
    small = [downsampled_luma(np.rint(image).astype(np.uint8), 2) for image in (reference, current)]
    shape = (-(-small[1].shape[0] // 4), -(-small[1].shape[1] // 4))
    field = MotionField(np.full(shape, 1.5, np.float32), np.zeros(shape, np.float32), np.ones(shape, bool), 4)
    new = np.zeros(small[1].shape, bool)
    new[20:36, 40:56] = True
    new[:, -2:] = True  # the pan's far edge reads past the reference: clamped pixels
    by_difference = compensated_residual(small[1], [field], {1: small[0]})
    by_range = compensated_residual(small[1], [field], {1: small[0]}, measure="sampling-insensitive")
    assert by_difference[~new].mean() > 10  # the half-sample blur of a grainy texture
    assert by_range[~new].mean() < 0.2 * by_difference[~new].mean()
    assert by_range[new].mean() > 0.5 * by_difference[new].mean()


def test_sampling_insensitive_residual_is_the_difference_a_hair_off_a_sample():
    """A still camera's fitted motion is a hair off 0: its prediction's bounds hardly widen, so what moved by a
    fraction of a sample against it (a creeping object) keeps its residual."""
    rng = np.random.default_rng(6)
    luma, reference = rng.integers(0, 256, (2, 40, 64), dtype=np.uint8)
    for hair in (1e-3, -1e-3):  # -1e-3: floor -1, fraction 0.999
        field = MotionField(np.full((10, 16), hair, np.float32), np.full((10, 16), hair, np.float32),
                            np.ones((10, 16), bool), 4)
        by_range = compensated_residual(luma, [field], {1: reference}, measure="sampling-insensitive")
        by_difference = compensated_residual(luma, [field], {1: reference})
        assert by_range.mean() > 0.98 * by_difference.mean()


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


def test_percentile_of_frame_sized_maps_equals_numpy_bit_for_bit():
    """Frame-sized maps take the sampled bracket of `_neighbouring_order_statistics`: the order statistic at the
    bracket's low end (a run of zeros), inside it, at its top, and a stride-aliased pattern whose sample misses
    (the counts detect it; the whole array is partitioned)."""
    rng = np.random.default_rng(3)
    aliased = np.full(64 * 360, 200.0, np.float32)
    aliased[::PERCENTILE_SAMPLE_STEP] = rng.random(len(aliased[::PERCENTILE_SAMPLE_STEP]), dtype=np.float32)
    arrays = [rng.random(640 * 360, dtype=np.float32),  # continuous: inside the bracket
              np.where(rng.random(640 * 360) < 0.97, 0, rng.random(640 * 360)).astype(np.float32),  # a run at lo
              rng.integers(0, 256, (640, 360)).astype(np.float32),  # integer residuals: runs of every value
              np.full(5000, 7.25, np.float32), rng.normal(size=(300, 400)), aliased]
    for values in arrays:
        for percentile in (0.0, 3.0, 50.0, 95.0, 99.99, 100.0):
            assert exact_percentile(values, percentile) == float(np.percentile(values, percentile))
    sample_says = float(np.percentile(aliased[::PERCENTILE_SAMPLE_STEP], 50.0))
    assert sample_says < 1.0 and exact_percentile(aliased, 50.0) == 200.0  # the sample alone would be wrong


@pytest.mark.parametrize("factor", [2, 4])
def test_downsampled_luma_is_the_rounded_mean_of_edge_replicated_tiles(factor):
    rng = np.random.default_rng(factor)
    for height, width in [(8, 8), (37, 53), (1, 3), (360, 640), (13, 4)]:
        frame = rng.integers(0, 256, (height, width + 24), dtype=np.uint8)
        luma = frame[:, 5:5 + width]  # a strided view, as the decoder's padded rows are
        if height >= factor and width >= factor:  # a tile whose mean is an exact half rounds up
            luma[:factor, :factor] = np.arange(factor * factor).reshape(factor, factor) % 2
        rows, cols = -(-height // factor), -(-width // factor)
        padded = np.pad(luma, ((0, rows * factor - height), (0, cols * factor - width)), mode="edge")
        sums = padded.reshape(rows, factor, cols, factor).sum(axis=(1, 3), dtype=np.int64)
        np.testing.assert_array_equal(downsampled_luma(luma, factor), (sums + factor**2 // 2) // factor**2)


def test_downsampled_luma_refuses_a_factor_it_cannot_compute_exactly():
    with pytest.raises(ValueError, match="one of"):
        downsampled_luma(np.zeros((9, 9), np.uint8), 3)
