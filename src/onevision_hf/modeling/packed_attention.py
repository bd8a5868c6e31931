"""Bidirectional attention over packed sequences: q, k, v are (N, H, Dh), samples delimited by ``cu_seqlens``.

Every kernel here has one signature, ``fn(query, key, value, cu_seqlens, max_seqlen, scaling, dropout) -> (N, H, Dh)``,
and attention never crosses a sample boundary:

* ``eager``: the reference (matmul, softmax, matmul) one sample at a time;
* ``sdpa``: PyTorch's fused SDPA, one call per sample. `benchmarks/packed_attention_kernels.py` measured it
  against one call with a block-diagonal mask (8-20x slower: a mask drops CPU SDPA to its math path), a
  padded batch with a key mask (1.05-6.6x slower) and nested jagged tensors (12-40x slower): the per-sample
  calls on unpadded rows are the fastest exact option on CPU (``benchmarks/README.md``);
* ``flash_attention_2``: flash-attn's ``flash_attn_varlen_func`` on the packed rows (CUDA only, never padded).

Any other name registered in transformers' ``AttentionInterface`` runs one sample at a time through it.
"""

import importlib.util

import torch
import torch.nn.functional as F
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ..errors import AttentionBackendUnavailableError

SUPPORTED_BACKENDS = ("eager", "sdpa", "flash_attention_2")


def split_lengths(cu_seqlens: torch.Tensor) -> list[int]:
    return (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()


def _run_per_sample(kernel, query, key, value, cu_seqlens):
    """Apply ``kernel`` to each sample's (1, H, L, Dh) q, k, v; return (N, H, Dh)."""
    outputs = [
        kernel(*(t.transpose(0, 1).unsqueeze(0) for t in qkv)).squeeze(0).transpose(0, 1)
        for qkv in zip(*(t.split(split_lengths(cu_seqlens)) for t in (query, key, value)))
    ]
    return torch.cat(outputs) if len(outputs) > 1 else outputs[0]


def eager_packed_attention(query, key, value, cu_seqlens, max_seqlen, scaling, dropout=0.0):
    def kernel(q, k, v):
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scaling, dim=-1, dtype=torch.float32)
        weights = F.dropout(weights.to(q.dtype), p=dropout, training=dropout > 0)
        return torch.matmul(weights, v)

    return _run_per_sample(kernel, query, key, value, cu_seqlens)


def sdpa_packed_attention(query, key, value, cu_seqlens, max_seqlen, scaling, dropout=0.0):
    def kernel(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling)

    return _run_per_sample(kernel, query, key, value, cu_seqlens)


def flash_attn_varlen_func():
    """flash-attn's varlen kernel, imported on first use (the package is an optional, CUDA-only extra)."""
    from flash_attn import flash_attn_varlen_func as kernel

    return kernel


def flash_packed_attention(query, key, value, cu_seqlens, max_seqlen, scaling, dropout=0.0):
    if query.device.type != "cuda":
        check_flash_attention_available(query.device)
    cu_seqlens = cu_seqlens.to(torch.int32)
    return flash_attn_varlen_func()(
        query, key, value,
        cu_seqlens_q=cu_seqlens, cu_seqlens_k=cu_seqlens,
        max_seqlen_q=max_seqlen, max_seqlen_k=max_seqlen,
        dropout_p=dropout, softmax_scale=scaling, causal=False,
    )


PACKED_ATTENTION_FUNCTIONS = {
    "eager": eager_packed_attention,
    "sdpa": sdpa_packed_attention,
    "flash_attention_2": flash_packed_attention,
}


def transformers_interface_attention(name: str):
    """A kernel from transformers' ``AttentionInterface`` run one sample at a time in (1, H, L, Dh) layout."""
    interface = ALL_ATTENTION_FUNCTIONS[name]

    def packed(query, key, value, cu_seqlens, max_seqlen, scaling, dropout=0.0):
        outputs = []
        for q, k, v in zip(*(t.split(split_lengths(cu_seqlens)) for t in (query, key, value))):
            q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
            out, _ = interface(None, q, k, v, attention_mask=None, scaling=scaling, dropout=dropout, is_causal=False)
            outputs.append(out.squeeze(0))  # interfaces return (1, L, H, Dh)
        return torch.cat(outputs)

    return packed


def packed_attention_function(attn_implementation: str | None):
    name = attn_implementation or "sdpa"
    if name in PACKED_ATTENTION_FUNCTIONS:
        return PACKED_ATTENTION_FUNCTIONS[name]
    return transformers_interface_attention(name)


def check_flash_attention_available(device: torch.device | None = None) -> None:
    """Raise `AttentionBackendUnavailableError` naming what is missing for ``flash_attention_2``."""
    alternatives = "Use attn_implementation='sdpa' (the default: fused, packed, exact) or 'eager' (the reference)."
    if importlib.util.find_spec("flash_attn") is None:
        raise AttentionBackendUnavailableError(
            "attn_implementation='flash_attention_2' needs the flash-attn package (pip install "
            f"'onevision-hf[gpu]', CUDA only), which is not installed. {alternatives}"
        )
    if not torch.cuda.is_available() or (device is not None and device.type != "cuda"):
        raise AttentionBackendUnavailableError(
            "attn_implementation='flash_attention_2' runs only on a CUDA device, and "
            f"{'no CUDA device is available' if not torch.cuda.is_available() else f'the model is on {device}'}. "
            f"{alternatives}"
        )
