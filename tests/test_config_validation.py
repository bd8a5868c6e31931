"""Configs are validated where they enter: impossible values and values that would allocate without bound are
refused with `OneVisionConfigError` naming the key (and, for bounds, the estimate and how to raise the bound)."""

import pytest

from onevision_hf import (
    OneVisionConfigError,
    OneVisionEncoderConfig,
    OneVisionImageProcessor,
    OneVisionInputError,
    OneVisionVideoProcessor,
)
from onevision_hf.modeling.configuration_onevision_llava import OneVisionLlavaConfig


@pytest.mark.parametrize("kwargs, message", [
    ({"num_hidden_layers": 0}, "num_hidden_layers must be at least 1"),
    ({"num_attention_heads": 0}, "num_attention_heads must be at least 1"),
    ({"intermediate_size": -1}, "intermediate_size must be at least 1"),
    ({"layer_norm_eps": 0.0}, "layer_norm_eps must be positive"),
    ({"hidden_act": "nope"}, "hidden_act 'nope'"),
    ({"attention_dropout": 1.5}, "attention_dropout must lie in"),
    ({"num_hidden_layers": 100000}, r"1\.26e\+12 encoder parameters.*ONEVISION_HF_MAX_ENCODER_PARAMETERS"),
])
def test_encoder_config_refuses_impossible_or_unbounded_values(kwargs, message):
    with pytest.raises(OneVisionConfigError, match=message):
        OneVisionEncoderConfig(**kwargs)


def test_parameter_bound_is_overridable_by_environment(monkeypatch):
    monkeypatch.setenv("ONEVISION_HF_MAX_ENCODER_PARAMETERS", "2e12")
    assert OneVisionEncoderConfig(num_hidden_layers=100000).num_hidden_layers == 100000


@pytest.mark.parametrize("kwargs, message", [
    ({"keep_first_frame": "false"}, "keep_first_frame must be true or false"),
    ({"num_frames": 8.5}, "num_frames must be an integer"),
    ({"patch_size": "14"}, "patch_size must be an integer"),
    ({"image_std": [0, 0, 0]}, "image_std must be positive"),
    ({"normalization_percentile": 0}, r"normalization_percentile must lie in \(0, 100\]"),
    ({"normalization_percentile": 101}, r"normalization_percentile must lie in \(0, 100\]"),
    ({"min_pixels": 1e9}, "min_pixels must be a positive integer"),
    ({"min_pixels": 10**9}, r"1e\+09 canvas pixels.*ONEVISION_HF_MAX_CANVAS_PIXELS"),
    ({"patch_size": 10000}, r"1e\+08 canvas pixels"),
])
def test_video_processor_refuses_bad_or_unbounded_values(kwargs, message):
    with pytest.raises(OneVisionInputError, match=message):  # OneVisionConfigError, or the normalisation check's
        OneVisionVideoProcessor(**kwargs)


def test_image_processor_refuses_an_unbounded_canvas():
    with pytest.raises(OneVisionConfigError, match="1e\\+09 canvas pixels"):
        OneVisionImageProcessor(resize_mode="native", min_pixels=10**9)


@pytest.mark.parametrize("kwargs, message", [
    ({"projector_hidden_act": "nope"}, "projector_hidden_act 'nope'"),
    ({"image_token_id": -5}, "image_token_id must be a vocabulary id"),
])
def test_llava_config_refuses_bad_values(kwargs, message):
    with pytest.raises(OneVisionConfigError, match=message):
        OneVisionLlavaConfig(**kwargs)


@pytest.mark.parametrize("config_class, kwargs, message", [
    (OneVisionEncoderConfig, {"use_head": "false"}, "'use_head' expected bool"),
    (OneVisionEncoderConfig, {"num_hidden_layers": 2.5}, "'num_hidden_layers' expected int"),
    (OneVisionLlavaConfig, {"image_token_id": "x"}, "'image_token_id'"),
])
def test_config_fields_of_the_wrong_type_raise_the_typed_config_error(config_class, kwargs, message):
    from huggingface_hub.errors import StrictDataclassFieldValidationError

    with pytest.raises(OneVisionConfigError, match=message) as raised:
        config_class(**kwargs)
    assert isinstance(raised.value, StrictDataclassFieldValidationError)  # what huggingface_hub's users catch
