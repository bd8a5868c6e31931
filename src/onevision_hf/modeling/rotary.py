"""The 3-D (t, h, w) rotary position embedding the published weights were trained with."""

import torch
from torch import nn

from .configuration_onevision_encoder import OneVisionEncoderConfig

# Sixteenths of the rotary half-dimension given to each axis (t : h : w = 4 : 6 : 6).
AXIS_SIXTEENTHS = (4, 6, 6)


def axis_inverse_frequencies(size: int, theta: float) -> torch.Tensor:
    """One axis' inverse frequencies ``1 / theta ** (arange(n) / n)``."""
    return 1.0 / (theta ** (torch.arange(size, dtype=torch.float32) / size))


class OneVisionRotaryEmbedding(nn.Module):
    """(N, 3) integer positions -> (cos, sin), each (N, 1, head_dim), for `apply_rotary`."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        unit = config.head_dim // 2 // 16
        self.axis_sizes = [unit * sixteenths for sixteenths in AXIS_SIXTEENTHS]
        self.theta = config.rope_theta

    def forward(self, patch_positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Built per call (a few hundred floats): no buffer to lose when weights are loaded on the meta device.
        device = patch_positions.device
        inv_freq = torch.cat([axis_inverse_frequencies(n, self.theta) for n in self.axis_sizes]).to(device)
        axis_of_freq = torch.cat([torch.full((n,), axis) for axis, n in enumerate(self.axis_sizes)]).to(device)
        angles = patch_positions.to(torch.float32)[:, axis_of_freq] * inv_freq  # (N, head_dim / 2)
        angles = torch.cat((angles, angles), dim=-1).unsqueeze(1)  # (N, 1, head_dim)
        return angles.cos(), angles.sin()


def rotate_interleaved(x: torch.Tensor) -> torch.Tensor:
    """rot(x)[2i] = -x[2i+1], rot(x)[2i+1] = x[2i]."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((-odd, even), dim=-1).flatten(-2)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (N, H, Dh) rotated by the angles of its positions, computed in fp32 with the fp32 tables and returned in
    x's dtype (for fp32 models exactly the released computation; in bf16/fp16 it avoids rounding the tables)."""
    rotated = x.float() * cos + rotate_interleaved(x.float()) * sin
    return rotated.to(x.dtype)
