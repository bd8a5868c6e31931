"""Small encoders and inputs shared by the encoder tests."""

import torch

from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel, pack_upstream_inputs
from onevision_hf.modeling.packing import PackedVisionInputs, concat_packed

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=14)


def make_model(attn_implementation="sdpa", seed=0, **overrides) -> OneVisionEncoderModel:
    torch.manual_seed(seed)
    config = OneVisionEncoderConfig(**{**TINY, **overrides}, attn_implementation=attn_implementation)
    model = OneVisionEncoderModel(config).eval()
    with torch.no_grad():  # random, non-trivial norms and probe so every parameter matters in comparisons
        for name, param in model.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "pre.weight", "post.weight")):
                param.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                param.normal_(std=0.05)
    return model


def state_dict_of(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
