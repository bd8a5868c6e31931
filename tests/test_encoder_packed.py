"""Packed (cu_seqlens) input: one call on a mixed batch equals per-sample upstream calls, on every backend."""

import pytest
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from onevision_hf import AttentionBackendUnavailableError, OneVisionEncoderModel, pack_upstream_inputs
from onevision_hf.modeling import packed_attention
from onevision_hf.modeling.modeling_onevision_encoder import sample_groups
from onevision_hf.modeling.packing import PackedVisionInputs, concat_packed

from encoder_helpers import make_model
from paths import TINY_ENCODER

ATOL = 1e-5


def mixed_samples(patch_size=14):
    """A non-square image, a dense 4-frame video and a sparse video of 37 irregular patches (upstream style)."""
    torch.manual_seed(0)
    image = {"pixel_values": torch.randn(1, 3, 3 * patch_size, 5 * patch_size)}
    dense_video = {"pixel_values": torch.randn(1, 3, 4, 2 * patch_size, 3 * patch_size)}
    sparse = torch.randn(1, 3, 8, 4 * patch_size, 4 * patch_size)  # 128 dense patches
    visible = torch.randperm(128)[:37].sort().values.unsqueeze(0)
    positions = torch.stack([torch.randint(0, 64, (37,)), torch.randint(0, 4, (37,)), torch.randint(0, 4, (37,))], -1)
    sparse_video = {"pixel_values": sparse, "visible_indices": visible, "patch_positions": positions[None]}
    return [image, dense_video, sparse_video]


def pack_samples(samples, patch_size=14) -> PackedVisionInputs:
    return concat_packed([
        pack_upstream_inputs(s["pixel_values"], patch_size, s.get("visible_indices"), s.get("patch_positions"))
        for s in samples
    ])


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
    groups = sample_groups(torch.tensor([0, 5, 8, 29, 30, 32, 41], dtype=torch.int32), group_tokens=8)
    assert [(start, end, cu.tolist()) for start, end, cu in groups] == [
        (0, 8, [0, 5, 8]), (8, 29, [0, 21]), (29, 32, [0, 1, 3]), (32, 41, [0, 9])
    ]
    assert [(s, e) for s, e, _ in sample_groups(torch.tensor([0, 5, 9], dtype=torch.int32), None)] == [(0, 9)]


def test_pack_upstream_inputs_lays_out_frames_then_rows():
    video = torch.arange(2 * 3 * 28 * 42, dtype=torch.float32).reshape(1, 3, 2, 28, 42)
    packed = pack_upstream_inputs(video, 14)
    assert packed.pixel_values.shape == (2 * 2 * 3, 3 * 14 * 14)
    assert packed.patch_positions.tolist()[:4] == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0]]
    assert packed.patch_positions.tolist()[6] == [1, 0, 0]
    # row 7 is frame 1, patch (0, 1): its channel-0 block is video[0, 0, 1, 0:14, 14:28] flattened
    torch.testing.assert_close(packed.pixel_values[7, : 14 * 14], video[0, 0, 1, :14, 14:28].flatten())
    assert packed.cu_seqlens.dtype == torch.int32 and packed.cu_seqlens.tolist() == [0, 12]


def reference_flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                                     softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                                     alibi_slopes=None, deterministic=False, return_attn_probs=False,
                                     block_table=None):
    """Pure-torch stand-in with flash-attn's documented signature and semantics ((total, H, Dh) rows)."""
    assert cu_seqlens_q.dtype == torch.int32 and cu_seqlens_k.dtype == torch.int32
    assert max_seqlen_q == int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max())
    assert q.dim() == 3 and not causal and dropout_p == 0.0
    scale = softmax_scale if softmax_scale is not None else q.shape[-1] ** -0.5
    out = torch.empty_like(q)
    for start, end in zip(cu_seqlens_q[:-1].tolist(), cu_seqlens_q[1:].tolist()):
        scores = torch.einsum("qhd,khd->hqk", q[start:end], k[start:end]) * scale
        out[start:end] = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v[start:end])
    return out


def test_flash_attention_path_calls_varlen_kernel_without_padding(monkeypatch):
    calls = []

    def recording_kernel(*args, **kwargs):
        calls.append(args[0].shape)
        return reference_flash_attn_varlen_func(*args, **kwargs)

    monkeypatch.setattr(packed_attention, "flash_attn_varlen_func", lambda: recording_kernel)
    monkeypatch.setattr(packed_attention, "check_flash_attention_available", lambda device=None: None)  # CPU here
    model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation="eager").eval()
    model.config._attn_implementation = "flash_attention_2"
    assert_packed_equals_per_sample(model, mixed_samples())
    packed_rows = pack_samples(mixed_samples()).pixel_values.shape[0]
    assert calls and calls[0] == (packed_rows, 2, 32)  # one call on all packed rows, never padded


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
