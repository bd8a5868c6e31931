"""OneVisionImageProcessor: released preprocessing, native-resolution documents, image loading, errors, saving."""

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

import onevision_hf  # noqa: F401  (registers the Auto classes)
from onevision_hf import OneVisionConfigError, OneVisionEncoderModel, OneVisionImageProcessor, OneVisionInputError
from onevision_hf.modeling.packing import patchify
from onevision_hf.processors.image_loading import load_image

from paths import TINY_ENCODER

RELEASED_PREPROCESSOR_CONFIG = {
    "crop_size": {"height": 448, "width": 448},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 448},
}
PATCH = 14


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 with gradients and noise, so resampling differences would show."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 / max(width - 1, 1), ys * 255 / max(height - 1, 1), (xs + ys) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def released_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("released")
    (directory / "preprocessor_config.json").write_text(json.dumps(RELEASED_PREPROCESSOR_CONFIG))
    return directory


@pytest.fixture(scope="module")
def processor(released_dir):
    return OneVisionImageProcessor.from_pretrained(released_dir)


# --- released preprocessing ---------------------------------------------------------------------------------


def test_released_preprocessor_config_loads_as_shorter_crop_448(processor):
    assert processor.resize_mode == "shorter-crop:448"
    assert processor.resample == 3 and processor.patch_size == PATCH
    assert tuple(processor.image_mean) == tuple(RELEASED_PREPROCESSOR_CONFIG["image_mean"])
    assert tuple(processor.image_std) == tuple(RELEASED_PREPROCESSOR_CONFIG["image_std"])
    assert processor.to_dict() == OneVisionImageProcessor().to_dict()  # the released settings are the defaults


def test_resize_mode_given_to_from_pretrained_replaces_the_released_geometry(released_dir):
    loaded = OneVisionImageProcessor.from_pretrained(released_dir, resize_mode="native", max_pixels=50_000)
    assert loaded.resize_mode == "native" and loaded.max_pixels == 50_000
    assert loaded(smooth_image(100, 400))["image_grid_hw"].tolist() == [[7, 29]]


@pytest.mark.parametrize("height, width", [(300, 500), (640, 360), (201, 200)])
def test_released_mode_pixels_match_clip_image_processor(processor, released_dir, height, width):
    image = smooth_image(height, width)
    clip = CLIPImageProcessorPil.from_pretrained(released_dir)(image, return_tensors="pt")["pixel_values"]
    assert clip.shape == (1, 3, 448, 448)
    ours = processor(image, return_tensors="pt")
    expected_rows = patchify(clip[:, :, None], PATCH)[0]  # (1024, 588)
    torch.testing.assert_close(ours["pixel_values"], expected_rows, atol=1e-5, rtol=0)


def test_packed_output_equals_upstream_dense_call_on_tiny_encoder(processor, released_dir):
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER).eval()
    image = smooth_image(360, 480, seed=3)
    dense = CLIPImageProcessorPil.from_pretrained(released_dir)(image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        packed_out = model(**processor(image, return_tensors="pt"))
        upstream_out = model(pixel_values=dense)  # (1, 3, 448, 448)
    torch.testing.assert_close(packed_out.last_hidden_state, upstream_out.last_hidden_state[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(packed_out.pooler_output, upstream_out.pooler_output, atol=1e-5, rtol=0)


# --- packed format ------------------------------------------------------------------------------------------


def test_packed_format_shapes_positions_and_cu_seqlens(processor):
    out = processor([smooth_image(300, 500), smooth_image(500, 300, seed=1)], return_tensors="pt")
    assert out["pixel_values"].shape == (2 * 32 * 32, 3 * PATCH * PATCH)
    assert out["pixel_values"].dtype == torch.float32
    assert out["patch_positions"].dtype == torch.int64 and out["patch_positions"].shape == (2048, 3)
    assert out["cu_seqlens"].dtype == torch.int32 and out["cu_seqlens"].tolist() == [0, 1024, 2048]
    assert out["image_grid_hw"].dtype == torch.int64 and out["image_grid_hw"].tolist() == [[32, 32], [32, 32]]
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    grid = torch.stack([torch.zeros(1024, dtype=torch.int64), rows.flatten(), cols.flatten()], dim=1)
    torch.testing.assert_close(out["patch_positions"], torch.cat([grid, grid]))


def test_batch_concatenates_per_image_outputs(processor):
    images = [smooth_image(90, 200), smooth_image(150, 60, seed=1), smooth_image(30, 30, seed=2)]
    batch = processor(images, resize_mode="native", return_tensors="pt")
    singles = [processor(image, resize_mode="native", return_tensors="pt") for image in images]
    for key in ("pixel_values", "patch_positions", "image_grid_hw"):
        torch.testing.assert_close(batch[key], torch.cat([single[key] for single in singles]))
    lengths = [int(single["image_grid_hw"].prod()) for single in singles]
    assert batch["cu_seqlens"].tolist() == np.cumsum([0, *lengths]).tolist()


def test_return_tensors_none_gives_numpy_arrays(processor):
    out = processor(smooth_image(60, 80))
    assert isinstance(out["pixel_values"], np.ndarray) and out["pixel_values"].shape == (1024, 588)


def test_native_batch_through_encoder_equals_per_image_calls(processor):
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER).eval()
    images = [smooth_image(100, 300), smooth_image(200, 90, seed=1)]
    with torch.no_grad():
        batch = model(**processor(images, resize_mode="native", return_tensors="pt"))
        singles = [model(**processor(image, resize_mode="native", return_tensors="pt")) for image in images]
    torch.testing.assert_close(batch.last_hidden_state, torch.cat([s.last_hidden_state for s in singles]),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.pooler_output, torch.cat([s.pooler_output for s in singles]), atol=1e-5, rtol=0)


# --- native resolution (documents, charts) ------------------------------------------------------------------


def test_native_mode_without_bounds_rounds_sides_to_patch_multiples(processor):
    out = processor(smooth_image(100, 150), resize_mode="native")
    assert out["image_grid_hw"].tolist() == [[7, 11]]  # 100 -> 98, 150 -> 154


@pytest.mark.parametrize(
    "height, width, min_pixels, max_pixels",
    [(2200, 1700, None, 448 * 448), (300, 2400, None, 200_000), (60, 80, 100_000, None), (40, 400, 50_000, 60_000)],
)
def test_native_mode_keeps_aspect_and_stays_within_pixel_bounds(processor, height, width, min_pixels, max_pixels):
    out = processor(smooth_image(height, width), resize_mode="native", min_pixels=min_pixels, max_pixels=max_pixels)
    grid_h, grid_w = out["image_grid_hw"][0].tolist()
    pixels = grid_h * grid_w * PATCH * PATCH
    assert max_pixels is None or pixels <= max_pixels
    assert min_pixels is None or pixels >= min_pixels * 0.8  # rounding to patch multiples may land a little under
    # each side is within one patch of the side scaled exactly onto the violated bound (aspect ratio kept)
    bound = max_pixels if max_pixels is not None and height * width > max_pixels else min_pixels
    scale = np.sqrt(bound / (height * width))
    assert abs(grid_h * PATCH - height * scale) <= PATCH and abs(grid_w * PATCH - width * scale) <= PATCH
    assert out["pixel_values"].shape == (grid_h * grid_w, 3 * PATCH * PATCH)


def test_native_mode_settings_survive_save_and_load(tmp_path):
    processor = OneVisionImageProcessor(resize_mode="native", min_pixels=28 * 28, max_pixels=200_000)
    processor.save_pretrained(tmp_path)
    loaded = OneVisionImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    image = smooth_image(700, 500)
    np.testing.assert_array_equal(loaded(image)["pixel_values"], processor(image)["pixel_values"])
    assert loaded(image)["image_grid_hw"].prod() * PATCH * PATCH <= 200_000


def test_auto_image_processor_loads_saved_processor(tmp_path):
    shutil.copy(TINY_ENCODER / "config.json", tmp_path / "config.json")
    OneVisionImageProcessor(resize_mode="native", max_pixels=100_000).save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, OneVisionImageProcessor)
    assert loaded.resize_mode == "native" and loaded.max_pixels == 100_000


def test_auto_image_processor_finds_processor_from_model_type(tmp_path):
    shutil.copy(TINY_ENCODER / "config.json", tmp_path / "config.json")
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"resize_mode": "shorter-crop:224"}))
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, OneVisionImageProcessor) and loaded.resize_mode == "shorter-crop:224"


# --- image loading ------------------------------------------------------------------------------------------


def test_exif_rotated_jpeg_comes_out_upright(tmp_path, processor):
    upright = np.zeros((56, 28, 3), np.uint8)  # portrait: red top half, blue bottom half
    upright[:28] = (255, 0, 0)
    upright[28:] = (0, 0, 255)
    stored = Image.fromarray(upright).rotate(90, expand=True)  # what a sideways camera sensor records
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    path.write_bytes(encode(stored, "JPEG", exif=exif, quality=95))

    rgb = load_image(path)
    assert rgb.shape == (56, 28, 3)
    np.testing.assert_allclose(rgb[:24].reshape(-1, 3).mean(0), (255, 0, 0), atol=12)
    np.testing.assert_allclose(rgb[32:].reshape(-1, 3).mean(0), (0, 0, 255), atol=12)
    assert processor(str(path), resize_mode="native")["image_grid_hw"].tolist() == [[4, 2]]


def test_grayscale_png_becomes_three_equal_channels():
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    rgb = load_image(encode(Image.fromarray(gray, mode="L")))
    np.testing.assert_array_equal(rgb, np.repeat(gray[:, :, None], 3, axis=2))


def test_rgba_png_is_composited_on_white():
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], np.uint8)  # clear red, blue, half black
    rgb = load_image(encode(Image.fromarray(rgba, mode="RGBA")))
    np.testing.assert_array_equal(rgb[0], [[255, 255, 255], [0, 0, 255], [127, 127, 127]])


def test_gray_alpha_png_is_composited_on_white():
    la = np.array([[[0, 0], [0, 255], [200, 255]]], np.uint8)
    rgb = load_image(encode(Image.fromarray(la, mode="LA")))
    np.testing.assert_array_equal(rgb[0], [[255] * 3, [0] * 3, [200] * 3])


def test_palette_png_with_transparent_index_is_composited_on_white():
    palette_image = Image.new("P", (3, 1))
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    palette_image.putdata([0, 1, 2])
    data = encode(palette_image, transparency=1)  # index 1 (green) is transparent
    assert Image.open(io.BytesIO(data)).mode == "P"
    np.testing.assert_array_equal(load_image(data)[0], [[255, 0, 0], [255, 255, 255], [0, 0, 255]])


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    values = np.array([[0, 257, 257 * 100, 65535]], np.uint16)
    data = encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    np.testing.assert_array_equal(load_image(data)[0], np.repeat(np.array([[0], [1], [100], [255]]), 3, axis=1))


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # full magenta + yellow = red
    rgb = load_image(encode(cmyk, "JPEG", quality=100))
    np.testing.assert_allclose(rgb.reshape(-1, 3).mean(0), (255, 0, 0), atol=3)


def test_every_input_kind_gives_the_same_pixels(tmp_path):
    image = smooth_image(20, 30)
    path = tmp_path / "image.png"
    path.write_bytes(encode(Image.fromarray(image)))
    with open(path, "rb") as file:
        from_file_object = load_image(file)
    inputs = [str(path), path, path.read_bytes(), Image.fromarray(image), image,
              torch.from_numpy(image).permute(2, 0, 1), image.astype(np.float32) / 255]
    for loaded in [from_file_object, *(load_image(item) for item in inputs)]:
        np.testing.assert_array_equal(loaded, image)


def test_channels_first_numpy_input_is_read_with_input_data_format(processor):
    image = smooth_image(40, 60)
    expected = processor(image)["pixel_values"]
    channels_first = processor(image.transpose(2, 0, 1), input_data_format="channels_first")["pixel_values"]
    np.testing.assert_array_equal(channels_first, expected)


# --- bad input ----------------------------------------------------------------------------------------------


def test_corrupt_bytes_raise_input_error_naming_the_problem():
    png = encode(Image.fromarray(smooth_image(64, 64)))
    with pytest.raises(OneVisionInputError, match="corrupt or truncated"):
        load_image(png[: len(png) // 2])
    with pytest.raises(OneVisionInputError, match="not an image file"):
        load_image(b"\x00\x01garbage" * 20)


def test_text_file_raises_input_error_naming_the_file(tmp_path, processor):
    path = tmp_path / "notes.txt"
    path.write_text("this is not an image\n")
    with pytest.raises(OneVisionInputError, match=r"notes\.txt.*not an image file"):
        processor(str(path))


def test_truncated_jpeg_file_raises_input_error_naming_the_file(tmp_path, processor):
    path = tmp_path / "cut.jpg"
    path.write_bytes(encode(Image.fromarray(smooth_image(64, 64)), "JPEG")[:300])
    with pytest.raises(OneVisionInputError, match=r"cut\.jpg.*corrupt or truncated"):
        processor([smooth_image(20, 20), path])


def test_truncated_file_is_refused_even_when_another_library_lets_pillow_load_truncated_images(
        tmp_path, processor, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing lmms-eval does
    path = tmp_path / "cut.jpg"
    whole = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path.write_bytes(whole[:len(whole) // 2])  # cut inside the scan: Pillow would fill the rest with grey
    with pytest.raises(OneVisionInputError, match=r"cut\.jpg.*corrupt or truncated"):
        processor(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the other library's setting is restored


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(OneVisionInputError, match="does not exist"):
        load_image(tmp_path / "absent.png")


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "zero size"),
        (np.zeros((10, 10, 5), np.uint8), "5 channels"),
        (np.zeros((5, 32, 32), np.uint8), "32 channels"),
        (np.zeros(10, np.uint8), "expected \\(H, W\\)"),
        (np.full((4, 4, 3), 2.0, np.float32), "float images must lie in \\[0, 1\\]"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (np.full((4, 4), 300, np.int32), "must lie in \\[0, 255\\]"),
        (torch.zeros(3, 0, 8), "zero size"),
        (Image.new("RGB", (0, 0)), "zero size"),
        (42, "is a int"),
        ([], "no images"),
        ([[np.zeros((8, 8, 3), np.uint8)]], "flat list"),
    ],
)
def test_bad_images_raise_input_error_naming_the_problem(processor, image, message):
    with pytest.raises(OneVisionInputError, match=message):
        processor(image)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"resize_mode": "stretch:448"}, "not one of native"),
        ({"resize_mode": "shorter-crop:450"}, "multiple of patch_size"),
        ({"resize_mode": "native", "max_pixels": 100}, "smaller than one 14 x 14 patch"),
        ({"resize_mode": "native", "min_pixels": 5000, "max_pixels": 1000}, "larger than max_pixels"),
        ({"resample": 1}, "resample=.* is not supported"),
        ({"max_pixels": "many"}, "max_pixels"),
        ({"do_pad": True}, "do_pad is not supported"),
        ({"size": {"shortest_edge": 448}, "resize_mode": "native"}, "either resize_mode or"),
    ],
)
def test_bad_settings_raise_input_error_naming_the_setting(processor, settings, message):
    with pytest.raises(OneVisionInputError, match=message):
        processor(smooth_image(30, 30), **settings)


def test_unknown_argument_raises_input_error(processor):
    with pytest.raises(OneVisionInputError, match="colour_jitter"):
        processor(smooth_image(30, 30), colour_jitter=0.5)


@pytest.mark.parametrize(
    "clip_keys",
    [
        {"size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224}},
        {"size": {"height": 448, "width": 448}},
        {"do_resize": False, "size": {"shortest_edge": 448}},
    ],
)
def test_clip_config_without_a_resize_mode_raises_config_error(tmp_path, clip_keys):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**RELEASED_PREPROCESSOR_CONFIG, **clip_keys}))
    with pytest.raises(OneVisionConfigError):
        OneVisionImageProcessor.from_pretrained(tmp_path)


def test_clip_size_argument_per_call_means_shorter_crop(processor):
    out = processor(smooth_image(100, 200), size={"shortest_edge": 224}, crop_size=224)
    assert out["image_grid_hw"].tolist() == [[16, 16]]


def test_the_channel_axis_is_inferred_as_transformers_infers_it():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    for image in (chw, torch.from_numpy(chw), torch.from_numpy(hwc), hwc):  # numpy (C, H, W), torch (H, W, C) too
        np.testing.assert_array_equal(load_image(image), hwc)
    np.testing.assert_array_equal(load_image(chw, channels_first=True), hwc)  # input_data_format decides


def test_do_convert_rgb_false_refuses_what_it_would_have_to_convert(processor):
    rgb = np.zeros((28, 28, 3), np.uint8)
    gray = Image.fromarray(np.zeros((28, 28), np.uint8))
    torch.testing.assert_close(processor(rgb, do_convert_rgb=False, return_tensors="pt")["pixel_values"],
                               processor(rgb, return_tensors="pt")["pixel_values"])
    for image, message in ((gray, "is a L image"), (np.zeros((28, 28, 4), np.uint8), "4 channel")):
        with pytest.raises(OneVisionInputError, match=message + ".*do_convert_rgb=True"):
            processor(image, do_convert_rgb=False)


def test_any_finite_rescale_factor_multiplies_the_pixels(processor):
    image = np.full((28, 28, 3), 51, np.uint8)
    out = processor(image, rescale_factor=-1.0, do_normalize=False, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(out, torch.full_like(out, -51.0))
    with pytest.raises(OneVisionInputError, match="finite, non-zero"):
        processor(image, rescale_factor=float("inf"))
