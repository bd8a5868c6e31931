"""The CUDA path, checked on CPU: with `sdpa`, a packed batch runs in ONE call of PyTorch's variable-length kernel
(`torch.nn.attention.varlen.varlen_attn`, CUDA only) per layer. A stand-in with that function's exact signature
and semantics, computed sample by sample with the reference, takes its place here, so the packing arguments the
CUDA kernel receives are checked on every run; where the kernel cannot run, the fallback says why."""

import dataclasses
import inspect

import pytest
import torch

from onevision_hf.modeling import packed_attention
from onevision_hf.modeling.packed_attention import TORCH_VARLEN

from encoder_helpers import make_model, mixed_samples, pack_samples


def reference_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,
                          window_size=(-1, -1), enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):
    """``varlen_attn``'s contract: (T, H, D) rows, int32 cumulative offsets, the longest lengths, bidirectional
    attention within each sequence when ``window_size == (-1, -1)``; -> (T, H, D)."""
    assert query.dim() == 3 and cu_seq_q.dtype == torch.int32 and torch.equal(cu_seq_q, cu_seq_k)
    lengths = (cu_seq_q[1:] - cu_seq_q[:-1]).tolist()
    assert max_q == max_k == max(lengths) and tuple(window_size) == (-1, -1) and block_table is None
    output = torch.empty_like(query)
    for start, end in zip(cu_seq_q[:-1].tolist(), cu_seq_q[1:].tolist()):
        scores = torch.einsum("qhd,khd->hqk", query[start:end].float(), key[start:end].float()) * scale
        output[start:end] = torch.einsum("hqk,khd->qhd", scores.softmax(-1), value[start:end].float()).to(query.dtype)
    return output


@pytest.fixture
def varlen_calls(monkeypatch):
    """TORCH_VARLEN with the stand-in, allowed on CPU in fp32 / bf16; records (rows, cu_seqlens, max) per call."""
    calls = []

    def recording(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, **kwargs):
        calls.append((query.shape[0], cu_seq_q.tolist(), max_q))
        return reference_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, **kwargs)

    stand_in = dataclasses.replace(TORCH_VARLEN, function=recording, device_types=("cpu",),
                                   dtypes=(torch.float32, torch.bfloat16), min_capability=None)
    monkeypatch.setattr(packed_attention, "TORCH_VARLEN", stand_in)
    return calls


def test_the_stand_in_has_the_signature_of_torchs_varlen_attn():
    if TORCH_VARLEN.function is None:
        pytest.skip("this torch has no torch.nn.attention.varlen")
    def parameters(function):  # names, kinds and defaults (annotations aside)
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert parameters(reference_varlen_attn) == parameters(TORCH_VARLEN.function)


def test_sdpa_runs_each_layer_as_one_varlen_call_over_the_whole_packed_batch(varlen_calls):
    packed = pack_samples(mixed_samples())
    sdpa, eager = make_model("sdpa"), make_model("eager")
    with torch.no_grad():
        varlen_out = sdpa(**packed.to_kwargs(), output_hidden_states=True)
        eager_out = eager(**packed.to_kwargs(), output_hidden_states=True)
    rows, lengths = packed.pixel_values.shape[0], packed.cu_seqlens.tolist()
    assert varlen_calls == [(rows, lengths, 37)] * sdpa.config.num_hidden_layers  # no per-sample loop, no padding
    torch.testing.assert_close(varlen_out.last_hidden_state, eager_out.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(varlen_out.pooler_output, eager_out.pooler_output, atol=1e-5, rtol=0)


def test_the_varlen_path_trains_gradients_equal_to_eager(varlen_calls):
    packed = pack_samples(mixed_samples())
    gradients = {}
    for implementation in ("sdpa", "eager"):
        model = make_model(implementation).train()
        model(**packed.to_kwargs()).pooler_output.square().sum().backward()
        gradients[implementation] = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert varlen_calls and gradients["sdpa"].keys() == gradients["eager"].keys()
    for name, gradient in gradients["sdpa"].items():
        torch.testing.assert_close(gradient, gradients["eager"][name], atol=1e-5, rtol=1e-4, msg=name)


def test_bf16_model_moves_fp32_cpu_inputs_to_its_dtype_and_keeps_the_rotary_tables_fp32(varlen_calls):
    packed = pack_samples(mixed_samples())  # fp32 pixels, int64 positions, int32 cu_seqlens
    model = make_model("sdpa").to(torch.bfloat16)
    reference = make_model("eager")
    with torch.no_grad():
        cos, _ = model.rotary(packed.patch_positions)
        output = model(**packed.to_kwargs()).pooler_output
        expected = reference(**packed.to_kwargs()).pooler_output
    assert cos.dtype == torch.float32 and output.dtype == torch.bfloat16 and varlen_calls
    scale = expected.abs().max()
    torch.testing.assert_close(output.float(), expected, atol=2e-2 * float(scale), rtol=0)


@pytest.mark.parametrize("change, query, dropout, reason", [
    ({"function": None}, torch.zeros(4, 2, 32), 0.0, "has no torch.nn.attention.varlen.varlen_attn"),
    ({}, torch.zeros(4, 2, 32), 0.0, "runs on cuda, the model is on cpu"),
    ({"device_types": ("cpu",)}, torch.zeros(4, 2, 32), 0.0, "runs in float16/bfloat16, the model is in float32"),
    ({"device_types": ("cpu",)}, torch.zeros(4, 2, 36, dtype=torch.bfloat16), 0.0, "multiple of 8, got 36"),
    ({"device_types": ("cpu",)}, torch.zeros(4, 2, 32, dtype=torch.bfloat16), 0.1, "no attention dropout"),
])
def test_where_the_varlen_kernel_cannot_run_the_reason_is_named(change, query, dropout, reason):
    kernel = dataclasses.replace(TORCH_VARLEN, **{"function": TORCH_VARLEN.function or reference_varlen_attn, **change})
    assert reason in kernel.unavailable_reason(query, dropout)


def test_cpu_keeps_the_per_sample_path_without_a_warning(caplog):
    packed = pack_samples(mixed_samples())
    sequences = packed_attention.PackedSequences.from_cu_seqlens(packed.cu_seqlens, packed.pixel_values.shape[0])
    with caplog.at_level("WARNING"):
        layout = packed_attention.attention_layout("sdpa", torch.zeros(4, 2, 32), sequences, False, 0.0)
    assert layout == "per_sample" and not caplog.text
