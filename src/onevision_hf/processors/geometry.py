"""Where a source frame lands on the encoder's patch canvas: resize modes shared by image and video processors.

Three modes, spelled as on the command line:

* ``native``: keep the aspect ratio, round each side to a multiple of the patch size, scale into
  ``[min_pixels, max_pixels]`` when given (the encoder's own setting; no padding, no crop);
* ``square-pad:S``: longer side to ``S``, centred on an ``S x S`` zero canvas (the released LLaVA recipe);
* ``shorter-crop:S``: shorter side to ``S`` (long side ``int(S * long / short)``, as CLIP's processor), centre
  crop ``S x S`` (the released image preprocessing and the encoder's pretraining recipe).

`plan_geometry` only computes sizes and offsets; `apply_geometry` moves pixels (or any float map) onto the canvas.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import OneVisionInputError

RESIZE_KINDS = ("native", "square-pad", "shorter-crop")
RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class ResizeSpec:
    kind: str
    size: int | None = None  # S of square-pad / shorter-crop

    @classmethod
    def parse(cls, text: "str | ResizeSpec") -> "ResizeSpec":
        if isinstance(text, ResizeSpec):
            return text
        kind, _, size = str(text).partition(":")
        if kind not in RESIZE_KINDS:
            raise OneVisionInputError(
                f"resize mode {text!r} is not one of native, square-pad:S, shorter-crop:S."
            )
        if kind == "native":
            if size:
                raise OneVisionInputError(f"resize mode 'native' takes no size (got {text!r}); use max_pixels.")
            return cls(kind)
        if not size.isdigit() or int(size) <= 0:
            raise OneVisionInputError(f"resize mode {text!r} needs a positive integer size, e.g. {kind}:448.")
        return cls(kind, int(size))

    def __str__(self) -> str:
        return self.kind if self.size is None else f"{self.kind}:{self.size}"


@dataclass(frozen=True)
class FrameGeometry:
    """A source frame scaled to ``scaled_size`` and placed with its top-left corner at ``offset`` on the canvas.

    Negative offsets mean the scaled frame is cropped; positive ones mean padding around it.
    """

    source_size: tuple[int, int]  # (H0, W0)
    scaled_size: tuple[int, int]  # (Hs, Ws)
    offset: tuple[int, int]  # (top, left) of the scaled frame on the canvas
    canvas_size: tuple[int, int]  # (H, W), multiples of patch_size
    patch_size: int

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.canvas_size[0] // self.patch_size, self.canvas_size[1] // self.patch_size

    def content_patch_mask(self) -> np.ndarray:
        """(grid_h, grid_w) bool: True where a patch lies wholly on the frame's content, not on padding.

        A patch straddling the content edge counts as padding, as in the released recipe.
        """
        p = self.patch_size
        grid_h, grid_w = self.grid_size
        top, left = self.offset
        rows = np.arange(grid_h) * p
        cols = np.arange(grid_w) * p
        row_ok = (rows >= top) & (rows + p <= top + self.scaled_size[0])
        col_ok = (cols >= left) & (cols + p <= left + self.scaled_size[1])
        return row_ok[:, None] & col_ok[None, :]


def native_size(height: int, width: int, patch_size: int, min_pixels: int | None = None,
                max_pixels: int | None = None) -> tuple[int, int]:
    """Aspect-preserving size with both sides multiples of ``patch_size`` and area within the pixel bounds."""
    scale = 1.0
    if max_pixels is not None and height * width > max_pixels:
        scale = math.sqrt(max_pixels / (height * width))
    elif min_pixels is not None and height * width < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
    h = max(patch_size, round(height * scale / patch_size) * patch_size)
    w = max(patch_size, round(width * scale / patch_size) * patch_size)
    if max_pixels is not None and h * w > max_pixels:  # rounding up overshot: step down to the floor multiple
        h = max(patch_size, math.floor(height * scale / patch_size) * patch_size)
        w = max(patch_size, math.floor(width * scale / patch_size) * patch_size)
    return h, w


def plan_geometry(height: int, width: int, resize: "str | ResizeSpec", patch_size: int,
                  min_pixels: int | None = None, max_pixels: int | None = None) -> FrameGeometry:
    if height <= 0 or width <= 0:
        raise OneVisionInputError(f"cannot place a frame of size {height} x {width}.")
    spec = ResizeSpec.parse(resize)
    if spec.kind == "native":
        h, w = native_size(height, width, patch_size, min_pixels, max_pixels)
        return FrameGeometry((height, width), (h, w), (0, 0), (h, w), patch_size)
    size = spec.size
    if size % patch_size:
        raise OneVisionInputError(f"resize size {size} of {spec} must be a multiple of patch_size {patch_size}.")
    if spec.kind == "square-pad":
        scale = size / max(height, width)
        scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
        offset = ((size - scaled[0]) // 2, (size - scaled[1]) // 2)
    else:  # shorter-crop
        short, long = min(height, width), max(height, width)
        long_scaled = int(size * long / short)
        scaled = (size, long_scaled) if height <= width else (long_scaled, size)
        offset = (-((scaled[0] - size) // 2), -((scaled[1] - size) // 2))
    return FrameGeometry((height, width), scaled, offset, (size, size), patch_size)


def apply_geometry(array: np.ndarray, geometry: FrameGeometry, resample: str = "bicubic") -> np.ndarray:
    """Resize an (H0, W0, C) uint8 image or an (H0, W0) float map and place it on the zero canvas."""
    if array.shape[:2] != geometry.source_size:
        raise OneVisionInputError(
            f"array of size {array.shape[:2]} does not match the planned source size {geometry.source_size}."
        )
    if array.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    else:
        image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    hs, ws = geometry.scaled_size
    if (hs, ws) != geometry.source_size:
        image = image.resize((ws, hs), RESAMPLE[resample])
    scaled = np.asarray(image)
    canvas = np.zeros((*geometry.canvas_size, *scaled.shape[2:]), dtype=scaled.dtype)
    top, left = geometry.offset
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    h = min(hs - src_top, geometry.canvas_size[0] - dst_top)
    w = min(ws - src_left, geometry.canvas_size[1] - dst_left)
    canvas[dst_top:dst_top + h, dst_left:dst_left + w] = scaled[src_top:src_top + h, src_left:src_left + w]
    return canvas
