"""Pillow's resampling weights, recomputed in numpy: what `geometry.apply_geometry` multiplies pixels by.

`resampling_weights` follows ``precompute_coeffs`` of Pillow's ``Resample.c`` (the same double-precision
operations in the same order) for the two filters this package resizes with: bicubic (``a = -0.5``) for
pixels, bilinear for energy maps. `patch_pixels` turns the bicubic ones into Pillow's fixed point;
`patch_selection.patch_scores` folds the bilinear ones and the canvas placement into two small matrices.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

BICUBIC_A = -0.5


def _bicubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    a = BICUBIC_A
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


def _bilinear(x: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 - np.abs(x), 0.0)


FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}  # name -> (function, support)


@dataclass(frozen=True)
class ResamplingWeights:
    """One axis of a Pillow resize ``in_size -> out_size`` (box = the whole axis).

    Attributes:
        first: (out_size,) int64 first source index each output reads.
        weights: (out_size, taps) float64 normalised weights (zero past each output's window).
    """

    first: np.ndarray
    weights: np.ndarray

    def matrix(self, in_size: int) -> np.ndarray:
        """(out_size, in_size) float64 dense form: output i = sum_j matrix[i, j] * source[j]."""
        out_size, taps = self.weights.shape
        dense = np.zeros((out_size, in_size + taps))
        dense[np.arange(out_size)[:, None], self.first[:, None] + np.arange(taps)] = self.weights
        return dense[:, :in_size]  # weights past the axis are zero (their window was clipped)


@functools.lru_cache(maxsize=128)
def resampling_weights(in_size: int, out_size: int, filter_name: str) -> ResamplingWeights:
    """Pillow's normalised weights for resizing an axis of ``in_size`` pixels to ``out_size`` with a filter of
    `FILTERS`."""
    function, filter_support = FILTERS[filter_name]
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = filter_support * filterscale
    taps = int(math.ceil(support)) * 2 + 1
    centers = 0.0 + (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(centers - support + 0.5).astype(np.int64), 0)
    last = np.minimum(np.trunc(centers + support + 0.5).astype(np.int64), in_size)
    offsets = np.arange(taps)
    inside = offsets[None, :] < (last - first)[:, None]
    weights = function(((offsets[None, :] + first[:, None]).astype(np.float64) - centers[:, None] + 0.5)
                       * (1.0 / filterscale))
    weights = np.where(inside, weights, 0.0)
    total = np.zeros(out_size)
    for tap in range(taps):  # in window order, as Pillow sums
        total = total + weights[:, tap]
    weights = np.where(total[:, None] != 0.0, weights / np.where(total == 0.0, 1.0, total)[:, None], weights)
    return ResamplingWeights(first, weights)
