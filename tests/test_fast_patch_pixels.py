"""The fast patch-pixel path (issue 14) gives exactly the pixels of the full placement, frame and video level."""

import av
import numpy as np
import pytest

import onevision_hf.processors.video_selection as video_selection
from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors import patch_pixels
from onevision_hf.processors.geometry import apply_geometry
from onevision_hf.processors.patch_pixels import (
    _scaled_patches,
    bicubic_coefficients,
    exact_pass_order,
    place_patches,
)
from onevision_hf.processors.patch_selection import plan_video_geometry
from onevision_hf.synthetic_video import write_video

# (source H, W, resize, patch size, max_pixels): downscale both ways, portrait, square-pad, crop, upscale, odd
GEOMETRIES = [
    (640, 360, "native", 14, 448 * 448),
    (360, 640, "square-pad:576", 16, None),
    (144, 176, "native", 14, 448 * 448),
    (144, 176, "square-pad:448", 14, None),
    (113, 145, "native", 14, None),
    (272, 640, "shorter-crop:224", 14, None),
    (101, 77, "native", 14, None),
    (77, 101, "square-pad:336", 14, None),
    (90, 60, "native", 14, 300 * 300),  # upscaled: min side grows
]


def _full_patches(rgb, geometry, cells):
    p = geometry.patch_size
    grid_h, grid_w = geometry.grid_size
    grid = apply_geometry(np.ascontiguousarray(rgb), geometry).reshape(grid_h, p, grid_w, p, 3)
    return grid[cells[:, 0], :, cells[:, 1]]


def _random_cells(rng, mask, count):
    cells = np.argwhere(mask)
    return cells[np.sort(rng.choice(len(cells), min(count, len(cells)), replace=False))].astype(np.int64)


@pytest.mark.parametrize("height, width, resize, patch_size, max_pixels", GEOMETRIES)
def test_numpy_passes_equal_pillow_on_every_content_patch(height, width, resize, patch_size, max_pixels):
    rng = np.random.default_rng(height * width)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    geometry = plan_video_geometry(height, width, resize, patch_size, 1, None, max_pixels)
    order = exact_pass_order(geometry)
    assert order in ("horizontal", "vertical")
    cells = np.argwhere(geometry.content_patch_mask()).astype(np.int64)
    np.testing.assert_array_equal(_scaled_patches(rgb, geometry, cells, order), _full_patches(rgb, geometry, cells))


@pytest.mark.parametrize("height, width, resize, patch_size, max_pixels", GEOMETRIES)
def test_patches_equal_the_full_placement_rotated_and_padded_rows_too(monkeypatch, height, width, resize,
                                                                      patch_size, max_pixels):
    monkeypatch.setattr(patch_pixels, "WHOLE_FRAME_FRACTION", float("inf"))  # the numpy passes, however many patches
    rng = np.random.default_rng(7)
    geometry = plan_video_geometry(height, width, resize, patch_size, 1, None, max_pixels)
    coded = rng.integers(0, 256, (width, height, 3), dtype=np.uint8)
    padded = np.zeros((height, width + 5, 3), np.uint8)[:, :width]  # rows longer than the frame, as PyAV's
    padded[:] = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for rgb in (np.rot90(coded, k=1), np.rot90(coded, k=-1)[::-1, ::-1], padded):  # views `upright` hands over
        for count in (1, 7, 10_000):
            cells = _random_cells(rng, geometry.content_patch_mask(), count)
            np.testing.assert_array_equal(place_patches(rgb, geometry, cells), _full_patches(rgb, geometry, cells))


def test_padding_patches_and_full_frames_are_placed_whole():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    geometry = plan_video_geometry(360, 640, "square-pad:576", 16, 1)
    every = np.argwhere(np.ones(geometry.grid_size, bool)).astype(np.int64)  # the kept first frame, padding included
    np.testing.assert_array_equal(place_patches(rgb, geometry, every), _full_patches(rgb, geometry, every))
    some = every[::37]
    np.testing.assert_array_equal(place_patches(rgb, geometry, some), _full_patches(rgb, geometry, some))


def test_a_pass_order_mistake_would_be_seen():
    """The two pass orders give different pixels on these sizes, so the tests above do pin the order."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (640, 360, 3), dtype=np.uint8)
    geometry = plan_video_geometry(640, 360, "native", 14, 1, None, 448 * 448)
    cells = _random_cells(rng, geometry.content_patch_mask(), 50)
    want = _full_patches(rgb, geometry, cells)
    matching = [order for order in ("horizontal", "vertical")
                if np.array_equal(_scaled_patches(rgb, geometry, cells, order), want)]
    assert matching == [exact_pass_order(geometry)]


def test_coefficients_rows_sum_to_one_in_fixed_point():
    for in_size, out_size in ((640, 588), (1280, 448), (77, 300), (144, 144)):
        weights = bicubic_coefficients(in_size, out_size).weights.astype(np.int64)
        assert np.abs(weights.sum(axis=1) - (1 << 22)).max() <= weights.shape[1]  # rounding of each tap only
    identity = bicubic_coefficients(144, 144)
    assert (identity.weights.max(axis=1) == 1 << 22).all()  # equal sizes: Pillow's skipped pass, exactly


def _select_both_ways(monkeypatch, path, **parameters):
    processor = OneVisionVideoProcessor(**parameters)
    monkeypatch.setattr(video_selection, "DEFERRED_FRAME_BYTES", 0)  # every frame placed whole, as before
    exact = processor.select(path, keep_frames=True)
    monkeypatch.setattr(video_selection, "DEFERRED_FRAME_BYTES", 256 * 2**20)
    fast = processor.select(path)
    return exact, fast


@pytest.mark.parametrize("name, parameters", [
    ("h264.mp4", {}),  # default preset: native at most 448 x 448 (an upscale of the 112 x 144 scene)
    ("h264.mp4", {"preset": "reference"}),  # square-pad:576
    ("mpeg4.avi", {"resize": "square-pad:224", "patch_size": 16}),
    ("h264-10bit.mp4", {"resize": "shorter-crop:112"}),
    ("hevc.mp4", {"max_pixels": 96 * 96}),  # pixel fallback, downscaled
])
def test_video_selection_fast_path_is_exact(monkeypatch, video_files, name, parameters):
    exact, fast = _select_both_ways(monkeypatch, video_files[name], num_frames=8, **parameters)
    np.testing.assert_array_equal(fast.positions, exact.positions)
    np.testing.assert_array_equal(fast.patches, exact.patches)
    p = exact.geometry.patch_size
    grid_h, grid_w = exact.geometry.grid_size
    grid = exact.frames.reshape(len(exact.frames), grid_h, p, grid_w, p, 3)
    cut = grid[exact.sample_indices, exact.positions[:, 1], :, exact.positions[:, 2]].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(fast.patches, cut)  # and they are the placed frames' pixels


@pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                    reason="writing rotation metadata needs PyAV >= 15")
def test_rotated_video_fast_path_is_exact(monkeypatch, tmp_path, moving_scene):
    coded = [np.ascontiguousarray(np.rot90(frame[:, :130], k=-1)) for frame in moving_scene.frames]  # (130, 112)
    path = tmp_path / "rotated.mp4"
    write_video(path, coded, codec="libx264", rotation=90)
    exact, fast = _select_both_ways(monkeypatch, path, num_frames=8, max_pixels=100 * 100)
    assert exact.geometry.source_size == (112, 130)
    assert exact.geometry.scaled_size != exact.geometry.source_size
    np.testing.assert_array_equal(fast.patches, exact.patches)


def test_frames_beyond_the_memory_bound_are_placed_at_once(monkeypatch, video_files):
    path = video_files["h264.mp4"]
    processor = OneVisionVideoProcessor(num_frames=8)
    kept = []
    original = video_selection._ScoredFrames.store

    def store(self, position, frame, scores):
        original(self, position, frame, scores)
        kept.append(type(self.pixels[position]).__name__)

    monkeypatch.setattr(video_selection._ScoredFrames, "store", store)
    one_frame = 112 * 144 * 3 // 2  # yuv420p planes of one frame (PyAV pads lines: a little more)
    monkeypatch.setattr(video_selection, "DEFERRED_FRAME_BYTES", 3 * one_frame)
    bounded = processor.select(path)
    assert 0 < kept.count("_DeferredFrame") < 8 and "ndarray" in kept
    monkeypatch.setattr(video_selection, "DEFERRED_FRAME_BYTES", 0)
    np.testing.assert_array_equal(bounded.patches, processor.select(path).patches)


def test_patches_in_small_batches_equal_one_batch(monkeypatch):
    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    geometry = plan_video_geometry(720, 1280, "native", 14, 1, None, 448 * 448)
    cells = _random_cells(rng, geometry.content_patch_mask(), 40)
    order = exact_pass_order(geometry)
    whole = _scaled_patches(rgb, geometry, cells, order)
    monkeypatch.setattr(patch_pixels, "CHUNK_BYTES", 1)  # one patch per batch
    np.testing.assert_array_equal(_scaled_patches(rgb, geometry, cells, order), whole)
    np.testing.assert_array_equal(whole, _full_patches(rgb, geometry, cells))
