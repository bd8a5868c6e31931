"""Small encoders and inputs shared by the encoder tests."""

import torch

from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel

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
