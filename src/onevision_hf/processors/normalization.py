"""Pixel normalisation of the published models (CLIP mean/std) and the packed patch rows built from it."""

import math

import numpy as np
import torch

from ..errors import OneVisionInputError

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
    rows = patches.astype(np.float32)  # then in place: one array of the rows' size, not four
    rows *= np.float32(rescale_factor)
    rows -= mean
    rows /= std
    return torch.from_numpy(rows.reshape(rows.shape[0], -1))


def check_normalization(do_rescale, rescale_factor, do_normalize, image_mean, image_std) -> None:
    """Raise `OneVisionInputError` for rescale / normalisation settings that cannot make pixel rows."""
    if do_rescale and not (isinstance(rescale_factor, (int, float)) and not isinstance(rescale_factor, bool)
                           and math.isfinite(rescale_factor) and rescale_factor != 0):
        raise OneVisionInputError(f"rescale_factor must be a finite, non-zero number, got {rescale_factor!r}.")
    if do_normalize:
        for name, value in (("image_mean", image_mean), ("image_std", image_std)):
            values = np.atleast_1d(np.asarray(value, dtype=np.float64))
            if values.ndim != 1 or len(values) not in (1, 3) or not np.isfinite(values).all():
                raise OneVisionInputError(f"{name} needs 1 or 3 finite values (one per RGB channel), got {value!r}.")
        if np.any(np.asarray(image_std, dtype=np.float64) <= 0):
            raise OneVisionInputError(f"image_std must be positive, got {image_std!r}.")


def patch_rows(patches, do_rescale: bool, rescale_factor: float, do_normalize: bool, image_mean,
               image_std) -> torch.Tensor:
    """`normalize_patch_rows` with the rescale / normalise switches of transformers' image processors."""
    mean, std = (image_mean, image_std) if do_normalize else (0.0, 1.0)
    return normalize_patch_rows(patches, mean, std, rescale_factor if do_rescale else 1.0)
