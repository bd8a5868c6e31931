"""Tiny OneVision-LLaVA models and packed visual inputs shared by the LLaVA tests."""

import torch
from transformers import AutoTokenizer, LlamaConfig, Qwen2Config, Qwen3Config

from onevision_hf.commands.make_tiny_llava import build_tiny_llava
from onevision_hf.modeling import PackedVisionInputs, cu_seqlens_from_lengths, pack_upstream_inputs

from paths import ASSETS, TINY_ENCODER

TINY_LLM = ASSETS / "tiny-llm"
TOKENIZER = AutoTokenizer.from_pretrained(TINY_LLM)
IMAGE_ID = TOKENIZER.convert_tokens_to_ids("<image>")
VIDEO_ID = TOKENIZER.convert_tokens_to_ids("<video>")
TEXT_SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, initializer_range=0.2)
TEXT_CONFIGS = {
    "qwen3": lambda: Qwen3Config(vocab_size=len(TOKENIZER), head_dim=16, **TEXT_SIZES),
    "qwen2": lambda: Qwen2Config(vocab_size=len(TOKENIZER), **TEXT_SIZES),
    "llama": lambda: LlamaConfig(vocab_size=len(TOKENIZER), head_dim=16, **TEXT_SIZES),
}


def tiny_llava(text_model_type="qwen3", projector_type="mlp2x_gelu", seed=0):
    """The bundled tiny encoder + a random tiny LM (initializer_range 0.2 so greedy tokens vary)."""
    return build_tiny_llava(TINY_ENCODER, TEXT_CONFIGS[text_model_type](), TOKENIZER, projector_type, seed)


def random_image(grid_h: int, grid_w: int, seed: int = 0) -> PackedVisionInputs:
    """A dense image of grid_h x grid_w patches."""
    generator = torch.Generator().manual_seed(seed)
    return pack_upstream_inputs(torch.randn(1, 3, 14 * grid_h, 14 * grid_w, generator=generator), 14)


def sparse_video(positions: list[tuple[int, int, int]], seed: int = 0) -> PackedVisionInputs:
    """One video sample holding only the patches at the given (t, h, w) positions."""
    generator = torch.Generator().manual_seed(seed)
    return PackedVisionInputs(
        pixel_values=torch.randn(len(positions), 3 * 14 * 14, generator=generator),
        patch_positions=torch.tensor(positions, dtype=torch.long),
        cu_seqlens=cu_seqlens_from_lengths([len(positions)]),
    )


def codec_like_positions(frames: int, grid: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """A full first frame, then a random ~third of the patches of each later frame (sorted by (t, h, w))."""
    generator = torch.Generator().manual_seed(seed)
    positions = [(0, h, w) for h in range(grid) for w in range(grid)]
    for t in range(1, frames):
        keep = torch.rand(grid * grid, generator=generator) < 0.35
        positions += [(t, i // grid, i % grid) for i in keep.nonzero().flatten().tolist()]
    return positions


def prompt_ids(*pieces) -> list[int]:
    """Token ids from pieces: a str is tokenized, an (id, count) pair is repeated."""
    ids = []
    for piece in pieces:
        ids += TOKENIZER.encode(piece, add_special_tokens=False) if isinstance(piece, str) else [piece[0]] * piece[1]
    return ids


def left_pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), rows padded on the left with the pad token."""
    width = max(map(len, rows))
    ids = torch.tensor([[TOKENIZER.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask
