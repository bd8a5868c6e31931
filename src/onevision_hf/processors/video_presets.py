"""Named selection recipes of `OneVisionVideoProcessor` (every key is a processor parameter).

* ``reference``: the released LLaVA training recipe (`codec-selection.md`): 64 frames, longer side 576 padded
  to a 576 x 576 square, 16-pixel patches, K = 10368 (12.5 %), the first frame kept whole with its padding,
  whole-pixel past-list vectors minus the median vector, the residual against each block's own reference (as
  the decoder's residual the release read), motion and residual fused 1:1 after per-frame 95th-percentile
  normalisation, energy at full resolution, no budget rule.
* ``default``: the best recipe measured for the encoder's own setting (`benchmarks/selection_quality.py`):
  14-pixel patches, native aspect ratio without padding (at most 448 x 448 pixels), 12.5 % of the dense grid,
  sub-pixel vectors of both lists, a robust affine camera model, normalisation floors that keep near-static
  frames quiet, I-frames measured by block matching against the previous frame, the frame-background budget
  rule, energy at the resolution the patches need, B-frame vectors of a list their block does not use
  dropped, intra blocks of predicted frames scored by their residual alone, a cell's residual the lesser of
  its vector's and the camera's prediction (intra blocks too), B-frames that export only (0, 0) vectors
  measured by block matching, content the camera brought into view ignored, and the motion of flat regions the
  camera's motion predicts ignored where they reach the frame's border (a flat background takes a moving
  object's vector).
"""

from ..errors import OneVisionInputError

VIDEO_PRESETS: dict[str, dict] = {
    "reference": {
        "num_frames": 64,
        "patch_size": 16,
        "resize": "square-pad:576",
        "min_pixels": None,
        "max_pixels": None,
        "budget": 10368,
        "keep_first_frame": True,
        "first_frame_padding": True,
        "selection_unit": 1,
        "rope_temporal_size": 64,
        "motion_source": "auto",
        "subpixel_vectors": False,
        "future_vectors": False,
        "camera_compensation": True,
        "camera_model": "median",
        "motion_weight": 0.5,
        "normalization_percentile": 95.0,
        "motion_floor": 1e-6,
        "residual_floor": 1.0,
        "intra_frame_energy": "highpass",
        "frame_background": "keep",
        "energy_resolution": "full",
        "vectorless_cells": "fused",
        "unused_list_vectors": "keep",
        "residual_prediction": "vectors",
        "revealed_content": "keep",
        "residual_measure": "difference",
        "unobservable_motion": "keep",
    },
    "default": {
        "num_frames": 64,
        "patch_size": 14,
        "resize": "native",
        "min_pixels": None,
        "max_pixels": 448 * 448,
        "budget": 0.125,
        "keep_first_frame": True,
        "first_frame_padding": False,
        "selection_unit": 1,
        "rope_temporal_size": 64,
        "motion_source": "auto",
        "subpixel_vectors": True,
        "future_vectors": True,
        "camera_compensation": True,
        "camera_model": "affine",
        "motion_weight": 0.5,
        "normalization_percentile": 95.0,
        "motion_floor": 1.0,
        "residual_floor": 8.0,
        "intra_frame_energy": "pixel",
        "frame_background": "subtract",
        "energy_resolution": "patch",
        "vectorless_cells": "residual",
        "unused_list_vectors": "drop",
        "residual_prediction": "vectors-or-camera",
        "revealed_content": "ignore",
        "residual_measure": "sampling-insensitive",
        "unobservable_motion": "ignore",
    },
}


def preset_parameters(name: str) -> dict:
    """A copy of the parameters of preset ``name``."""
    if name not in VIDEO_PRESETS:
        raise OneVisionInputError(f"unknown video preset {name!r}; choose one of {sorted(VIDEO_PRESETS)}.")
    return dict(VIDEO_PRESETS[name])
