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
    (selection,) = batch["video_metadata"]
    torch.testing.assert_close(batch["pixel_values"], normalize_patch_rows(selection.patches))
    np.testing.assert_array_equal(batch["patch_positions"].numpy(), selection.positions)
    # the rows are the canvas pixels at the stated positions
    frames = processor.select(video_files["h264.mp4"], keep_frames=True).frames
    p = selection.geometry.patch_size
    (i, h, w), row = selection.positions[5], selection.patches[5]
    sample = int(np.searchsorted(selection.temporal_positions, i))
    np.testing.assert_array_equal(row, frames[sample, h * p:(h + 1) * p, w * p:(w + 1) * p].transpose(2, 0, 1))


def test_metadata_names_frames_method_and_grid(video_files):
    (selection,) = OneVisionVideoProcessor(num_frames=8)(videos=[video_files["h264.mp4"]],
                                                        return_metadata=True)["video_metadata"]
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
    with pytest.raises(OneVisionInputError, match="uint8"):
        processor.select(np.zeros((3, 32, 32, 3), np.float32))
    with pytest.raises(OneVisionInputError, match="empty"):
        processor(videos=[])
