"""Bad input gets a typed error that names the problem, raised where the value enters."""

import pytest
import torch
from test_encoder_packed import mixed_samples, pack_samples

from onevision_hf import OneVisionConfigError, OneVisionEncoderConfig, OneVisionInputError

from encoder_helpers import make_model


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture()
def packed():
    return pack_samples(mixed_samples()).to_kwargs()


def test_image_size_not_a_multiple_of_patch_size(model):
    with pytest.raises(OneVisionInputError, match=r"30 x 28.*multiples of patch_size 14"):
        model(pixel_values=torch.randn(1, 3, 30, 28))


def test_pixel_values_of_wrong_rank(model):
    with pytest.raises(OneVisionInputError, match=r"\(B, C, H, W\).*got shape \(3, 28, 28\)"):
        model(pixel_values=torch.randn(3, 28, 28))


def test_positions_whose_length_disagrees_with_the_tokens(model, packed):
    packed["patch_positions"] = packed["patch_positions"][:-1]
    with pytest.raises(OneVisionInputError, match="patch_positions has .* rows but there are .* patches"):
        model(**packed)


def test_upstream_positions_whose_length_disagrees_with_visible_indices(model):
    with pytest.raises(OneVisionInputError, match=r"patch_positions has \(1, 5\).*1 samples of 4 tokens"):
        model(pixel_values=torch.randn(1, 3, 2, 28, 28), visible_indices=torch.tensor([[0, 1, 2, 3]]),
              patch_positions=torch.zeros(1, 5, 3, dtype=torch.long))


def test_visible_indices_out_of_range(model):
    with pytest.raises(OneVisionInputError, match=r"visible_indices must lie in \[0, 8\)"):
        model(pixel_values=torch.randn(1, 3, 2, 28, 28), visible_indices=torch.tensor([[0, 8]]))


@pytest.mark.parametrize("cu_seqlens, message", [
    ([0, 40, 30, None], "strictly increasing"),
    ([0, 20, 20, None], "strictly increasing"),
    ([1, 20, 40, None], "must start at 0"),
    ([0, 20, 40, -1], "ends at"),
])
def test_cu_seqlens_not_monotonic_or_not_ending_at_n(model, packed, cu_seqlens, message):
    total = packed["pixel_values"].shape[0]
    values = [total if v is None else total - 1 if v == -1 else v for v in cu_seqlens]
    packed["cu_seqlens"] = torch.tensor(values, dtype=torch.int32)
    with pytest.raises(OneVisionInputError, match=message):
        model(**packed)


def test_float_cu_seqlens(model, packed):
    packed["cu_seqlens"] = packed["cu_seqlens"].float()
    with pytest.raises(OneVisionInputError, match="cu_seqlens must be an integer tensor"):
        model(**packed)


def test_negative_positions(model, packed):
    packed["patch_positions"][3, 1] = -2
    with pytest.raises(OneVisionInputError, match="non-negative"):
        model(**packed)


def test_non_integer_positions(model, packed):
    packed["patch_positions"] = packed["patch_positions"].float() + 0.5
    with pytest.raises(OneVisionInputError, match="patch_positions must be an integer tensor"):
        model(**packed)


def test_packed_rows_of_the_wrong_width(model, packed):
    packed["pixel_values"] = packed["pixel_values"][:, :100]
    with pytest.raises(OneVisionInputError, match=r"\(N, 588\)"):
        model(**packed)


def test_head_dim_not_a_multiple_of_32():
    with pytest.raises(OneVisionConfigError, match="head_dim .* = 48 must be a multiple of 32"):
        OneVisionEncoderConfig(hidden_size=96, num_attention_heads=2)


def test_unknown_layer_norm_type():
    with pytest.raises(OneVisionConfigError, match="layer_norm_type"):
        OneVisionEncoderConfig(layer_norm_type="batch_norm")


@pytest.mark.parametrize("positions, message", [
    (torch.tensor([[[0, 0, -1], [0, 0, 1], [0, 1, 0], [0, 1, 1]]]), "non-negative"),
    (torch.zeros(1, 4, 3), "integer tensor"),
], ids=["negative", "float"])
def test_upstream_style_positions_are_validated_as_packed_ones_are(model, positions, message):
    with pytest.raises(OneVisionInputError, match=f"patch_positions must be.*{message}"):
        model(pixel_values=torch.randn(1, 3, 28, 28), patch_positions=positions)


@pytest.mark.parametrize("pixel_values, message", [
    (torch.randn(1, 4, 28, 28), r"4 channels .*num_channels=3"),
    (torch.randn(0, 3, 28, 28), "is empty"),
    (torch.randn(1, 3, 0, 28, 28), "is empty"),
    (torch.randn(1, 3, 28, 28).tolist(), "must be a torch.Tensor, got list"),
    (torch.randn(1, 3, 28, 28).numpy(), "must be a torch.Tensor, got ndarray"),
], ids=["channels", "zero-batch", "zero-frames", "list", "numpy"])
def test_bad_pixel_values_raise_input_error_naming_the_argument(model, pixel_values, message):
    with pytest.raises(OneVisionInputError, match=f"pixel_values .*{message}"):
        model(pixel_values=pixel_values)


def test_packed_arguments_that_are_not_tensors_are_named(model, packed):
    with pytest.raises(OneVisionInputError, match="cu_seqlens must be a torch.Tensor, got list"):
        model(pixel_values=packed["pixel_values"], patch_positions=packed["patch_positions"],
              cu_seqlens=packed["cu_seqlens"].tolist())
