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
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.utils import logging

from ..errors import OneVisionInputError
from ..hub_code import HubCodeMixin
from .configuration_onevision_encoder import OneVisionEncoderConfig
from .packed_attention import PackedSequences, check_flash_attention_available, is_tracing, packed_attention
from .packing import check_packed_inputs, pack_upstream_inputs
from .rotary import OneVisionRotaryEmbedding, apply_rotary

logger = logging.get_logger(__name__)


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

    def forward(self, patches: torch.Tensor) -> torch.Tensor:  # (N, C*p*p) -> (N, D), on the weight's device/dtype
        weight = self.patch_embedding.weight
        return F.linear(patches.to(weight.device, weight.dtype), weight.reshape(weight.shape[0], -1))


class OneVisionMLP(nn.Module):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """The reference kernel, in transformers' attention-interface form: (B, H, L, Dh) q, k, v and an optional
    additive mask -> ((B, L, H, Dh) output, (B, H, L, L) weights)."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class OneVisionAttention(nn.Module):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states, rotary, sequences: PackedSequences, output_attentions: bool = False):
        heads = (hidden_states.shape[0], self.num_heads, self.head_dim)  # (N, H, Dh)
        query = apply_rotary(self.q_proj(hidden_states).view(heads), *rotary)
        key = apply_rotary(self.k_proj(hidden_states).view(heads), *rotary)
        value = self.v_proj(hidden_states).view(heads)
        kernel = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation or "sdpa",
                                                       eager_attention_forward)
        dropout = self.config.attention_dropout if self.training else 0.0
        output, weights = packed_attention(kernel, self, query, key, value, sequences, self.scaling, dropout,
                                           output_attentions)
        return self.out_proj(output.reshape(hidden_states.shape)), weights


class OneVisionEncoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.layer_norm1 = make_norm(config)
        self.self_attn = OneVisionAttention(config)
        self.layer_norm2 = make_norm(config)
        self.mlp = OneVisionMLP(config)

    def forward(self, hidden_states, rotary, sequences: PackedSequences, output_attentions: bool = False):
        attended, weights = self.self_attn(self.layer_norm1(hidden_states), rotary, sequences, output_attentions)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.layer_norm2(hidden_states)), weights


class OneVisionEncoderStack(nn.Module):
    """The transformer layers over a packed batch.

    On CPU the batch runs in groups of whole consecutive samples of about ``cpu_group_tokens`` tokens, each
    group through every layer before the next: attention never crosses a sample, so this is exact, and it
    keeps every intermediate small enough to stay in cache and be recycled by the allocator instead of
    page-faulting hundreds of MB per layer (`benchmarks/encoder_throughput.py`). Small samples still share
    one group, so their matmuls stay large. The whole batch is one group on other devices, under torch.compile /
    torch.export (sample lengths are data there) and when attention weights are returned.
    """

    cpu_group_tokens = 4096

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(OneVisionEncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states, rotary, sequences: PackedSequences, output_hidden_states: bool,
                output_attentions: bool):
        grouped = hidden_states.device.type == "cpu" and not output_attentions
        outputs, layer_outputs, attentions = [], [], []
        for start, end, group in sequences.groups(self.cpu_group_tokens if grouped else None):
            states = hidden_states[start:end]
            group_rotary = tuple(part[start:end] for part in rotary)
            per_layer = []
            for layer in self.layers:
                if output_hidden_states:
                    states = _record(per_layer, states, sequences.shape_length)
                states, weights = layer(states, group_rotary, group, output_attentions)
                if output_attentions and weights is not None:
                    attentions.append(weights)
            if output_hidden_states:
                states = _record(per_layer, states, sequences.shape_length)
            outputs.append(states)
            layer_outputs.append(per_layer)
        all_hidden_states = None
        if output_hidden_states:
            all_hidden_states = tuple(_cat(list(states)) for states in zip(*layer_outputs))
        if output_attentions and not attentions:
            logger.warning_once(
                f"attn_implementation={self.layers[0].self_attn.config._attn_implementation!r} returns no attention "
                "weights; use attn_implementation='eager' for output_attentions=True."
            )
        return _cat(outputs), all_hidden_states, (tuple(attentions) if output_attentions else None)


def _record(hidden_states: list[torch.Tensor], states: torch.Tensor, sample_length: int | None) -> torch.Tensor:
    """Append ``states`` (N, D) to ``hidden_states``, as (B, L, D) when every sample has ``sample_length`` rows, and
    continue from the recorded tensor, so that gradients reach what the caller is given."""
    if sample_length is not None:
        shaped = states.view(-1, sample_length, states.shape[-1])  # (B, L, D)
        hidden_states.append(shaped)
        return shaped.view(-1, states.shape[-1])
    hidden_states.append(states)
    return states


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


class OneVisionAttentionPoolingHead(nn.Module):
    """A learned probe attends over each sample's tokens (torch MultiheadAttention weights), then a residual MLP."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, config.hidden_size))
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = OneVisionMLP(config)

    def forward(self, hidden_states: torch.Tensor, sequences: PackedSequences) -> torch.Tensor:
        """(N, D) packed tokens -> (B, D), one segment softmax per sample and head (in fp32), no padding."""
        attention = self.attention
        num_heads, dim = attention.num_heads, attention.embed_dim
        head_dim = dim // num_heads
        w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attention.in_proj_bias.chunk(3)
        query = F.linear(self.probe.reshape(1, dim), w_q, b_q).view(num_heads, head_dim)
        key = F.linear(hidden_states, w_k, b_k).view(-1, num_heads, head_dim)  # (N, H, Dh)
        value = F.linear(hidden_states, w_v, b_v).view(-1, num_heads, head_dim)

        num_samples = sequences.num_samples
        sample_of_token = sequences.sample_of_row().to(hidden_states.device)  # (N,)
        scores = (key * query).float().sum(-1) * head_dim**-0.5  # (N, H)
        token_rows = sample_of_token.unsqueeze(-1).expand_as(scores)
        sample_max = scores.new_full((num_samples, num_heads), float("-inf")).scatter_reduce(
            0, token_rows, scores, "amax"
        )
        weights = (scores - sample_max[sample_of_token]).exp()
        normaliser = scores.new_zeros(num_samples, num_heads).index_add(0, sample_of_token, weights)
        weights = weights / normaliser[sample_of_token]
        pooled = scores.new_zeros(num_samples, num_heads, head_dim).index_add(
            0, sample_of_token, weights.unsqueeze(-1) * value.float()
        )
        pooled = attention.out_proj(pooled.reshape(num_samples, dim).to(value.dtype))
        return pooled + self.mlp(self.norm(pooled))


@dataclass
class OneVisionPackedOutput(BaseModelOutputWithPooling):
    """`BaseModelOutputWithPooling` plus the packing of the tokens.

    In packed calls ``last_hidden_state`` and each ``hidden_states`` entry are (N, D) and ``cu_seqlens`` says
    which rows belong to which sample; in upstream-style calls they are (B, L, D). ``pooler_output`` is (B, D).
    ``attentions`` (``output_attentions=True``, eager): one entry per layer, (B, H, L, L) in upstream-style calls,
    (1, H, N, N) in packed calls (block-diagonal: row i holds token i's weights over the whole batch, zero
    outside its own sample).
    """

    cu_seqlens: torch.Tensor | None = None


class OneVisionEncoderPreTrainedModel(HubCodeMixin, PreTrainedModel):
    config_class = OneVisionEncoderConfig
    base_model_prefix = "onevision_encoder"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["OneVisionEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False
    _supports_attention_backend = True

    def hub_auto_map(self) -> dict:
        """What a hub folder of this model names (`hub_code`): its config and its class."""
        return {"config.json": {"AutoConfig": type(self.config), type(self)._auto_class: type(self)}}

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
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> OneVisionPackedOutput | tuple:
        r"""
        pixel_values: upstream style (B, C, H, W) or (B, C, T, H, W); packed style (N, C*p*p) with ``cu_seqlens``.
        visible_indices: upstream style only, (B, L) indices into the dense (t, h, w) token layout to keep.
        patch_positions: (B, L, 3) upstream style (default: the dense grid), (N, 3) packed style (required).
        cu_seqlens: (B+1,) int32 sample offsets of a packed call.
        output_attentions: return every layer's attention weights (eager only; shapes in `OneVisionPackedOutput`).
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.return_dict
        packed = cu_seqlens is not None
        if packed:
            if visible_indices is not None:
                raise OneVisionInputError(
                    "visible_indices is for upstream-style input; packed input (cu_seqlens) is already selected."
                )
            if not is_tracing():
                check_packed_inputs(pixel_values, patch_positions, cu_seqlens,
                                    config.num_channels * config.patch_size**2)
            given_cu_seqlens, shape_length = cu_seqlens, None
        else:
            inputs = pack_upstream_inputs(pixel_values, config.patch_size, visible_indices, patch_positions,
                                          num_channels=config.num_channels)
            pixel_values, patch_positions, cu_seqlens = inputs.pixel_values, inputs.patch_positions, inputs.cu_seqlens
            shape_length = pixel_values.shape[0] // (cu_seqlens.shape[0] - 1)  # every sample has L tokens

        hidden_states = self.layernorm_pre(self.embeddings(pixel_values))
        sequences = PackedSequences.from_cu_seqlens(cu_seqlens, hidden_states.shape[0], shape_length,
                                                    device=hidden_states.device)
        rotary = self.rotary(patch_positions.to(hidden_states.device))
        hidden_states, all_hidden_states, attentions = self.encoder(
            hidden_states, rotary, sequences, output_hidden_states, output_attentions
        )
        pooled = None
        if config.use_head:
            hidden_states = self.layernorm_post(hidden_states)
            pooled = self.head(hidden_states, sequences)

        if not packed:  # upstream style: every sample has the same length L
            batch = sequences.num_samples
            hidden_states = hidden_states.view(batch, -1, hidden_states.shape[-1])  # hidden_states: (B, L, D) already
        output = OneVisionPackedOutput(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            attentions=attentions,
            cu_seqlens=given_cu_seqlens if packed else None,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["OneVisionEncoderModel", "OneVisionEncoderPreTrainedModel", "OneVisionPackedOutput"]
