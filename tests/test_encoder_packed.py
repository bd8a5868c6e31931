"""Packed (cu_seqlens) input: one call on a mixed batch equals per-sample upstream calls, on every backend."""

import pytest
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from onevision_hf import AttentionBackendUnavailableError, OneVisionEncoderModel, pack_upstream_inputs
from onevision_hf.modeling import packed_attention
from onevision_hf.modeling.packed_attention import PackedSequences
from onevision_hf.modeling.rotary import apply_rotary

from encoder_helpers import make_model, mixed_samples, pack_samples
from paths import TINY_ENCODER

ATOL = 1e-5


def assert_packed_equals_per_sample(model, samples):
    packed = pack_samples(samples, model.config.patch_size)
    with torch.no_grad():
        out = model(**packed.to_kwargs(), output_hidden_states=True)
        singles = [model(**s, output_hidden_states=True) for s in samples]
    assert out.last_hidden_state.shape == (packed.pixel_values.shape[0], model.config.hidden_size)
    assert out.pooler_output.shape == (len(samples), model.config.hidden_size)
    torch.testing.assert_close(out.cu_seqlens, packed.cu_seqlens)
    torch.testing.assert_close(out.last_hidden_state, torch.cat([s.last_hidden_state[0] for s in singles]),
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(out.pooler_output, torch.cat([s.pooler_output for s in singles]), atol=ATOL, rtol=0)
    for layer, hidden in enumerate(out.hidden_states):
        torch.testing.assert_close(hidden, torch.cat([s.hidden_states[layer][0] for s in singles]), atol=ATOL, rtol=0)


@pytest.mark.parametrize("group_tokens", [4096, 1], ids=["one-cpu-group", "a-group-per-sample"])
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_packed_batch_equals_per_sample_calls(attn_implementation, group_tokens, monkeypatch):
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation=attn_implementation).eval()
    monkeypatch.setattr(model.encoder, "cpu_group_tokens", group_tokens)
    assert_packed_equals_per_sample(model, mixed_samples())


def test_samples_are_grouped_whole_up_to_the_group_size():
    cu_seqlens = torch.tensor([0, 5, 8, 29, 30, 32, 41], dtype=torch.int32)
    groups = PackedSequences.from_cu_seqlens(cu_seqlens, 41).groups(group_tokens=8)
    assert [(start, end, group.cu_seqlens.tolist(), group.lengths) for start, end, group in groups] == [
        (0, 8, [0, 5, 8], [5, 3]), (8, 29, [0, 21], [21]), (29, 32, [0, 1, 3], [1, 2]), (32, 41, [0, 9], [9])
    ]
    two = PackedSequences.from_cu_seqlens(torch.tensor([0, 5, 9], dtype=torch.int32), 9)
    assert [(start, end) for start, end, _ in two.groups(None)] == [(0, 9)]


def test_pack_upstream_inputs_lays_out_frames_then_rows():
    video = torch.arange(2 * 3 * 28 * 42, dtype=torch.float32).reshape(1, 3, 2, 28, 42)
    packed = pack_upstream_inputs(video, 14)
    assert packed.pixel_values.shape == (2 * 2 * 3, 3 * 14 * 14)
    assert packed.patch_positions.tolist()[:4] == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0]]
    assert packed.patch_positions.tolist()[6] == [1, 0, 0]
    # row 7 is frame 1, patch (0, 1): its channel-0 block is video[0, 0, 1, 0:14, 14:28] flattened
    torch.testing.assert_close(packed.pixel_values[7, : 14 * 14], video[0, 0, 1, :14, 14:28].flatten())
    assert packed.cu_seqlens.dtype == torch.int32 and packed.cu_seqlens.tolist() == [0, 12]


def reference_varlen_interface(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                               is_causal=None, cu_seq_lens_q=None, cu_seq_lens_k=None, max_length_q=None,
                               max_length_k=None, **kwargs):
    """Stand-in for transformers' flash-attention interface on a packed batch: (1, H, N, Dh) q, k, v with
    ``cu_seq_lens_q/k`` and ``max_length_q/k`` -> ((1, N, H, Dh), None), computed per sample with the reference."""
    assert query.shape[0] == 1 and attention_mask is None and not is_causal and dropout == 0.0
    assert cu_seq_lens_q.dtype == torch.int32 and torch.equal(cu_seq_lens_q, cu_seq_lens_k)
    assert max_length_q == max_length_k == int((cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]).max())
    output = torch.empty_like(query)
    for start, end in zip(cu_seq_lens_q[:-1].tolist(), cu_seq_lens_q[1:].tolist()):
        scores = query[..., start:end, :] @ key[..., start:end, :].transpose(-1, -2) * scaling
        output[..., start:end, :] = scores.softmax(-1) @ value[..., start:end, :]
    return output.transpose(1, 2), None


def recording(kernel, calls):
    def record(module, query, *args, **kwargs):
        calls.append((tuple(query.shape), kwargs.get("cu_seq_lens_q")))
        return kernel(module, query, *args, **kwargs)

    return record


def test_flash_attention_2_runs_the_whole_packed_batch_in_one_varlen_call(monkeypatch):
    calls = []
    monkeypatch.setitem(AttentionInterface._global_mapping, "flash_attention_2",
                        recording(reference_varlen_interface, calls))
    monkeypatch.setattr(packed_attention, "check_flash_attention_available", lambda device=None: None)  # CPU here
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation="eager").eval()
    model.config._attn_implementation = "flash_attention_2"
    assert_packed_equals_per_sample(model, mixed_samples())
    packed = pack_samples(mixed_samples())
    rows = packed.pixel_values.shape[0]
    whole_batch_calls = [cu for shape, cu in calls if shape == (1, 2, rows, 32)]
    assert len(whole_batch_calls) == model.config.num_hidden_layers  # one call per layer, never padded
    assert whole_batch_calls[0].tolist() == packed.cu_seqlens.tolist()


def test_registered_kernels_named_flash_get_the_packed_batch_with_cu_seqlens():
    calls = []
    AttentionInterface.register("onevision_test_flash_varlen", recording(reference_varlen_interface, calls))
    model = make_model("sdpa")
    model.config._attn_implementation = "onevision_test_flash_varlen"  # how hub flash kernels are dispatched
    assert_packed_equals_per_sample(model, mixed_samples())
    assert any(cu is not None for _, cu in calls)


def test_flash_attention_without_flash_attn_names_alternatives():
    with pytest.raises(AttentionBackendUnavailableError, match="flash-attn.*sdpa.*eager"):
        OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation="flash_attention_2")


def test_flash_attention_on_cpu_tensors_is_refused_before_the_kernel_runs():
    model = make_model("eager")
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(AttentionBackendUnavailableError, match="flash-attn|CUDA"):
        model(**pack_samples(mixed_samples()).to_kwargs())


def test_other_registered_attention_runs_through_transformers_interface():
    AttentionInterface.register("onevision_test_sdpa", sdpa_attention_forward)
    model = make_model("sdpa")
    model.config._attn_implementation = "onevision_test_sdpa"
    assert_packed_equals_per_sample(model, mixed_samples())


def test_set_attn_implementation_switches_the_kernel_of_a_loaded_model():
    calls = []
    AttentionInterface.register("onevision_test_recorded_sdpa", recording(sdpa_attention_forward, calls))
    model = make_model("eager")
    packed = pack_samples(mixed_samples()).to_kwargs()
    with torch.no_grad():
        eager = model(**packed).last_hidden_state
        model.set_attn_implementation("onevision_test_recorded_sdpa")
        assert model.config._attn_implementation == "onevision_test_recorded_sdpa" and not calls
        recorded = model(**packed).last_hidden_state
    assert len(calls) == 3 * model.config.num_hidden_layers  # one call per sample and layer
    torch.testing.assert_close(recorded, eager, atol=ATOL, rtol=0)


def reference_attention_weights(model, sample, layer: int) -> torch.Tensor:
    """(1, H, L, L) softmax(q k^T / sqrt(Dh)) of one upstream-style sample at ``layer``, recomputed by hand."""
    with torch.no_grad():
        states = model(**sample, output_hidden_states=True).hidden_states[layer][0]  # (L, D)
        packed = pack_upstream_inputs(sample["pixel_values"], 14, sample.get("visible_indices"),
                                      sample.get("patch_positions"))
        attention = model.encoder.layers[layer].self_attn
        cos, sin = model.rotary(packed.patch_positions)
        normed = model.encoder.layers[layer].layer_norm1(states)
        heads = (states.shape[0], attention.num_heads, attention.head_dim)
        query = apply_rotary(attention.q_proj(normed).view(heads), cos, sin)
        key = apply_rotary(attention.k_proj(normed).view(heads), cos, sin)
        scores = torch.einsum("qhd,khd->hqk", query, key) * attention.scaling
    return scores.softmax(-1)[None]


def test_eager_output_attentions_are_per_sample_softmax_weights_in_the_documented_shapes():
    model = make_model("eager")
    samples = mixed_samples()
    with torch.no_grad():
        upstream = model(**samples[1], output_attentions=True)  # a dense 4-frame video: (1, H, 24, 24)
        packed_inputs = pack_samples(samples)
        packed = model(**packed_inputs.to_kwargs(), output_attentions=True)
    assert len(upstream.attentions) == len(packed.attentions) == model.config.num_hidden_layers
    assert upstream.attentions[0].shape == (1, 2, 24, 24)
    torch.testing.assert_close(upstream.attentions[1], reference_attention_weights(model, samples[1], 1),
                               atol=ATOL, rtol=0)
    rows = packed_inputs.pixel_values.shape[0]
    bounds = packed_inputs.cu_seqlens.tolist()
    for layer in range(model.config.num_hidden_layers):
        weights = packed.attentions[layer]
        assert weights.shape == (1, 2, rows, rows)
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, rows), atol=ATOL, rtol=0)
        for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
            block = weights[..., start:end, start:end]
            torch.testing.assert_close(block, reference_attention_weights(model, samples[index], layer),
                                       atol=ATOL, rtol=0)
            outside = torch.cat([weights[..., start:end, :start], weights[..., start:end, end:]], dim=-1)
            assert outside.numel() and float(outside.abs().max()) == 0.0  # nothing across samples
