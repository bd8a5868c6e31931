"""Codec-guided selection: the released recipe, budgets, first-frame and padding policies, units, positions."""

import numpy as np
import pytest

from onevision_hf import OneVisionInputError, OneVisionVideoProcessor
from onevision_hf.processors.geometry import FrameGeometry, apply_geometry, plan_geometry
from onevision_hf.processors.patch_selection import patch_scores, resolve_budget, select_patches, temporal_positions
from onevision_hf.synthetic_video import moving_patches, moving_recall, render_scene, write_video

from paths import ASSETS, MEDIA

REFERENCE = ASSETS / "reference-selection"
BEACH = MEDIA / "beach-portrait-h264.mp4"


@pytest.fixture(scope="module")
def beach_reference_selection():
    return OneVisionVideoProcessor(preset="reference").select(BEACH)


def test_reference_preset_recovers_released_selection(beach_reference_selection):
    selection = beach_reference_selection
    released = np.load(REFERENCE / "beach-portrait.visidx_thw.npy", allow_pickle=False)
    np.testing.assert_array_equal(selection.frame_indices,
                                  np.load(REFERENCE / "beach-portrait.frame_ids.npy", allow_pickle=False))
    assert selection.method == "codec-mv"
    assert selection.grid_size == (64, 36, 36)
    assert selection.positions.shape == released.shape == (10368, 3)
    # frame 0 is kept whole, padding included, as in the release
    np.testing.assert_array_equal(selection.positions[:1296], released[:1296])
    chosen = set(map(tuple, selection.positions[1296:].tolist()))
    released_free = set(map(tuple, released[1296:].tolist()))
    recall = len(chosen & released_free) / len(released_free)
    assert recall >= 0.80, f"recovered {recall:.3f} of the released non-forced patches (chance is 0.20)"


def test_reference_preset_letterboxes_like_the_release(beach_reference_selection):
    geometry = beach_reference_selection.geometry
    assert geometry.source_size == (640, 360)  # portrait
    assert geometry.scaled_size == (576, 324) and geometry.offset == (0, 126)
    content = geometry.content_patch_mask()
    later = beach_reference_selection.positions[1296:]
    assert content[later[:, 1], later[:, 2]].all(), "padding patches are never chosen by score"


def test_temporal_positions_spread_frames_over_the_rope_grid():
    np.testing.assert_array_equal(temporal_positions(8, 64), [0, 9, 18, 27, 36, 45, 54, 63])
    np.testing.assert_array_equal(temporal_positions(64, 64), np.arange(64))
    np.testing.assert_array_equal(temporal_positions(5, None), np.arange(5))


def test_budget_is_a_count_or_a_fraction_of_the_dense_grid():
    assert resolve_budget(10368, 64, 36, 36) == 10368
    assert resolve_budget(0.125, 64, 36, 36) == 10368
    assert resolve_budget(1.0, 2, 3, 4) == 24
    for bad in (0, -3, 1.5, "10%", True):
        with pytest.raises(OneVisionInputError, match="budget"):
            resolve_budget(bad, 64, 36, 36)


def test_global_top_k_has_no_per_frame_quota_and_spares_padding():
    scores = np.zeros((3, 4, 4), np.float32)
    scores[2, 1:3, 1:3] = 10.0  # one busy frame
    scores[1, 0, 0] = 5.0
    content = np.ones((4, 4), bool)
    content[:, 3] = False  # a padding column, scored high but never chosen
    scores[1:, :, 3] = 100.0
    chosen = select_patches(scores, content, budget=5, keep_first_frame=False)
    np.testing.assert_array_equal(chosen, [[1, 0, 0], [2, 1, 1], [2, 1, 2], [2, 2, 1], [2, 2, 2]])


def test_first_frame_is_kept_whole_or_not_as_configured():
    scores = np.random.default_rng(0).random((4, 3, 3)).astype(np.float32)
    content = np.ones((3, 3), bool)
    content[0] = False  # top row is padding
    kept = select_patches(scores, content, budget=10, keep_first_frame=True)
    assert (kept[:, 0] == 0).sum() == 6 and len(kept) == 10
    with_padding = select_patches(scores, content, budget=12, keep_first_frame=True, first_frame_padding=True)
    assert (with_padding[:, 0] == 0).sum() == 9
    free = select_patches(scores, content, budget=10, keep_first_frame=False)
    expected = np.zeros(scores.shape, bool)
    expected.ravel()[np.argsort(-np.where(content, scores, -np.inf).ravel())[:10]] = True
    np.testing.assert_array_equal(free, np.argwhere(expected))
    with pytest.raises(OneVisionInputError, match="first frame kept whole"):
        select_patches(scores, content, budget=4, keep_first_frame=True)


def test_two_by_two_units_always_select_complete_blocks(video_files):
    selection = OneVisionVideoProcessor(selection_unit=2, num_frames=16).select(video_files["h264.mp4"])
    grid_t, grid_h, grid_w = selection.grid_size
    assert grid_h % 2 == 0 and grid_w % 2 == 0
    mask = selection.patch_mask()[1:]  # (T-1, gh, gw) without the forced frame
    blocks = mask.reshape(grid_t - 1, grid_h // 2, 2, grid_w // 2, 2).sum(axis=(2, 4))
    assert set(np.unique(blocks)) <= {0, 4}
    assert mask.sum() > 0


def test_same_parameters_give_identical_selections(video_files):
    processor = OneVisionVideoProcessor(num_frames=16)
    first, second = processor.select(video_files["h264.mp4"]), processor.select(video_files["h264.mp4"])
    np.testing.assert_array_equal(first.positions, second.positions)
    np.testing.assert_array_equal(first.patches, second.patches)


def test_codec_vectors_find_the_moving_object(video_files, moving_scene):
    selection = OneVisionVideoProcessor(num_frames=16, budget=0.25).select(video_files["h264.mp4"])
    truth = moving_patches(moving_scene, selection.frame_indices, selection.geometry)
    assert truth[1:].sum() / truth[1:].size < 0.2  # the object fits the budget left after the first frame
    assert moving_recall(selection.patch_mask(), truth) >= 0.9


def test_camera_pan_is_compensated(tmp_path):
    scene = render_scene(32, 112, 144, object_size=32, speed=3.0, pan=(0.0, 2.0), seed=3)
    path = tmp_path / "pan.mp4"
    write_video(path, scene.frames, codec="libx264")
    for motion_source in ("auto", "pixel"):
        selection = OneVisionVideoProcessor(num_frames=16, budget=0.25, motion_source=motion_source).select(path)
        truth = moving_patches(scene, selection.frame_indices, selection.geometry)
        recall = moving_recall(selection.patch_mask(), truth)
        assert recall >= 0.85, f"{motion_source}: recall {recall:.2f} under a 2 px/frame pan"



def test_scoring_on_the_worker_is_independent_of_timing_and_passes_its_errors_on(monkeypatch):
    import onevision_hf.processors.video_selection as video_selection

    processor = OneVisionVideoProcessor(num_frames=16)
    overlapped = processor.select(BEACH)
    monkeypatch.setattr(video_selection, "MAX_FRAMES_IN_FLIGHT", 0)  # decode waits for every frame's score
    in_lockstep = processor.select(BEACH)
    np.testing.assert_array_equal(overlapped.positions, in_lockstep.positions)
    np.testing.assert_array_equal(overlapped.patches, in_lockstep.patches)

    scored = []

    def fail_on_the_fifth_frame(*args):
        scored.append(1)
        if len(scored) == 5:
            raise OneVisionInputError("scoring failed on purpose")
        return original(*args)

    original = video_selection.frame_energy
    monkeypatch.setattr(video_selection, "MAX_FRAMES_IN_FLIGHT", 4)
    monkeypatch.setattr(video_selection, "frame_energy", fail_on_the_fifth_frame)
    for decoders in (1, 2):  # one decode, or two segments decoding side by side (`decode_segments`)
        monkeypatch.setattr(video_selection, "decode_segment_count", lambda: decoders)
        scored.clear()
        with pytest.raises(OneVisionInputError, match="on purpose"):
            processor.select(BEACH)
        # the decode stopped soon after: at most the frames already queued ran, in each segment
        assert len(scored) <= decoders * (5 + 4)


def test_numpy_blas_runs_one_thread_while_selecting_and_is_restored_after(monkeypatch):
    import threadpoolctl

    import onevision_hf.processors.video_selection as video_selection

    def blas_threads():
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]

    def recording(*args):
        during.append(blas_threads())
        return original(*args)

    before, during, original = blas_threads(), [], video_selection.frame_energy
    monkeypatch.setattr(video_selection, "frame_energy", recording)
    for _ in range(2):  # the second run reuses the pools found by the first
        OneVisionVideoProcessor(num_frames=8).select(BEACH)
        assert blas_threads() == before
    assert during and all(threads == [video_selection.BLAS_THREADS] * len(before) for threads in during)


@pytest.mark.parametrize("size, resize, patch, factor", [
    ((360, 640), "native", 14, 2), ((720, 1280), "native", 14, 4), ((360, 640), "square-pad:448", 14, 2),
    ((360, 640), "shorter-crop:336", 14, 1), ((144, 176), "native", 16, 1), ((1080, 1920), "square-pad:384", 16, 4),
    ((500, 333), "native", 14, 3)])
def test_patch_scores_are_the_placed_energy_summed_per_patch(size, resize, patch, factor):
    geometry = plan_geometry(*size, resize, patch)
    energy_size = (-(-size[0] // factor), -(-size[1] // factor))
    geometry = FrameGeometry(energy_size, geometry.scaled_size, geometry.offset, geometry.canvas_size, patch)
    energy = np.random.default_rng(sum(size)).random(energy_size, dtype=np.float32)
    energy[energy < 0.5] = 0  # exact zeros stay exact zeros: ties in the top-K are kept
    placed = apply_geometry(energy, geometry, resample="bilinear")  # Pillow's resize onto the canvas
    grid_h, grid_w = geometry.grid_size
    expected = placed.reshape(grid_h, patch, grid_w, patch).sum(axis=(1, 3), dtype=np.float64)
    scores = patch_scores(energy, geometry)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)
    assert ((scores == 0) == (expected == 0)).all()


def test_b_frames_of_mpeg2_are_not_references(tmp_path):
    # nothing is predicted from an MPEG-1/2 or MPEG-4 part 2 B-picture: never a candidate reference
    from onevision_hf.processors.video_decoding import PICTURE_TYPE_B, iter_frames

    scene = render_scene(12, 64, 96, num_objects=1, object_size=16, speed=2.0, seed=2)
    path = tmp_path / "bframes.mpg"
    write_video(path, scene.frames, codec="mpeg2video", rate=25, options={"bf": "2", "g": "12"})
    kinds = [(int(frame.frame.pict_type) == PICTURE_TYPE_B, frame.is_reference)
             for frame in iter_frames(path, export_motion_vectors=True)]
    assert len(kinds) == 12 and any(is_b for is_b, _ in kinds)
    assert all(is_reference == (not is_b) for is_b, is_reference in kinds)
