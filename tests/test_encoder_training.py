"""Training-readiness: gradient checkpointing, exact save/load, half-precision forward, torch.compile."""

import pytest
import torch
from safetensors.torch import load_file
from test_encoder_packed import mixed_samples, pack_samples

from onevision_hf import OneVisionEncoderModel

from encoder_helpers import make_model


def loss_and_grads(model, packed):
    model.zero_grad()
    out = model(**packed.to_kwargs())
    loss = out.last_hidden_state.square().mean() + out.pooler_output.sum()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients():
    model = make_model().train()
    packed = pack_samples(mixed_samples())
    loss, grads = loss_and_grads(model, packed)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    attention_calls = []
    model.encoder.layers[0].self_attn.register_forward_pre_hook(lambda *_: attention_calls.append(1))
    loss_ckpt, grads_ckpt = loss_and_grads(model, packed)
    assert len(attention_calls) == 2  # the layer really was recomputed in the backward pass
    torch.testing.assert_close(loss_ckpt, loss, atol=0, rtol=0)
    assert grads.keys() == grads_ckpt.keys() and len(grads) == len(list(model.parameters()))
    for name in grads:
        torch.testing.assert_close(grads_ckpt[name], grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_save_pretrained_round_trip_is_bit_exact(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    saved = load_file(tmp_path / "model.safetensors")
    assert saved.keys() == model.state_dict().keys()
    reloaded = OneVisionEncoderModel.from_pretrained(tmp_path).eval()
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    packed = pack_samples(mixed_samples())
    with torch.no_grad():
        assert torch.equal(model(**packed.to_kwargs()).pooler_output, reloaded(**packed.to_kwargs()).pooler_output)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_forward_runs_on_cpu(dtype):
    model = make_model().to(dtype)
    packed = pack_samples(mixed_samples())
    with torch.no_grad():
        half = model(**packed.to_kwargs())
        full = make_model()(**packed.to_kwargs())
    assert half.last_hidden_state.dtype == dtype and half.pooler_output.dtype == dtype
    assert torch.isfinite(half.last_hidden_state).all()
    torch.testing.assert_close(half.pooler_output.float(), full.pooler_output, atol=0.1, rtol=0.05)


def test_torch_compile_of_forward_matches_eager_mode():
    model = make_model()
    packed = pack_samples(mixed_samples())
    compiled = torch.compile(model, dynamic=True)
    with torch.no_grad():
        expected = model(**packed.to_kwargs()).last_hidden_state
        torch.testing.assert_close(compiled(**packed.to_kwargs()).last_hidden_state, expected, atol=1e-5, rtol=0)
