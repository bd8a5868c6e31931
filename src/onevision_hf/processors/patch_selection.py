"""Energy maps -> patch scores -> one global top-K under a budget -> (t, h, w) positions.

* `plan_video_geometry`: the frame placement (`geometry.plan_geometry`), with an even patch grid when
  selecting in 2 x 2-patch units;
* `patch_scores`: a frame's energy map placed on the canvas like its pixels, summed per patch;
* `resolve_budget`: a count, or a fraction of the dense grid (T x grid_h x grid_w);
* `select_patches`: first frame kept whole or not, padding never spent on unless asked, one global top-K
  over the rest (no per-frame quota), in 1 x 1 or 2 x 2 units; deterministic (ties go to the earlier patch);
* `temporal_positions`: sampled frame i of T sits at ``floor(linspace(0, rope_temporal_size - 1, T))[i]``.
"""

import dataclasses
import functools

import numpy as np

from ..errors import OneVisionInputError
from .geometry import FrameGeometry, plan_geometry
from .pillow_weights import resampling_weights

SELECTION_UNITS = (1, 2)


def plan_video_geometry(height: int, width: int, resize: str, patch_size: int, selection_unit: int,
                        min_pixels: int | None = None, max_pixels: int | None = None) -> FrameGeometry:
    """`plan_geometry`, with the canvas a multiple of ``selection_unit`` patches so units tile the grid."""
    geometry = plan_geometry(height, width, resize, patch_size * selection_unit, min_pixels, max_pixels)
    return dataclasses.replace(geometry, patch_size=patch_size)


def patch_scores(energy: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """(H0, W0) energy of the upright frame -> (grid_h, grid_w) float32 sums over each patch's pixels of the map
    placed on the canvas like the pixels (`apply_geometry` with Pillow's bilinear filter), as one product
    ``rows @ energy @ cols.T`` of the placement's `patch_sum_matrices` (float64; equal to summing the placed
    map up to float rounding)."""
    if energy.shape != geometry.source_size:
        raise OneVisionInputError(
            f"energy map of size {energy.shape} does not match the planned source size {geometry.source_size}."
        )
    rows, cols = patch_sum_matrices(geometry)
    return (rows @ energy.astype(np.float64) @ cols.T).astype(np.float32)


@functools.lru_cache(maxsize=32)
def patch_sum_matrices(geometry: FrameGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(grid_h, H0) and (grid_w, W0) float64: each patch row's (column's) total bilinear weight on each source
    row (column): Pillow's weights of the resize, shifted by the placement's offset (padding weighs nothing,
    cropped rows are left out) and summed over the patch's ``patch_size`` canvas rows."""
    def axis(in_size: int, scaled: int, offset: int, canvas: int) -> np.ndarray:
        resize = np.eye(in_size) if scaled == in_size else resampling_weights(in_size, scaled, "bilinear").matrix(
            in_size)
        placed = np.zeros((canvas, in_size))
        top, source_top = max(offset, 0), max(-offset, 0)
        count = min(scaled - source_top, canvas - top)
        placed[top:top + count] = resize[source_top:source_top + count]
        return placed.reshape(canvas // geometry.patch_size, geometry.patch_size, in_size).sum(axis=1)

    (in_h, in_w), (scaled_h, scaled_w) = geometry.source_size, geometry.scaled_size
    (top, left), (canvas_h, canvas_w) = geometry.offset, geometry.canvas_size
    return axis(in_h, scaled_h, top, canvas_h), axis(in_w, scaled_w, left, canvas_w)


def resolve_budget(budget: float | int, num_frames: int, grid_h: int, grid_w: int) -> int:
    """Patch count from a count (int >= 1) or a fraction in (0, 1] of the dense T x grid_h x grid_w grid."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise OneVisionInputError(f"budget must be a patch count >= 1 or a fraction in (0, 1], got {budget!r}.")
    if isinstance(budget, float) and budget <= 1:
        return max(1, int(round(budget * num_frames * grid_h * grid_w)))
    if isinstance(budget, float) and not budget.is_integer():
        raise OneVisionInputError(f"budget {budget} is neither a fraction in (0, 1] nor a whole patch count.")
    return int(budget)


def _unit_view(values: np.ndarray, unit: int, reduce) -> np.ndarray:
    """(T, gh, gw) -> (T, gh/unit, gw/unit) reduced over unit x unit tiles."""
    frames, grid_h, grid_w = values.shape
    return reduce(values.reshape(frames, grid_h // unit, unit, grid_w // unit, unit), axis=(2, 4))


def select_patches(scores: np.ndarray, content_mask: np.ndarray, budget: int, keep_first_frame: bool,
                   first_frame_padding: bool = False, selection_unit: int = 1) -> np.ndarray:
    """Choose at most ``budget`` patches of a (T, gh, gw) score volume; (K, 3) int64 rows (i, h, w) sorted.

    ``i`` is the sampled-frame index. With ``keep_first_frame`` frame 0's content patches (all its patches
    with ``first_frame_padding``) are taken first and count against the budget; the rest of the budget is
    one top-K over every other content patch. Padding patches (``~content_mask``) are never chosen by score.
    """
    frames, grid_h, grid_w = scores.shape
    unit = selection_unit
    unit_budget = budget // (unit * unit)
    eligible = np.broadcast_to(content_mask, scores.shape).copy()
    forced = np.zeros_like(eligible)
    if keep_first_frame:
        forced[0] = True if first_frame_padding else content_mask
        eligible[0] = False
    unit_scores = _unit_view(scores, unit, np.sum)
    unit_eligible = _unit_view(eligible, unit, np.all)  # (T, gh/u, gw/u) whole units on content only
    unit_forced = _unit_view(forced, unit, np.any)
    num_forced = int(unit_forced.sum())
    if num_forced > unit_budget:
        raise OneVisionInputError(
            f"budget {budget} is smaller than the {num_forced * unit * unit} patches of the first frame kept whole; "
            "raise the budget or turn keep_first_frame off."
        )
    flat_scores = np.where(unit_eligible, unit_scores, -np.inf).ravel()
    num_free = min(unit_budget - num_forced, int(unit_eligible.sum()))
    order = np.argsort(-flat_scores, kind="stable")[:num_free]
    chosen = unit_forced.ravel().copy()
    chosen[order] = True
    unit_mask = chosen.reshape(unit_scores.shape)
    patch_mask = np.repeat(np.repeat(unit_mask, unit, axis=1), unit, axis=2)  # (T, gh, gw)
    if keep_first_frame:
        patch_mask[0] = forced[0]
    return np.argwhere(patch_mask).astype(np.int64)  # row-major order == sorted by (i, h, w)


def temporal_positions(num_frames: int, rope_temporal_size: int | None) -> np.ndarray:
    """(T,) int64 temporal grid position of each sampled frame."""
    if rope_temporal_size is None:
        return np.arange(num_frames, dtype=np.int64)
    return np.floor(np.linspace(0, rope_temporal_size - 1, num_frames)).astype(np.int64)
