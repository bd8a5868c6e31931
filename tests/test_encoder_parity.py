"""The encoder reproduces the released code's numbers (golden fixtures) and the spec's reference forward."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

import onevision_hf  # noqa: F401  (registers the Auto classes)
from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel

from encoder_helpers import make_model
from paths import TINY_ENCODER
from reference_encoder import reference_forward

CASES = sorted(TINY_ENCODER.glob("case_*.safetensors"))
ATOL = 1e-5


def load_case(path):
    tensors = load_file(path)
    inputs = {k.removeprefix("input."): v for k, v in tensors.items() if k.startswith("input.")}
    expected = {k.removeprefix("expected."): v for k, v in tensors.items() if k.startswith("expected.")}
    return inputs, expected


def test_fixture_cases_are_bundled():
    assert [c.name for c in CASES] == [
        "case_image_batch.safetensors", "case_video_dense.safetensors", "case_video_positions.safetensors"
    ]


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_published_checkpoint_reproduces_released_goldens(case, attn_implementation):
    model = AutoModel.from_pretrained(TINY_ENCODER, attn_implementation=attn_implementation).eval()
    assert isinstance(model, OneVisionEncoderModel)
    inputs, expected = load_case(case)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    torch.testing.assert_close(out.last_hidden_state, expected["last_hidden_state"], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.pooler_output, expected["pooler_output"], atol=ATOL, rtol=0)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    for i, hidden in enumerate(out.hidden_states):
        torch.testing.assert_close(hidden, expected[f"hidden_states.{i}"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_reference_implementation_matches_released_goldens(case):
    """Validates the test-side reference forward that the remaining tests compare against."""
    params = load_file(TINY_ENCODER / "model.safetensors")
    config = OneVisionEncoderConfig.from_pretrained(TINY_ENCODER)
    inputs, expected = load_case(case)
    with torch.no_grad():
        last, pooled, _ = reference_forward(params, config, **inputs)
    torch.testing.assert_close(last, expected["last_hidden_state"], atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, expected["pooler_output"], atol=ATOL, rtol=0)


def assert_matches_reference(model, **inputs):
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        last, pooled, hidden_states = reference_forward(model.state_dict(), model.config, **inputs)
    torch.testing.assert_close(out.last_hidden_state, last, atol=ATOL, rtol=0)
    for ours, theirs in zip(out.hidden_states, hidden_states, strict=True):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    if pooled is None:
        assert out.pooler_output is None
    else:
        torch.testing.assert_close(out.pooler_output, pooled, atol=ATOL, rtol=0)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_sparse_visible_indices_with_batch_of_two(attn_implementation):
    model = make_model(attn_implementation)
    torch.manual_seed(1)
    video = torch.randn(2, 3, 6, 42, 56)  # 6 frames of 3 x 4 patches = 72 dense tokens per sample
    visible = torch.stack([torch.randperm(72)[:19].sort().values, torch.randperm(72)[:19].sort().values])
    assert_matches_reference(model, pixel_values=video, visible_indices=visible)


def test_explicit_irregular_positions():
    model = make_model()
    torch.manual_seed(2)
    video = torch.randn(1, 3, 5, 28, 42)
    positions = torch.stack([torch.randint(0, 64, (30,)), torch.randint(0, 40, (30,)), torch.randint(0, 90, (30,))], -1)
    visible = torch.randperm(30)[:23].unsqueeze(0)
    assert_matches_reference(model, pixel_values=video, visible_indices=visible,
                             patch_positions=positions[None, :23])


def test_non_square_native_resolution_image():
    model = make_model()
    torch.manual_seed(3)
    assert_matches_reference(model, pixel_values=torch.randn(2, 3, 14 * 3, 14 * 7))


def test_rms_norm_config():
    model = make_model(layer_norm_type="rms_norm")
    assert not any(name.endswith("layer_norm1.bias") for name in model.state_dict())
    torch.manual_seed(4)
    assert_matches_reference(model, pixel_values=torch.randn(1, 3, 2, 28, 42))


def test_config_without_head_returns_no_pooling_and_unnormalised_states():
    model = make_model(use_head=False)
    assert not any(name.startswith(("head.", "layernorm_post.")) for name in model.state_dict())
    torch.manual_seed(5)
    assert_matches_reference(model, pixel_values=torch.randn(2, 3, 28, 28))
