"""Image processor of OneVision-Encoder: images and documents -> the encoder's packed patch format."""

import numpy as np
import torch
from huggingface_hub.dataclasses import validate_typed_dict
from huggingface_hub.errors import StrictDataclassError
from transformers.image_processing_utils import INIT_SERVICE_KWARGS, BaseImageProcessor, BatchFeature
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import IMAGE_PROCESSOR_NAME

from ..errors import OneVisionConfigError, OneVisionInputError
from ..hub_code import HubCodeMixin
from ..limits import check_bound
from ..modeling.packing import cu_seqlens_from_lengths, dense_grid_positions, patchify
from .geometry import ResizeSpec, apply_geometry, plan_geometry
from .image_loading import load_images
from .normalization import CLIP_MEAN, CLIP_STD, check_normalization, patch_rows

RESAMPLE_NAMES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}
CLIP_GEOMETRY_KEYS = ("do_resize", "size", "do_center_crop", "crop_size")
CHANNELS_FIRST = {None: None, ChannelDimension.FIRST: True, ChannelDimension.LAST: False}  # by input_data_format


class OneVisionImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    resize_mode (`str`, *optional*, defaults to `"shorter-crop:448"`):
        Where the image lands on the patch canvas (see `processors.geometry`): `"shorter-crop:S"` (shorter side to
        S, centre crop S x S; the released preprocessing), `"native"` (aspect ratio kept, sides rounded to patch
        multiples; documents, charts) or `"square-pad:S"` (longer side to S, zero-padded to S x S).
    min_pixels (`int`, *optional*):
        `"native"` mode only: images with fewer pixels are scaled up to about this area.
    max_pixels (`int`, *optional*):
        `"native"` mode only: images with more pixels are scaled down to at most this area.
    patch_size (`int`, *optional*, defaults to 14):
        Side of a square patch; must be the encoder config's `patch_size`.
    """

    resize_mode: str | None
    min_pixels: int | None
    max_pixels: int | None
    patch_size: int | None


def resize_mode_from_clip_keys(kwargs: dict, error=OneVisionInputError) -> dict:
    """Replace CLIP-style geometry keys (``do_resize``, ``size``, ``do_center_crop``, ``crop_size``) by the
    ``resize_mode`` they describe. Only CLIP's shorter-side resize then square centre crop can be described
    (``size={"shortest_edge": S}``, ``crop_size={"height": S, "width": S}`` -> ``"shorter-crop:S"``)."""
    given = {key: kwargs[key] for key in CLIP_GEOMETRY_KEYS if kwargs.get(key) is not None}
    kwargs = {key: value for key, value in kwargs.items() if key not in CLIP_GEOMETRY_KEYS}
    if given.get("do_resize") is False or given.get("do_center_crop") is False:
        raise error(
            "OneVisionImageProcessor always resizes; do_resize=False / do_center_crop=False cannot be honoured. "
            "Use resize_mode='native' to keep the aspect ratio (sides rounded to patch multiples)."
        )
    size, crop_size = given.get("size"), given.get("crop_size")
    if size is None and crop_size is None:
        return kwargs
    if kwargs.get("resize_mode") is not None:
        raise error(f"give either resize_mode or the CLIP-style keys {sorted(given)}, not both.")
    sides = set()
    if size is not None:
        size = {"shortest_edge": size} if isinstance(size, int) else dict(size)
        if set(size) != {"shortest_edge"}:
            raise error(f"size={size} is not supported; only {{'shortest_edge': S}} (CLIP) maps to a resize_mode.")
        sides.add(size["shortest_edge"])
    if crop_size is not None:
        crop_size = {"height": crop_size, "width": crop_size} if isinstance(crop_size, int) else dict(crop_size)
        if set(crop_size) != {"height", "width"}:
            raise error(f"crop_size={crop_size} is not supported; give {{'height': S, 'width': S}}.")
        sides.update((crop_size["height"], crop_size["width"]))
    if len(sides) != 1:
        raise error(
            f"size={size} and crop_size={crop_size} must name one side S (resize the shorter side to S, crop S x S); "
            "other CLIP geometries have no resize_mode."
        )
    return {**kwargs, "resize_mode": f"shorter-crop:{sides.pop()}"}


class OneVisionImageProcessor(HubCodeMixin, BaseImageProcessor):
    r"""
    Turns images into the packed input of [`OneVisionEncoderModel`], one sample per image.

    Each image is loaded upright as RGB (`image_loading`: EXIF orientation, grayscale, palette, 16-bit, CMYK;
    transparency composited on white), placed on a patch canvas by `resize_mode` (bicubic by default), cut into
    `patch_size` patches and normalised with `image_mean` / `image_std` (CLIP's by default).

    `resize_mode="shorter-crop:448"` (the default) is the released preprocessing: shorter side to 448, centre crop
    448 x 448, the same pixels as `CLIPImageProcessor` with the released `preprocessor_config.json`, which this
    class loads (its `size` / `crop_size` keys become `resize_mode`). `resize_mode="native"` keeps the aspect ratio
    with each side rounded to a patch multiple and the area scaled into `[min_pixels, max_pixels]` when given:
    the mode for documents, charts and screenshots.

    Output (`BatchFeature`), for B images with grids (h_i, w_i) and N = sum(h_i * w_i) patches:

    - `pixel_values` (N, 3 * p * p) float32: one row per patch in (C, p_h, p_w) order, patches of an image
      row-major;
    - `patch_positions` (N, 3) int64: the (t, h, w) of each patch, t = 0;
    - `cu_seqlens` (B + 1,) int32: image i owns rows `cu_seqlens[i]:cu_seqlens[i + 1]`;
    - `image_grid_hw` (B, 2) int64: (h_i, w_i), the number of patches per image is their product.

    `model(**image_processor(images, return_tensors="pt"))` runs the encoder on the packed batch.
    """

    valid_kwargs = OneVisionImageProcessorKwargs
    model_input_names = ["pixel_values", "patch_positions", "cu_seqlens", "image_grid_hw"]

    resize_mode = "shorter-crop:448"
    min_pixels = None
    max_pixels = None
    patch_size = 14
    resample = PILImageResampling.BICUBIC
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = CLIP_MEAN
    image_std = CLIP_STD
    do_convert_rgb = True

    def hub_auto_map(self) -> dict:
        return {IMAGE_PROCESSOR_NAME: {"AutoImageProcessor": type(self)}}

    def __init__(self, **kwargs: Unpack[OneVisionImageProcessorKwargs]):
        kwargs = resize_mode_from_clip_keys(kwargs, error=OneVisionConfigError)
        for key in INIT_SERVICE_KWARGS:  # "image_processor_type" names the class that saved the file, not a setting
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)
        self._validate_preprocess_kwargs(**{name: getattr(self, name) for name in self._valid_kwargs_names})

    @classmethod
    def from_dict(cls, image_processor_dict: dict, **kwargs):
        """``from_pretrained(path, resize_mode=...)`` replaces the geometry of the file, CLIP-style keys included."""
        if kwargs.get("resize_mode") is not None:
            image_processor_dict = {k: v for k, v in image_processor_dict.items() if k not in CLIP_GEOMETRY_KEYS}
        return super().from_dict(image_processor_dict, **kwargs)

    def preprocess(self, images, **kwargs: Unpack[OneVisionImageProcessorKwargs]) -> BatchFeature:
        """Preprocess one image or a list of images (paths, bytes, file objects, PIL images, arrays, tensors).

        Keyword arguments override the processor's settings for this call (e.g. ``resize_mode="native"``,
        ``max_pixels=...``, ``return_tensors="pt"``).
        """
        kwargs = resize_mode_from_clip_keys(kwargs)
        try:
            validate_typed_dict(self.valid_kwargs, kwargs)
        except (TypeError, StrictDataclassError) as exc:
            raise OneVisionInputError(f"invalid OneVisionImageProcessor argument: {exc}") from None
        return super().preprocess(images, **kwargs)

    def _standardize_kwargs(self, resize_mode=None, **kwargs) -> dict:
        kwargs = super()._standardize_kwargs(**kwargs)
        kwargs["resize_mode"] = None if resize_mode is None else str(ResizeSpec.parse(resize_mode))
        return kwargs

    def _validate_preprocess_kwargs(self, patch_size=None, min_pixels=None, max_pixels=None, resample=None,
                                    do_rescale=None, rescale_factor=None, do_normalize=None, image_mean=None,
                                    image_std=None, do_convert_rgb=None, do_pad=None, input_data_format=None,
                                    **kwargs) -> None:
        if not isinstance(patch_size, int) or patch_size <= 0:
            raise OneVisionInputError(f"patch_size must be a positive integer, got {patch_size!r}.")
        for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise OneVisionInputError(f"{name} must be a positive integer or None, got {value!r}.")
        if max_pixels is not None and max_pixels < patch_size**2:
            raise OneVisionInputError(f"max_pixels={max_pixels} is smaller than one {patch_size} x {patch_size} patch.")
        if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
            raise OneVisionInputError(f"min_pixels={min_pixels} is larger than max_pixels={max_pixels}.")
        check_bound("canvas pixels", max(patch_size**2, min_pixels or 0),
                    f"an image placed with patch_size={patch_size}, min_pixels={min_pixels}")
        if resample not in RESAMPLE_NAMES:
            raise OneVisionInputError(
                f"resample={resample!r} is not supported; use PILImageResampling.BICUBIC (3), BILINEAR (2) or "
                "NEAREST (0)."
            )
        check_normalization(do_rescale, rescale_factor, do_normalize, image_mean, image_std)
        if do_pad:
            raise OneVisionInputError("do_pad is not supported: images are packed, not padded to a common size.")
        if input_data_format not in CHANNELS_FIRST:
            raise OneVisionInputError(
                f"input_data_format must be 'channels_first', 'channels_last' or None, got {input_data_format!r}."
            )

    def image_patch_positions(self, height: int, width: int, **overrides) -> np.ndarray:
        """(N, 3) (t, h, w) positions of the patches an upright ``height`` x ``width`` image becomes (with this
        processor's geometry, or ``resize_mode`` / ``min_pixels`` / ``max_pixels`` / ``patch_size`` overrides)."""
        settings = {key: overrides.get(key, getattr(self, key))
                    for key in ("resize_mode", "patch_size", "min_pixels", "max_pixels")}
        geometry = plan_geometry(height, width, str(ResizeSpec.parse(settings["resize_mode"])), settings["patch_size"],
                                 settings["min_pixels"], settings["max_pixels"])
        grid_h, grid_w = geometry.grid_size
        return dense_grid_positions(torch.arange(grid_h * grid_w), grid_h, grid_w).numpy()

    def _preprocess_image_like_inputs(self, images, input_data_format=None, do_convert_rgb=None,
                                      **kwargs) -> BatchFeature:
        images = load_images(images, CHANNELS_FIRST[input_data_format], convert_rgb=do_convert_rgb is not False)
        return self._preprocess(images, **kwargs)

    def _preprocess(self, images: list[np.ndarray], resize_mode: str, min_pixels: int | None,
                    max_pixels: int | None, patch_size: int, resample: int, do_rescale: bool, rescale_factor: float,
                    do_normalize: bool, image_mean, image_std, return_tensors=None, **kwargs) -> BatchFeature:
        rows, positions, grids = [], [], []
        for image in images:
            geometry = plan_geometry(*image.shape[:2], resize_mode, patch_size, min_pixels, max_pixels)
            canvas = apply_geometry(image, geometry, RESAMPLE_NAMES[resample])  # (H, W, 3) uint8
            video = torch.from_numpy(canvas).permute(2, 0, 1)[None, :, None]  # (1, 3, 1, H, W)
            patches = patchify(video, patch_size)[0].view(-1, 3, patch_size, patch_size)  # (h*w, 3, p, p)
            rows.append(patch_rows(patches, do_rescale, rescale_factor, do_normalize, image_mean, image_std))
            grid_h, grid_w = geometry.grid_size
            positions.append(dense_grid_positions(torch.arange(grid_h * grid_w), grid_h, grid_w))  # (h*w, 3)
            grids.append((grid_h, grid_w))
        data = {
            "pixel_values": torch.cat(rows).numpy(),
            "patch_positions": torch.cat(positions).numpy(),
            "cu_seqlens": cu_seqlens_from_lengths([h * w for h, w in grids]).numpy(),
            "image_grid_hw": np.array(grids, dtype=np.int64),
        }
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["OneVisionImageProcessor"]
