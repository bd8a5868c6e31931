"""OneVision-Encoder: a ViT with 3-D rotary positions that runs packed, variable-length patch sequences.

Every call runs in the packed layout (hidden states ``(N, D)``, samples delimited by ``cu_seqlens``);
upstream-style 4-D/5-D input is packed by `pack_upstream_inputs` first and unpacked to ``(B, L, D)`` at the end.
Module and parameter names are those of the published checkpoints.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import PreTrainedModel

from ..errors import OneVisionInputError
from .configuration_onevision_encoder import OneVisionEncoderConfig
from .packed_attention import check_flash_attention_available, packed_attention_function, split_lengths
from .packing import check_packed_inputs, pack_upstream_inputs
from .rotary import OneVisionRotaryEmbedding, apply_rotary


def make_norm(config: OneVisionEncoderConfig) -> nn.Module:
    if config.layer_norm_type == "rms_norm":
        return nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class OneVisionPatchEmbedding(nn.Module):
    """Embeds flattened (C, p, p) patch rows with the Conv2d weight of the published layout."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size,
            bias=False,
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:  # (N, C*p*p) -> (N, D)
        weight = self.patch_embedding.weight
        return F.linear(patches.to(weight.dtype), weight.reshape(weight.shape[0], -1))


class OneVisionMLP(nn.Module):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


class OneVisionAttention(nn.Module):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states, rotary, cu_seqlens, max_seqlen) -> torch.Tensor:
        heads = (hidden_states.shape[0], self.num_heads, self.head_dim)  # (N, H, Dh)
        query = apply_rotary(self.q_proj(hidden_states).view(heads), *rotary)
        key = apply_rotary(self.k_proj(hidden_states).view(heads), *rotary)
        value = self.v_proj(hidden_states).view(heads)
        attention = packed_attention_function(self.config._attn_implementation)
        dropout = self.config.attention_dropout if self.training else 0.0
        output = attention(query, key, value, cu_seqlens, max_seqlen, self.scaling, dropout)
        return self.out_proj(output.reshape(hidden_states.shape))


class OneVisionEncoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.layer_norm1 = make_norm(config)
        self.self_attn = OneVisionAttention(config)
        self.layer_norm2 = make_norm(config)
        self.mlp = OneVisionMLP(config)

    def forward(self, hidden_states, rotary, cu_seqlens, max_seqlen) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states), rotary, cu_seqlens, max_seqlen)
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class OneVisionEncoderStack(nn.Module):
    """The transformer layers over a packed batch.

    On CPU the batch runs in groups of whole consecutive samples of about ``cpu_group_tokens`` tokens, each
    group through every layer before the next: attention never crosses a sample, so this is exact, and it
    keeps every intermediate small enough to stay in cache and be recycled by the allocator instead of
    page-faulting hundreds of MB per layer (`benchmarks/encoder_throughput.py`). Small samples still share
    one group, so their matmuls stay large. On CUDA the whole batch is one group (flash-attn's varlen kernel).
    """

    cpu_group_tokens = 4096

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(OneVisionEncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states, rotary, cu_seqlens, max_seqlen, output_hidden_states: bool):
        group_tokens = self.cpu_group_tokens if hidden_states.device.type == "cpu" else None
        outputs, layer_outputs = [], []
        for start, end, group_cu_seqlens in sample_groups(cu_seqlens, group_tokens):
            states = hidden_states[start:end]
            group_rotary = tuple(part[start:end] for part in rotary)
            group_max = max(split_lengths(group_cu_seqlens))
            per_layer = [states] if output_hidden_states else None
            for layer in self.layers:
                states = layer(states, group_rotary, group_cu_seqlens, group_max)
                if output_hidden_states:
                    per_layer.append(states)
            outputs.append(states)
            layer_outputs.append(per_layer)
        all_hidden_states = None
        if output_hidden_states:
            all_hidden_states = tuple(_cat(list(states)) for states in zip(*layer_outputs))
        return _cat(outputs), all_hidden_states


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def sample_groups(cu_seqlens: torch.Tensor, group_tokens: int | None) -> list[tuple[int, int, torch.Tensor]]:
    """Consecutive whole samples, a group closed before it would pass ``group_tokens`` (None: one group of all).

    A sample longer than ``group_tokens`` is a group of its own. Returns (first row, end row, the group's own
    cu_seqlens starting at 0) per group.
    """
    offsets = cu_seqlens.tolist()
    if group_tokens is None:
        return [(0, offsets[-1], cu_seqlens)]
    bounds = [0]  # sample indices where groups start
    for sample in range(1, len(offsets) - 1):
        if offsets[sample + 1] - offsets[bounds[-1]] > group_tokens:
            bounds.append(sample)
    bounds.append(len(offsets) - 1)
    return [(offsets[first], offsets[last], cu_seqlens[first:last + 1] - offsets[first])
            for first, last in zip(bounds[:-1], bounds[1:])]


class OneVisionAttentionPoolingHead(nn.Module):
    """A learned probe attends over each sample's tokens (torch MultiheadAttention weights), then a residual MLP."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, config.hidden_size))
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = OneVisionMLP(config)

    def forward(self, hidden_states: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        """(N, D) packed tokens -> (B, D), one segment softmax per sample and head, no padding."""
        attention = self.attention
        num_heads, dim = attention.num_heads, attention.embed_dim
        head_dim = dim // num_heads
        w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attention.in_proj_bias.chunk(3)
        query = F.linear(self.probe.reshape(1, dim), w_q, b_q).view(num_heads, head_dim)
        key = F.linear(hidden_states, w_k, b_k).view(-1, num_heads, head_dim)  # (N, H, Dh)
        value = F.linear(hidden_states, w_v, b_v).view(-1, num_heads, head_dim)

        lengths = torch.as_tensor(split_lengths(cu_seqlens), device=hidden_states.device)
        num_samples = lengths.shape[0]
        sample_of_token = torch.repeat_interleave(torch.arange(num_samples, device=hidden_states.device), lengths)
        scores = (key * query).sum(-1) * head_dim**-0.5  # (N, H)
        token_rows = sample_of_token.unsqueeze(-1).expand_as(scores)
        sample_max = scores.new_full((num_samples, num_heads), float("-inf")).scatter_reduce(
            0, token_rows, scores, "amax"
        )
        weights = (scores - sample_max[sample_of_token]).exp()
        normaliser = scores.new_zeros(num_samples, num_heads).index_add(0, sample_of_token, weights)
        weights = weights / normaliser[sample_of_token]
        pooled = value.new_zeros(num_samples, num_heads, head_dim).index_add(
            0, sample_of_token, weights.unsqueeze(-1) * value
        )
        pooled = attention.out_proj(pooled.reshape(num_samples, dim))
        return pooled + self.mlp(self.norm(pooled))


@dataclass
class OneVisionPackedOutput(BaseModelOutputWithPooling):
    """`BaseModelOutputWithPooling` plus the packing of the tokens.

    In packed calls ``last_hidden_state`` and each ``hidden_states`` entry are (N, D) and ``cu_seqlens`` says
    which rows belong to which sample; in upstream-style calls they are (B, L, D). ``pooler_output`` is (B, D).
    """

    cu_seqlens: torch.Tensor | None = None


class OneVisionEncoderPreTrainedModel(PreTrainedModel):
    config_class = OneVisionEncoderConfig
    base_model_prefix = "onevision_encoder"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["OneVisionEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            nn.init.trunc_normal_(module.in_proj_weight, std=std)
            nn.init.zeros_(module.in_proj_bias)
        elif isinstance(module, OneVisionAttentionPoolingHead):
            nn.init.trunc_normal_(module.probe, std=std)

    def _check_and_adjust_attn_implementation(self, attn_implementation, is_init_check=False, **kwargs):
        if attn_implementation == "flash_attention_2":
            check_flash_attention_available()
        return super()._check_and_adjust_attn_implementation(attn_implementation, is_init_check, **kwargs)


class OneVisionEncoderModel(OneVisionEncoderPreTrainedModel):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__(config)
        self.embeddings = OneVisionPatchEmbedding(config)
        self.layernorm_pre = make_norm(config)
        self.rotary = OneVisionRotaryEmbedding(config)
        self.encoder = OneVisionEncoderStack(config)
        if config.use_head:
            self.layernorm_post = make_norm(config)
            self.head = OneVisionAttentionPoolingHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    def forward(
        self,
        pixel_values: torch.Tensor,
        visible_indices: torch.Tensor | None = None,
        patch_positions: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> OneVisionPackedOutput | tuple:
        r"""
        pixel_values: upstream style (B, C, H, W) or (B, C, T, H, W); packed style (N, C*p*p) with ``cu_seqlens``.
        visible_indices: upstream style only, (B, L) indices into the dense (t, h, w) token layout to keep.
        patch_positions: (B, L, 3) upstream style (default: the dense grid), (N, 3) packed style (required).
        cu_seqlens: (B+1,) int32 sample offsets of a packed call.
        """
        config = self.config
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.return_dict
        packed = cu_seqlens is not None
        if packed:
            if visible_indices is not None:
                raise OneVisionInputError(
                    "visible_indices is for upstream-style input; packed input (cu_seqlens) is already selected."
                )
            if not torch.compiler.is_compiling():
                check_packed_inputs(pixel_values, patch_positions, cu_seqlens,
                                    config.num_channels * config.patch_size**2)
        else:
            inputs = pack_upstream_inputs(pixel_values, config.patch_size, visible_indices, patch_positions,
                                          num_channels=config.num_channels)
            pixel_values, patch_positions, cu_seqlens = inputs.pixel_values, inputs.patch_positions, inputs.cu_seqlens

        max_seqlen = max(split_lengths(cu_seqlens))
        hidden_states = self.layernorm_pre(self.embeddings(pixel_values))
        rotary = self.rotary(patch_positions.to(hidden_states.device))
        hidden_states, all_hidden_states = self.encoder(
            hidden_states, rotary, cu_seqlens, max_seqlen, output_hidden_states
        )
        pooled = None
        if config.use_head:
            hidden_states = self.layernorm_post(hidden_states)
            pooled = self.head(hidden_states, cu_seqlens)

        if not packed:  # upstream style: every sample has the same length L
            batch = cu_seqlens.shape[0] - 1
            hidden_states = hidden_states.view(batch, -1, hidden_states.shape[-1])
            if all_hidden_states is not None:
                all_hidden_states = tuple(h.view(batch, -1, h.shape[-1]) for h in all_hidden_states)
        output = OneVisionPackedOutput(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            cu_seqlens=cu_seqlens if packed else None,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["OneVisionEncoderModel", "OneVisionEncoderPreTrainedModel", "OneVisionPackedOutput"]
