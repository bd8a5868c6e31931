"""OneVisionVideoProcessor: packed encoder input, metadata, input kinds, save/load, AutoVideoProcessor."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

import onevision_hf  # noqa: F401  (registers the Auto classes)
from onevision_hf import OneVisionEncoderModel, OneVisionInputError, OneVisionVideoProcessor
from onevision_hf.processors.normalization import normalize_patch_rows
from onevision_hf.processors.video_presets import VIDEO_PRESETS

from paths import MEDIA, TINY_ENCODER


def test_processor_output_is_the_encoders_packed_input(video_files):
    processor = OneVisionVideoProcessor(num_frames=8)
    batch = processor(videos=[video_files["h264.mp4"], MEDIA / "carphone-176x144-h264.mp4"], return_tensors="pt")
    assert set(batch) == {"pixel_values", "patch_positions", "cu_seqlens"}
    assert batch["pixel_values"].dtype == torch.float32 and batch["pixel_values"].shape[1] == 3 * 14 * 14
    assert batch["patch_positions"].dtype == torch.int64 and batch["cu_seqlens"].dtype == torch.int32
    assert batch["cu_seqlens"][0] == 0 and batch["cu_seqlens"][-1] == batch["pixel_values"].shape[0]
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER).eval()
    with torch.no_grad():
        output = model(**batch)
    assert output.last_hidden_state.shape == (batch["pixel_values"].shape[0], model.config.hidden_size)
    assert output.pooler_output.shape == (2, model.config.hidden_size)


def test_packed_rows_are_the_normalised_selected_patches(video_files):
    processor = OneVisionVideoProcessor(num_frames=8)
    batch = processor(videos=video_files["h264.mp4"], return_metadata=True)
    (selection,) = (metadata.selection for metadata in batch["video_metadata"])
    torch.testing.assert_close(batch["pixel_values"], normalize_patch_rows(selection.patches))
    np.testing.assert_array_equal(batch["patch_positions"].numpy(), selection.positions)
    # the rows are the canvas pixels at the stated positions
    frames = processor.select(video_files["h264.mp4"], keep_frames=True).frames
    p = selection.geometry.patch_size
    (i, h, w), row = selection.positions[5], selection.patches[5]
    sample = int(np.searchsorted(selection.temporal_positions, i))
    np.testing.assert_array_equal(row, frames[sample, h * p:(h + 1) * p, w * p:(w + 1) * p].transpose(2, 0, 1))


def test_metadata_names_frames_method_and_grid(video_files):
    (metadata,) = OneVisionVideoProcessor(num_frames=8)(videos=[video_files["h264.mp4"]],
                                                       return_metadata=True)["video_metadata"]
    selection = metadata.selection
    assert metadata.frames_indices == selection.frame_indices.tolist() and metadata.total_num_frames == 32
    assert metadata.fps and metadata.timestamps == [index / metadata.fps for index in metadata.frames_indices]
    np.testing.assert_array_equal(selection.frame_indices, np.floor(np.linspace(0, 31, 8)).astype(int))
    np.testing.assert_array_equal(selection.temporal_positions, [0, 9, 18, 27, 36, 45, 54, 63])
    assert selection.method == "codec-mv" and selection.fallback_reason is None
    assert selection.grid_size == (8, *selection.geometry.grid_size)
    assert set(np.unique(selection.positions[:, 0])) <= set(selection.temporal_positions.tolist())


def test_paths_bytes_and_file_objects_give_the_same_selection(video_files):
    processor = OneVisionVideoProcessor(num_frames=8)
    path = video_files["h264.mp4"]
    data = path.read_bytes()
    reference = processor.select(path)
    for source in (str(path), data, io.BytesIO(data)):
        np.testing.assert_array_equal(processor.select(source).positions, reference.positions)


def test_decoded_frames_fall_back_to_pixel_motion(moving_scene):
    processor = OneVisionVideoProcessor(num_frames=8)
    frames = np.stack(moving_scene.frames)  # (T, H, W, 3) uint8
    reference = processor.select(frames)
    assert reference.method == "pixel-block-matching"
    assert "no motion vectors" in reference.fallback_reason
    as_pil = [Image.fromarray(frame) for frame in moving_scene.frames]
    channels_first = torch.from_numpy(frames).permute(0, 3, 1, 2)
    for video in (list(frames), as_pil, channels_first):
        np.testing.assert_array_equal(processor.select(video).positions, reference.positions)
    batch = processor(videos=[frames, as_pil])  # a list of videos, each given as frames
    assert batch["cu_seqlens"].shape == (3,)


def test_save_pretrained_round_trip_through_auto_video_processor(tmp_path):
    processor = OneVisionVideoProcessor(preset="reference", budget=0.25, selection_unit=2)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "video_preprocessor_config.json").is_file()
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is OneVisionVideoProcessor
    assert loaded.to_dict() == processor.to_dict()
    assert loaded.selection_recipe() == processor.selection_recipe()
    assert loaded.patch_size == 16 and loaded.budget == 0.25 and loaded.selection_unit == 2


def test_presets_are_processor_parameters():
    assert set(VIDEO_PRESETS["reference"]) == set(VIDEO_PRESETS["default"])
    reference = OneVisionVideoProcessor(preset="reference")
    assert (reference.num_frames, reference.patch_size, reference.resize, reference.budget) == (
        64, 16, "square-pad:576", 10368)
    default = OneVisionVideoProcessor()
    assert (default.patch_size, default.resize, default.budget) == (14, "native", 0.125)


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "fast"}, "unknown video preset"),
    ({"budegt": 0.25}, "unknown OneVisionVideoProcessor parameter"),
    ({"motion_source": "optical-flow"}, "motion_source"),
    ({"intra_frame_energy": "random"}, "intra_frame_energy"),
    ({"unused_list_vectors": "guess"}, "unused_list_vectors must be one of"),
    ({"selection_unit": 3}, "selection_unit"),
    ({"num_frames": 128}, "rope_temporal_size"),
    ({"num_frames": 4, "budget": 0.125}, "less than the first frame kept whole"),
])
def test_bad_parameters_raise_where_they_enter(kwargs, message):
    with pytest.raises(OneVisionInputError, match=message):
        processor = OneVisionVideoProcessor(**kwargs)
        processor.selection_recipe()


def test_bad_video_arguments_raise_typed_errors():
    processor = OneVisionVideoProcessor(num_frames=4, budget=0.5)
    with pytest.raises(OneVisionInputError, match="a video must be"):
        processor(videos=[42])
    with pytest.raises(OneVisionInputError, match="decoded frame 0.*must lie in \\[0, 1\\]"):
        processor.select(np.full((3, 32, 32, 3), 2.0, np.float32))
    with pytest.raises(OneVisionInputError, match="empty"):
        processor(videos=[])
    with pytest.raises(OneVisionInputError, match=r"a video must be .*; got ndarray of shape \(32, 32, 3\)"):
        processor(videos=np.zeros((32, 32, 3), np.uint8))  # one frame is not a video
    with pytest.raises(OneVisionInputError, match=r"https://example\.com/clip\.mp4: is a URL; only local video "
                                                  r"files are read \(no network access\): download it first"):
        processor(videos=["https://example.com/clip.mp4"])


def test_a_five_dimensional_array_is_a_batch_of_videos(moving_scene):
    """(B, T, H, W, C) arrays and tensors are B videos, as transformers' video processors read them."""
    frames = np.stack(moving_scene.frames[:8])
    processor = OneVisionVideoProcessor(num_frames=4, budget=0.5)
    one = processor(videos=[frames])
    for batch in (np.stack([frames, frames]), torch.from_numpy(np.stack([frames, frames]))):
        two = processor(videos=batch)
        np.testing.assert_array_equal(two["cu_seqlens"], [0, len(one["pixel_values"]), 2 * len(one["pixel_values"])])
        torch.testing.assert_close(two["pixel_values"], torch.cat([one["pixel_values"]] * 2), rtol=0, atol=0)


def test_a_calls_num_frames_is_a_demand_and_the_recipes_an_upper_bound(moving_scene):
    frames = np.stack(moving_scene.frames)  # 32 frames
    processor = OneVisionVideoProcessor(budget=0.05)  # recipe: up to 64 frames, 256 of 80-patch frames
    (everything,) = processor(frames, return_metadata=True)["video_metadata"]
    assert everything.frames_indices == list(range(32))
    (five,) = processor(frames, num_frames=5, return_metadata=True)["video_metadata"]
    assert five.frames_indices == np.floor(np.linspace(0, 31, 5)).astype(int).tolist()
    with pytest.raises(OneVisionInputError, match="asked to sample 40 frames but the video has 32"):
        processor(frames, num_frames=40)
    assert len(five.selection.positions) == len(everything.selection.positions)  # the recipe's budget, spent on 5


def test_fps_sampling_uses_the_files_frame_rate_or_the_given_metadata(video_files, moving_scene):
    processor = OneVisionVideoProcessor(budget=0.5)
    (from_file,) = processor(video_files["h264.mp4"], fps=6, return_metadata=True)["video_metadata"]
    assert from_file.fps == 30 and len(from_file.frames_indices) == int(32 / 30 * 6)  # 32 frames at 30 fps
    frames = np.stack(moving_scene.frames)
    with pytest.raises(OneVisionInputError, match="needs the video's frame rate"):
        processor(frames, fps=6)
    (decoded,) = processor(frames, fps=6, video_metadata={"total_num_frames": 32, "fps": 30.0},
                           return_metadata=True)["video_metadata"]
    assert decoded.frames_indices == from_file.frames_indices and decoded.fps == 30.0
    with pytest.raises(OneVisionInputError, match="mutually exclusive"):
        processor.sample_frames({"total_num_frames": 32, "fps": 30.0}, num_frames=4, fps=6)


def test_do_sample_frames_false_reads_every_frame_up_to_the_temporal_grid(moving_scene):
    processor = OneVisionVideoProcessor(num_frames=8, budget=0.5, do_sample_frames=False)
    (metadata,) = processor(list(moving_scene.frames[:12]), return_metadata=True)["video_metadata"]
    assert metadata.frames_indices == list(range(12))  # more than num_frames: nothing is sampled
    with pytest.raises(OneVisionInputError, match="rope_temporal_size = 64"):
        processor(list(moving_scene.frames) * 3)  # 96 frames


def test_rescale_and_normalise_switches_shape_the_rows(moving_scene):
    processor = OneVisionVideoProcessor(num_frames=8, budget=0.5)
    frames = np.stack(moving_scene.frames)
    batch = processor(frames, do_normalize=False, rescale_factor=-1.0, return_metadata=True)
    patches = batch["video_metadata"][0].selection.patches
    torch.testing.assert_close(batch["pixel_values"], -torch.from_numpy(patches).float().flatten(1))
    raw = processor(frames, do_rescale=False, image_mean=[10.0], image_std=[2.0])["pixel_values"]
    torch.testing.assert_close(raw, (torch.from_numpy(patches).float().flatten(1) - 10.0) / 2.0)


def test_selected_positions_count_what_a_selection_keeps_without_decoding(moving_scene):
    processor = OneVisionVideoProcessor(num_frames=8, budget=0.3)
    frames = np.stack(moving_scene.frames)
    for count, do_sample_frames in ((32, None), (5, None), (6, False)):
        selection = processor.select(frames[:count], do_sample_frames=do_sample_frames)
        expected = processor.selected_positions(count, *frames.shape[1:3], do_sample_frames=do_sample_frames)
        assert len(expected) == len(selection.positions)
        assert set(expected[:, 0]) <= set(selection.temporal_positions.tolist())


def test_transformers_sampling_contract_on_frame_tensors():
    """transformers' `test_call_sample_frames`, read through the metadata (packed rows have no frame axis)."""
    torch.manual_seed(0)
    video = torch.randint(0, 256, (8, 3, 40, 52), dtype=torch.uint8)  # (T, C, H, W) frames
    processor = OneVisionVideoProcessor(num_frames=8, budget=0.5, max_pixels=56 * 56)

    def frame_count(**kwargs):
        return len(processor(video, return_metadata=True, **kwargs)["video_metadata"][0].frames_indices)

    processor.do_sample_frames = False
    assert frame_count(num_frames=3) == 8
    processor.do_sample_frames = True
    assert frame_count(num_frames=3) == 3
    with pytest.raises(ValueError):
        processor.sample_frames(metadata={"total_num_frames": 8}, fps=3)
    assert frame_count(fps=3, video_metadata=[[{"duration": 2.0, "total_num_frames": 8, "fps": 4}]]) == 6
    with pytest.raises(ValueError):
        processor(video, num_frames=10)


def test_four_channel_frames_are_composited_to_rgb_with_scalar_normalisation():
    rgba = np.random.default_rng(0).integers(0, 256, (8, 40, 52, 4), dtype=np.uint8)
    processor = OneVisionVideoProcessor(num_frames=8, budget=0.5)
    batch = processor([Image.fromarray(frame) for frame in rgba], input_data_format="channels_last", image_mean=0.0,
                      image_std=1.0, return_metadata=True)
    patches = batch["video_metadata"][0].selection.patches
    torch.testing.assert_close(batch["pixel_values"], torch.from_numpy(patches).float().flatten(1) / 255)
    with pytest.raises(OneVisionInputError, match="do_convert_rgb=True"):
        processor(list(rgba), do_convert_rgb=False)
