"""Resource bounds checked where a config enters, so a hostile or mistyped value is refused with an estimate
instead of allocating for minutes. Each bound is overridable with the environment variable named beside it,
read when the check runs (e.g. ``ONEVISION_HF_MAX_ENCODER_PARAMETERS=2e10`` for a larger encoder)."""

import os

from .errors import OneVisionConfigError

# name -> (environment variable, default); the published huge encoder has about 0.63e9 parameters and the
# reference video recipe places 64 frames of 576 x 576 (21e6 pixels)
BOUNDS = {
    "encoder parameters": ("ONEVISION_HF_MAX_ENCODER_PARAMETERS", 4e9),  # 16 GB of float32 weights
    "canvas pixels": ("ONEVISION_HF_MAX_CANVAS_PIXELS", 8192 * 8192),  # one placed image or frame
    "video canvas pixels": ("ONEVISION_HF_MAX_VIDEO_PIXELS", 2**30),  # all sampled frames of a video (3 GB RGB)
}


def check_bound(name: str, estimate: float, what: str) -> None:
    """Raise `OneVisionConfigError` when ``estimate`` exceeds the bound ``name``, saying how to raise it."""
    variable, default = BOUNDS[name]
    limit = float(os.environ.get(variable, default))
    if estimate > limit:
        raise OneVisionConfigError(
            f"{what} needs about {estimate:.3g} {name}, above the bound of {limit:.3g}; if that is really meant, "
            f"raise the bound with the environment variable {variable}."
        )
