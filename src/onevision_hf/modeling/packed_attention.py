"""Bidirectional attention over a packed batch, through transformers' attention dispatch.

The encoder holds a batch as rows: q, k, v are (N, H, Dh), sample i owns rows ``cu_seqlens[i]:cu_seqlens[i+1]``
and attention never crosses a sample. The kernel is whatever ``config._attn_implementation`` names in
transformers' ``ALL_ATTENTION_FUNCTIONS`` (``eager`` is the model's own reference): ``sdpa``,
``flash_attention_2`` / ``_3`` / ``_4``, or any function registered with ``AttentionInterface.register``. It is
called with transformers' signature, ``kernel(module, query, key, value, attention_mask, scaling=, dropout=,
is_causal=False, **kwargs)`` on (B, H, L, Dh) tensors, and returns ((B, L, H, Dh), weights or None).

How the packed batch reaches the kernel (`attention_layout`), decided per call from what is known:

* ``varlen``: kernels that take ``cu_seqlens`` (every name with "flash" in it, as transformers' own packed
  vision towers decide): one call over (1, H, N, Dh) with ``cu_seq_lens_q/k`` and ``max_length_q/k``;
* ``torch_varlen``: ``sdpa`` on CUDA in fp16/bf16: PyTorch's own variable-length flash kernel,
  ``torch.nn.attention.varlen.varlen_attn``, once over all rows (`TORCH_VARLEN` says where it can run; where it
  cannot, a warning names why and the batch runs the next layout that applies);
* ``uniform``: all samples have the same length L, known from the input's shape (upstream-style input) or from
  ``cu_seqlens``: one call over (B, H, L, Dh), no mask;
* ``per_sample``: samples of different lengths outside torch.compile / torch.export: one call per sample on its
  own unpadded rows. `benchmarks/packed_attention_kernels.py` measured it the fastest exact option on CPU
  (a block-diagonal mask is 8-20x slower, padding 1.05-6.6x, nested tensors 12-40x; ``benchmarks/README.md``);
* ``masked``: samples of different lengths under torch.compile / torch.export (their lengths are data there),
  or when attention weights are asked for: one call over (1, H, N, Dh) with a block-diagonal additive mask.
  Exact, but quadratic in the whole batch.

Attention weights (``output_attentions=True``, from kernels that return them: ``eager``) come out as the kernel
computed them: (B, H, L, L) for the ``uniform`` layout, (1, H, N, N) block-diagonal for ``masked`` (weights
across samples are exactly zero).
"""

import importlib.util
import itertools
from dataclasses import dataclass, field

import torch
from transformers.utils import logging

from ..errors import AttentionBackendUnavailableError

logger = logging.get_logger(__name__)


def split_lengths(cu_seqlens: torch.Tensor) -> list[int]:
    return (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()


def is_tracing() -> bool:
    """Inside torch.compile or torch.export, where tensor values are not known while the graph is built."""
    return torch.compiler.is_compiling()


@dataclass
class PackedSequences:
    """How the N rows of a packed batch split into samples, in the forms the kernels and the pooling head use.

    ``lengths`` is None while tracing (the lengths are data there); ``shape_length`` is set when the input's
    shape says every sample has that many rows (upstream-style input).
    """

    cu_seqlens: torch.Tensor  # (B+1,) int32, on the model's device
    num_rows: int
    lengths: list[int] | None
    shape_length: int | None
    _block_mask: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def from_cu_seqlens(cls, cu_seqlens: torch.Tensor, num_rows: int, shape_length: int | None = None,
                        device: torch.device | None = None):
        lengths = None if is_tracing() else split_lengths(cu_seqlens)  # read where the caller keeps it
        return cls(cu_seqlens.to(device=device, dtype=torch.int32), num_rows, lengths, shape_length)

    @property
    def uniform_length(self) -> int | None:
        """Every sample's length, when all are equal and that is known (from the shape, or from ``lengths``)."""
        if self.shape_length is not None:
            return self.shape_length
        if self.lengths is not None and len(set(self.lengths)) == 1:
            return self.lengths[0]
        return None

    @property
    def num_samples(self) -> int:
        return self.cu_seqlens.shape[0] - 1

    @property
    def max_seqlen(self) -> int:
        """The longest sample; while tracing an upper bound (N), which varlen kernels accept."""
        if self.uniform_length is not None:
            return self.uniform_length
        return max(self.lengths) if self.lengths is not None else self.num_rows

    def sample_of_row(self) -> torch.Tensor:
        """(N,) int64 index of the sample each row belongs to (traceable: no data-dependent shapes)."""
        rows = torch.arange(self.num_rows, device=self.cu_seqlens.device, dtype=self.cu_seqlens.dtype)
        return torch.searchsorted(self.cu_seqlens, rows, right=True) - 1

    def block_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """(1, 1, N, N) additive mask: 0 within a sample, the dtype's minimum across samples (built once)."""
        if self._block_mask is None or self._block_mask.dtype != dtype:
            sample = self.sample_of_row()
            same = sample[:, None] == sample[None, :]
            mask = torch.zeros(same.shape, dtype=dtype, device=same.device).masked_fill(~same, torch.finfo(dtype).min)
            self._block_mask = mask[None, None]
        return self._block_mask

    def groups(self, group_tokens: int | None) -> list[tuple[int, int, "PackedSequences"]]:
        """Consecutive whole samples, a group closed before it would pass ``group_tokens`` rows (None: one group).

        A sample longer than ``group_tokens`` is a group of its own. Returns (first row, end row, the group's own
        `PackedSequences`) per group.
        """
        if group_tokens is None or self.lengths is None or len(self.lengths) == 1:
            return [(0, self.num_rows, self)]
        offsets = [0, *itertools.accumulate(self.lengths)]
        bounds = [0]  # sample indices where groups start
        for sample in range(1, len(offsets) - 1):
            if offsets[sample + 1] - offsets[bounds[-1]] > group_tokens:
                bounds.append(sample)
        bounds.append(len(offsets) - 1)
        if len(bounds) == 2:
            return [(0, self.num_rows, self)]
        return [
            (offsets[first], offsets[last], PackedSequences(
                self.cu_seqlens[first:last + 1] - offsets[first], offsets[last] - offsets[first],
                self.lengths[first:last], self.shape_length,
            ))
            for first, last in zip(bounds[:-1], bounds[1:])
        ]


@dataclass(frozen=True)
class VarlenKernel:
    """A variable-length attention kernel ``fn(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, scale=)`` on (N, H, Dh)
    rows, and where it can run."""

    function: object | None  # None: this torch has no such kernel
    device_types: tuple[str, ...]
    dtypes: tuple[torch.dtype, ...]
    max_head_dim: int
    min_capability: tuple[int, int] | None  # CUDA compute capability, None: not checked
    name: str

    def unavailable_reason(self, query: torch.Tensor, dropout: float) -> str | None:
        """Why the kernel cannot run on ``query`` (None: it can)."""
        if self.function is None:
            return (f"this torch ({torch.__version__}) has no {self.name} (it arrived in PyTorch 2.9; "
                    "torch.nn.attention.varlen)")
        if query.device.type not in self.device_types:
            return f"{self.name} runs on {'/'.join(self.device_types)}, the model is on {query.device.type}"
        if query.dtype not in self.dtypes:
            names = "/".join(str(dtype).removeprefix("torch.") for dtype in self.dtypes)
            return (f"{self.name} runs in {names}, the model is in {str(query.dtype).removeprefix('torch.')} "
                    "(load it with dtype=torch.bfloat16 to use it)")
        head_dim = query.shape[-1]
        if head_dim > self.max_head_dim or head_dim % 8:
            return f"{self.name} needs a head size <= {self.max_head_dim} and a multiple of 8, got {head_dim}"
        if dropout > 0:
            return f"{self.name} has no attention dropout (attention_dropout={dropout} while training)"
        if self.min_capability is not None and query.device.type == "cuda":
            capability = torch.cuda.get_device_capability(query.device)
            if capability < self.min_capability:
                return (f"{self.name} needs CUDA compute capability >= {self.min_capability[0]}."
                        f"{self.min_capability[1]}, this GPU has {capability[0]}.{capability[1]}")
        return None


def _torch_varlen_attn():
    if importlib.util.find_spec("torch.nn.attention.varlen") is None:
        return None
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


TORCH_VARLEN = VarlenKernel(
    function=_torch_varlen_attn(),
    device_types=("cuda",),
    dtypes=(torch.float16, torch.bfloat16),
    max_head_dim=256,
    min_capability=(8, 0),
    name="torch.nn.attention.varlen.varlen_attn",
)


def takes_cu_seqlens(attn_implementation: str) -> bool:
    """Kernels that run a packed batch in one call from ``cu_seqlens`` (transformers' flash convention)."""
    return "flash" in attn_implementation


def attention_layout(attn_implementation: str, query: torch.Tensor, sequences: PackedSequences,
                     output_attentions: bool, dropout: float) -> str:
    """The layout a call runs in (see the module docstring)."""
    if takes_cu_seqlens(attn_implementation):
        return "varlen"
    if attn_implementation == "sdpa" and not output_attentions:
        reason = TORCH_VARLEN.unavailable_reason(query, dropout)
        if reason is None:
            return "torch_varlen"
        if query.device.type != "cpu":
            logger.warning_once(f"sdpa: not running the packed batch in one varlen call because {reason}; "
                                "running it sample by sample with scaled_dot_product_attention instead.")
    if output_attentions:  # weights in the documented shape: (B, H, L, L) upstream style, else (1, H, N, N)
        return "uniform" if sequences.shape_length is not None else "masked"
    if sequences.uniform_length is not None:
        return "uniform"
    return "masked" if sequences.lengths is None else "per_sample"


def _batched(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """(N, H, Dh) rows of B equal-length samples -> (B, H, L, Dh)."""
    return tensor.view(batch, -1, *tensor.shape[1:]).transpose(1, 2)


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    """(N, H, Dh) -> (1, H, N, Dh)."""
    return tensor.transpose(0, 1).unsqueeze(0)


def packed_attention(kernel, module, query, key, value, sequences: PackedSequences, scaling: float,
                     dropout: float, output_attentions: bool = False):
    """Attention of every sample over its own rows: (N, H, Dh) q, k, v -> ((N, H, Dh), weights or None)."""
    implementation = module.config._attn_implementation or "sdpa"
    layout = attention_layout(implementation, query, sequences, output_attentions, dropout)
    common = {"scaling": scaling, "dropout": dropout, "is_causal": False}
    if layout == "torch_varlen":
        cu_seqlens, longest = sequences.cu_seqlens.to(query.device), sequences.max_seqlen
        output = TORCH_VARLEN.function(query, key, value, cu_seqlens, cu_seqlens, longest, longest, scale=scaling)
        return output, None
    if layout == "varlen":
        if implementation.startswith("flash_attention_") and query.device.type != "cuda":
            check_flash_attention_available(query.device)
        cu_seqlens, longest = sequences.cu_seqlens.to(query.device), sequences.max_seqlen
        output, weights = kernel(module, _whole(query), _whole(key), _whole(value), None,
                                 cu_seq_lens_q=cu_seqlens, cu_seq_lens_k=cu_seqlens,
                                 max_length_q=longest, max_length_k=longest, **common)
    elif layout == "uniform":
        batch = sequences.num_samples
        output, weights = kernel(module, _batched(query, batch), _batched(key, batch), _batched(value, batch),
                                 None, **common)
    elif layout == "masked":
        mask = sequences.block_mask(query.dtype).to(query.device)
        output, weights = kernel(module, _whole(query), _whole(key), _whole(value), mask, **common)
    else:
        outputs = [
            kernel(module, *(_whole(part) for part in parts), None, **common)[0]
            for parts in zip(*(t.split(sequences.lengths) for t in (query, key, value)))
        ]
        output, weights = (torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]), None
    return output.reshape(query.shape), weights  # kernels return (B, L, H, Dh)


def check_flash_attention_available(device: torch.device | None = None) -> None:
    """Raise `AttentionBackendUnavailableError` naming what is missing for ``flash_attention_2``."""
    alternatives = ("Use attn_implementation='sdpa' (the default: fused and exact; one varlen_attn call per batch "
                    "on CUDA in fp16/bf16) or 'eager' (the reference).")
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
