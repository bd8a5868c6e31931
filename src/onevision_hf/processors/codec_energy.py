"""Per-pixel motion and residual energy of a frame from a motion field (codec vectors or block matching).

A `MotionField` holds one displacement per ``cell x cell`` pixel cell, pointing from the current frame into its
reference frame (``src - dst``, as FFmpeg exports it), and which cells carry a vector (intra-coded blocks do
not). From it:

* `motion_magnitude`: displacement length per cell after removing the camera motion (median vx, vy);
* `residual_magnitude`: |Y - prediction|, the prediction rebuilt from the reference luma with the field
  (the stock decoder does not expose residuals; this is their motion-compensated proxy); cells without a
  vector get the high-pass energy |Y - blur(Y)| of an intra block;
* `normalize_energy`: per-frame division by a percentile with a floor, clipped to [0, 1].
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionField:
    """Displacements (into the reference frame) on a grid of ``cell x cell`` pixel cells."""

    dx: np.ndarray  # (rows, cols) float32 pixels
    dy: np.ndarray  # (rows, cols) float32 pixels
    covered: np.ndarray  # (rows, cols) bool, False where the block was intra coded (no vector)
    cell: int

    @classmethod
    def empty(cls, height: int, width: int, cell: int) -> "MotionField":
        shape = (math.ceil(height / cell), math.ceil(width / cell))
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(shape, bool), cell)

    def to_pixels(self, values: np.ndarray, height: int, width: int) -> np.ndarray:
        """Repeat a per-cell (rows, cols) array to an (H, W) per-pixel one."""
        return np.repeat(np.repeat(values, self.cell, axis=0), self.cell, axis=1)[:height, :width]


def codec_motion_field(vectors: np.ndarray | None, height: int, width: int, subpixel: bool = True,
                       use_future: bool = False, cell: int = 4) -> MotionField:
    """Rasterise exported motion vectors onto 4 x 4-pixel cells.

    ``subpixel=False`` keeps the whole-pixel ``src - dst`` the exporter rounds to (the released recipe);
    ``True`` uses ``motion / motion_scale``. Past-list vectors (source < 0) always count; with ``use_future``
    future-list vectors fill the cells no past vector covers, negated so both point backwards in time.
    """
    field = MotionField.empty(height, width, cell)
    if vectors is None or len(vectors) == 0:
        return field
    rows, cols = field.dx.shape
    past = vectors["source"] < 0
    layers = ((vectors[~past], -1.0), (vectors[past], 1.0)) if use_future else ((vectors[past], 1.0),)
    for layer, sign in layers:  # later layers overwrite earlier ones
        if subpixel:
            scale = np.maximum(layer["motion_scale"], 1).astype(np.float32)
            dx, dy = layer["motion_x"] / scale, layer["motion_y"] / scale
        else:
            dx = (layer["src_x"] - layer["dst_x"]).astype(np.float32)
            dy = (layer["src_y"] - layer["dst_y"]).astype(np.float32)
        top = (layer["dst_y"].astype(np.int64) - layer["h"] // 2) // cell
        left = (layer["dst_x"].astype(np.int64) - layer["w"] // 2) // cell
        spans_y = np.maximum(layer["h"] // cell, 1)
        spans_x = np.maximum(layer["w"] // cell, 1)
        for span_y, span_x in set(zip(spans_y.tolist(), spans_x.tolist())):
            block = (spans_y == span_y) & (spans_x == span_x)
            cell_y = top[block, None, None] + np.arange(span_y)[None, :, None]  # (n, span_y, 1)
            cell_x = left[block, None, None] + np.arange(span_x)[None, None, :]  # (n, 1, span_x)
            cell_y, cell_x = np.broadcast_arrays(cell_y, cell_x)
            inside = (cell_y >= 0) & (cell_y < rows) & (cell_x >= 0) & (cell_x < cols)
            per_block = np.broadcast_to(np.arange(block.sum())[:, None, None], cell_y.shape)[inside]
            cy, cx = cell_y[inside], cell_x[inside]
            field.dx[cy, cx] = sign * dx[block][per_block]
            field.dy[cy, cx] = sign * dy[block][per_block]
            field.covered[cy, cx] = True
    return field


def motion_magnitude(field: MotionField, compensate_camera: bool = True) -> np.ndarray:
    """(rows, cols) float32 displacement length per covered cell, minus the camera motion.

    The camera motion is the median vector over the whole grid, cells without a vector counting as still
    (as the released recipe draws vectors on a zero grid); cells without a vector score 0.
    """
    dx, dy = field.dx, field.dy
    if compensate_camera:
        dx = dx - np.median(dx)
        dy = dy - np.median(dy)
    return np.where(field.covered, np.hypot(dx, dy), 0.0).astype(np.float32)


def box_blur(image: np.ndarray, radius: int = 1) -> np.ndarray:
    """(H, W) float32 mean over a (2r+1)^2 window, edges replicated."""
    padded = np.pad(image.astype(np.float32), radius, mode="edge")
    summed = np.cumsum(np.cumsum(padded, axis=0), axis=1)
    summed = np.pad(summed, ((1, 0), (1, 0)))
    size = 2 * radius + 1
    height, width = image.shape
    window = (summed[size:size + height, size:size + width] - summed[:height, size:size + width]
              - summed[size:size + height, :width] + summed[:height, :width])
    return window / (size * size)


def highpass_energy(luma: np.ndarray) -> np.ndarray:
    """(H, W) float32 |Y - blur(Y)|: the residual an intra block leaves, texture without motion."""
    luma = luma.astype(np.float32)
    return np.abs(luma - box_blur(luma))


def compensated_prediction(reference: np.ndarray, field: MotionField) -> np.ndarray:
    """(H, W) float32 prediction of the current frame: the reference luma sampled (bilinearly) at x + dx, y + dy."""
    height, width = reference.shape
    dx = field.to_pixels(field.dx, height, width)
    dy = field.to_pixels(field.dy, height, width)
    x = np.clip(np.arange(width, dtype=np.float32)[None, :] + dx, 0, width - 1)
    y = np.clip(np.arange(height, dtype=np.float32)[:, None] + dy, 0, height - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    ref = reference.astype(np.float32)
    top = ref[y0, x0] * (1 - fx) + ref[y0, x1] * fx
    bottom = ref[y1, x0] * (1 - fx) + ref[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def residual_magnitude(luma: np.ndarray, reference: np.ndarray | None, field: MotionField) -> np.ndarray:
    """(H, W) float32 |Y - motion-compensated prediction|; intra cells (or no reference) get high-pass energy."""
    height, width = luma.shape
    intra = highpass_energy(luma)
    if reference is None or not field.covered.any():
        return intra
    residual = np.abs(luma.astype(np.float32) - compensated_prediction(reference, field))
    return np.where(field.to_pixels(field.covered, height, width), residual, intra)


def normalize_energy(energy: np.ndarray, percentile: float, floor: float) -> np.ndarray:
    """Divide by the frame's ``percentile`` (at least ``floor``) and clip to [0, 1]."""
    scale = max(float(np.percentile(energy, percentile)), floor) if energy.size else floor
    return np.clip(energy / scale, 0.0, 1.0).astype(np.float32)
