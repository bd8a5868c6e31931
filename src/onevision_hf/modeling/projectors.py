"""Projectors from packed encoder features to LLM input embeddings, and the one count of LLM tokens they yield.

Both projectors map packed patch features ``(N, D_vision)`` delimited by ``cu_seqlens`` to packed LLM tokens
``(M, D_text)`` delimited by token offsets, sample by sample:

* ``mlp2x_gelu``: Linear-GELU-Linear on every patch, one LLM token per patch in packed order (the released
  layout: ``mm_projector.0`` / ``mm_projector.2`` map one to one onto ``mlp.linear_1`` / ``mlp.linear_2``).
* ``spatial_merge``: LayerNorm on every patch, then the patches of each 2x2 block ``(t, h // 2, w // 2)`` of a
  sample are concatenated into one ``4 * D_vision`` vector (slot order (0, 0), (0, 1), (1, 0), (1, 1) in
  ``(h % 2, w % 2)``, as the released ``SpatialMergeProjector``), then Linear-GELU-Linear. Blocks are found from
  ``patch_positions``, never from a dense layout, so codec-selected sparse patches merge correctly. **A block with
  missing members** (a sparse selection, an odd grid edge) keeps its present patches in their slots and has the
  missing slots of the concatenated vector set to zero: every block with at least one patch yields exactly one
  token. Tokens come out sorted by ``(t, h // 2, w // 2)`` within each sample. A dense image with an even grid
  gets exactly a quarter of its patches; video selected in 2x2 units likewise.

`num_visual_tokens` is the only place that says how many LLM tokens a sample yields; the processor expands
``<image>`` / ``<video>`` placeholders with it and the model checks its scatter against the projector's output.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN

from ..errors import OneVisionInputError

PROJECTOR_TYPES = ("mlp2x_gelu", "spatial_merge")
MERGE_SIZE = 2  # side of the spatial block merged into one token
MERGE_SLOTS = MERGE_SIZE * MERGE_SIZE


@dataclass
class MergeBlocks:
    """How the patches of a packed batch group into 2x2 blocks."""

    block_of_patch: torch.Tensor  # (N,) index of the patch's block, blocks sorted by (sample, t, h // 2, w // 2)
    slot_of_patch: torch.Tensor  # (N,) slot in the block: (h % 2) * 2 + w % 2
    blocks_per_sample: torch.Tensor  # (B,) number of blocks, i.e. of LLM tokens, of each sample

    @property
    def num_blocks(self) -> int:
        return int(self.blocks_per_sample.sum())


def _sample_of_patch(cu_seqlens: torch.Tensor) -> torch.Tensor:
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    return torch.repeat_interleave(torch.arange(lengths.shape[0], device=cu_seqlens.device), lengths)


def spatial_merge_blocks(patch_positions: torch.Tensor, cu_seqlens: torch.Tensor) -> MergeBlocks:
    """Group packed patches into the 2x2 blocks ``(t, h // 2, w // 2)`` of each sample, from their positions."""
    positions = torch.as_tensor(patch_positions).long()
    cu_seqlens = torch.as_tensor(cu_seqlens, device=positions.device)
    sample = _sample_of_patch(cu_seqlens)
    t, h, w = positions.unbind(-1)
    keys = torch.stack((sample, t, h // MERGE_SIZE, w // MERGE_SIZE), dim=-1)  # (N, 4)
    blocks, block_of_patch = torch.unique(keys, dim=0, return_inverse=True)  # rows sorted lexicographically
    slot_of_patch = (h % MERGE_SIZE) * MERGE_SIZE + w % MERGE_SIZE
    occupancy = torch.bincount(block_of_patch * MERGE_SLOTS + slot_of_patch, minlength=blocks.shape[0] * MERGE_SLOTS)
    if occupancy.numel() and int(occupancy.max()) > 1:
        slot = int(occupancy.argmax())
        sample_index, *block = blocks[slot // MERGE_SLOTS].tolist()
        raise OneVisionInputError(
            f"sample {sample_index} has two patches at the same (t, h, w) position (block (t, h // 2, w // 2) = "
            f"{tuple(block)}); every patch of a sample needs its own position."
        )
    blocks_per_sample = torch.bincount(blocks[:, 0], minlength=cu_seqlens.shape[0] - 1)
    return MergeBlocks(block_of_patch, slot_of_patch, blocks_per_sample)


def num_visual_tokens(patch_positions: torch.Tensor, cu_seqlens: torch.Tensor, projector_type: str) -> torch.Tensor:
    """(B,) number of LLM tokens each packed visual sample yields through a projector of ``projector_type``."""
    cu_seqlens = torch.as_tensor(cu_seqlens)
    if projector_type == "mlp2x_gelu":
        return (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    if projector_type == "spatial_merge":
        return spatial_merge_blocks(patch_positions, cu_seqlens).blocks_per_sample
    raise OneVisionInputError(f"projector_type must be one of {PROJECTOR_TYPES}, got {projector_type!r}.")


def token_offsets(tokens_per_sample: torch.Tensor) -> torch.Tensor:
    """(B,) token counts -> (B+1,) int64 offsets of each sample's tokens in the packed projector output."""
    return nn.functional.pad(torch.cumsum(tokens_per_sample, 0), (1, 0))


class ProjectorMLP(nn.Module):
    """Linear-activation-Linear on every row."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, hidden_act: str):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden_features)
        self.act = ACT2FN[hidden_act]
        self.linear_2 = nn.Linear(hidden_features, out_features)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(rows)))


class OneVisionMlpProjector(nn.Module):
    """``mlp2x_gelu``: one LLM token per patch."""

    def __init__(self, vision_hidden_size: int, text_hidden_size: int, hidden_act: str):
        super().__init__()
        self.mlp = ProjectorMLP(vision_hidden_size, text_hidden_size, text_hidden_size, hidden_act)

    def forward(self, features: torch.Tensor, patch_positions: torch.Tensor, cu_seqlens: torch.Tensor):
        """(N, D_vision) patch features -> ((N, D_text) tokens, (B+1,) token offsets)."""
        return self.mlp(features), cu_seqlens.long()


class OneVisionSpatialMergeProjector(nn.Module):
    """``spatial_merge``: LayerNorm, 2x2 merge by position (missing slots zero), Linear-GELU-Linear."""

    def __init__(self, vision_hidden_size: int, text_hidden_size: int, hidden_act: str, layer_norm_eps: float):
        super().__init__()
        merged_size = vision_hidden_size * MERGE_SLOTS
        self.ln_q = nn.LayerNorm(vision_hidden_size, eps=layer_norm_eps)
        self.mlp = ProjectorMLP(merged_size, merged_size, text_hidden_size, hidden_act)

    def forward(self, features: torch.Tensor, patch_positions: torch.Tensor, cu_seqlens: torch.Tensor):
        """(N, D_vision) patch features -> ((G, D_text) block tokens, (B+1,) token offsets)."""
        blocks = spatial_merge_blocks(patch_positions, cu_seqlens)
        features = self.ln_q(features)
        slots = features.new_zeros(blocks.num_blocks * MERGE_SLOTS, features.shape[-1])  # (G*4, D), zero = missing
        slots = slots.index_copy(0, blocks.block_of_patch * MERGE_SLOTS + blocks.slot_of_patch, features)
        merged = slots.view(blocks.num_blocks, MERGE_SLOTS * features.shape[-1])  # (G, 4*D)
        return self.mlp(merged), token_offsets(blocks.blocks_per_sample)


def build_projector(config) -> nn.Module:
    """The projector named by ``config.projector_type`` of a `OneVisionLlavaConfig`."""
    vision_size, text_size = config.vision_config.hidden_size, config.text_config.hidden_size
    if config.projector_type == "spatial_merge":
        return OneVisionSpatialMergeProjector(
            vision_size, text_size, config.projector_hidden_act, config.vision_config.layer_norm_eps
        )
    return OneVisionMlpProjector(vision_size, text_size, config.projector_hidden_act)


__all__ = [
    "PROJECTOR_TYPES",
    "MergeBlocks",
    "OneVisionMlpProjector",
    "OneVisionSpatialMergeProjector",
    "ProjectorMLP",
    "build_projector",
    "num_visual_tokens",
    "spatial_merge_blocks",
    "token_offsets",
]
