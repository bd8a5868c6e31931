"""One sampled frame's fused energy map: where the codec had to spend bits (motion, new content).

`EnergyRecipe` holds every knob of the fusion; `frame_energy` turns a frame's luma, its reference luma and a
`MotionField` (from codec vectors or block matching) into an (H, W) map in [0, 1]:
``motion_weight * motion + (1 - motion_weight) * residual``, each term normalised per frame.
"""

from dataclasses import dataclass

import numpy as np

from .codec_energy import MotionField, motion_magnitude, normalize_energy, residual_magnitude

INTRA_FRAME_POLICIES = ("highpass", "zero", "pixel")


@dataclass(frozen=True)
class EnergyRecipe:
    """How a frame's energy is computed (the video processor's config fills it).

    Attributes:
        subpixel_vectors: use ``motion / motion_scale`` instead of the exporter's whole-pixel ``src - dst``.
        future_vectors: let future-list (B-frame) vectors fill cells that have no past-list vector.
        camera_compensation: subtract the frame's median vector before taking magnitudes.
        motion_weight: weight of the motion term; the residual term gets ``1 - motion_weight``.
        normalization_percentile: per-frame percentile each term is divided by.
        motion_floor: lower bound (pixels) of the motion divisor; a high floor keeps near-static frames quiet.
        residual_floor: lower bound (luma levels) of the residual divisor.
        intra_frame_energy: what an intra-coded (I) frame scores, having no vectors: ``"highpass"`` (texture,
            the released recipe's residual of an I-frame), ``"zero"`` (the encoder's pretraining recipe) or
            ``"pixel"`` (block matching against the previous decoded frame).
    """

    subpixel_vectors: bool = True
    future_vectors: bool = True
    camera_compensation: bool = True
    motion_weight: float = 0.5
    normalization_percentile: float = 95.0
    motion_floor: float = 1e-6
    residual_floor: float = 1.0
    intra_frame_energy: str = "pixel"


def frame_energy(luma: np.ndarray, reference: np.ndarray | None, field: MotionField,
                 recipe: EnergyRecipe) -> np.ndarray:
    """(H, W) float32 fused energy in [0, 1] of a frame against its reference under ``field``."""
    height, width = luma.shape
    if recipe.motion_weight > 0:
        motion = motion_magnitude(field, recipe.camera_compensation)  # (rows, cols)
        motion = normalize_energy(motion, recipe.normalization_percentile, recipe.motion_floor)
        fused = field.to_pixels(recipe.motion_weight * motion, height, width)  # weighted per cell, then repeated
    else:
        fused = np.zeros((height, width), np.float32)
    if recipe.motion_weight < 1:
        residual = residual_magnitude(luma, reference, field)
        residual = normalize_energy(residual, recipe.normalization_percentile, recipe.residual_floor)
        residual *= 1 - recipe.motion_weight
        fused += residual
    return fused
