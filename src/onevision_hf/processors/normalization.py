"""Pixel normalisation of the published models (CLIP mean/std) and the packed patch rows built from it."""

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def normalize_patch_rows(patches: np.ndarray | torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD,
                         rescale_factor: float = 1 / 255) -> torch.Tensor:
    """(N, C, p, p) uint8 patches -> (N, C*p*p) float32 rows, ``(x * rescale - mean) / std`` per channel.

    The row layout is (C, p_h, p_w), the one the encoder's Conv2d patch weight embeds.
    """
    # numpy, not torch: this small elementwise job is ~30x slower under torch's intra-op threads on a busy CPU.
    patches = patches.numpy() if isinstance(patches, torch.Tensor) else np.asarray(patches)
    if patches.ndim != 4:
        raise ValueError(f"expected (N, C, p, p) patches, got shape {patches.shape}")
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    rows = (patches.astype(np.float32) * np.float32(rescale_factor) - mean) / std
    return torch.from_numpy(rows.reshape(rows.shape[0], -1))
