"""`OneVisionVideoProcessor`: a video (file, bytes, file object or decoded frames) -> the encoder's packed input.

```python
processor = OneVisionVideoProcessor()                       # the "default" preset
processor = OneVisionVideoProcessor(preset="reference")     # the released LLaVA recipe
batch = processor(videos=["a.mp4", "b.mp4"], return_tensors="pt")
model(**batch)                                              # pixel_values, patch_positions, cu_seqlens
selection = processor.select("a.mp4")                       # VideoSelection: frames, positions, method, ...
```

Built on transformers' `VideoProcessorMixin` (the torchvision-free base): parameters are attributes, saved to
``video_preprocessor_config.json`` by `save_pretrained` and restored by `from_pretrained`. Selection itself lives
in `video_selection`; this class only resolves parameters, dispatches inputs and packs the result.
"""

import os

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from ..errors import OneVisionConfigError, OneVisionInputError
from ..limits import check_bound
from ..modeling.packing import cu_seqlens_from_lengths
from .frame_energy import INTRA_FRAME_POLICIES, EnergyRecipe
from .geometry import ResizeSpec
from .normalization import CLIP_MEAN, CLIP_STD, normalize_patch_rows
from .video_presets import VIDEO_PRESETS, preset_parameters
from .video_selection import SelectionRecipe, VideoSelection, select_frames, select_video

SELECTION_PARAMETERS = tuple(VIDEO_PRESETS["default"])
ENERGY_PARAMETERS = ("subpixel_vectors", "future_vectors", "camera_compensation", "motion_weight",
                     "normalization_percentile", "motion_floor", "residual_floor", "intra_frame_energy")
_BOOKKEEPING_KEYS = ("video_processor_type", "image_processor_type", "processor_class", "auto_map")


class OneVisionVideoProcessorKwargs(VideosKwargs, total=False):
    """Call-time overrides of `OneVisionVideoProcessor` parameters (see its docstring)."""

    preset: str
    patch_size: int
    resize: str
    min_pixels: int | None
    max_pixels: int | None
    budget: int | float
    keep_first_frame: bool
    first_frame_padding: bool
    selection_unit: int
    rope_temporal_size: int | None
    motion_source: str
    subpixel_vectors: bool
    future_vectors: bool
    camera_compensation: bool
    motion_weight: float
    normalization_percentile: float
    motion_floor: float
    residual_floor: float
    intra_frame_energy: str


class OneVisionVideoProcessor(VideoProcessorMixin):
    r"""
    Codec-guided sparse patch selection for OneVision-Encoder.

    Args:
        preset: ``"default"`` or ``"reference"`` (`video_presets`); the other arguments override it.
        num_frames: frames sampled uniformly over the video (all of them when it is shorter).
        patch_size: patch side in pixels (the encoder's ``patch_size``).
        resize: ``"native"``, ``"square-pad:S"`` or ``"shorter-crop:S"`` (`geometry.ResizeSpec`).
        min_pixels, max_pixels: area bounds of the ``native`` canvas.
        budget: patches per video: a count, or a fraction in (0, 1] of the dense grid of ``num_frames`` frames.
        keep_first_frame: keep every content patch of the first sampled frame (counted in the budget).
        first_frame_padding: the kept first frame includes its padding patches (the released recipe).
        selection_unit: 1, or 2 to select whole 2 x 2-patch blocks (for a later 2 x 2 token merge).
        rope_temporal_size: temporal grid of the encoder; sampled frame i of T sits at
            ``floor(linspace(0, rope_temporal_size - 1, T))[i]``.
        motion_source: ``"auto"`` (codec vectors when the codec exports them, else block matching) or ``"pixel"``.
        subpixel_vectors, future_vectors, camera_compensation, motion_weight, normalization_percentile,
        motion_floor, residual_floor, intra_frame_energy: the energy recipe (`frame_energy.EnergyRecipe`).
        image_mean, image_std, rescale_factor: pixel normalisation of the packed rows (CLIP's by default).
    """

    model_input_names = ["pixel_values", "patch_positions", "cu_seqlens"]
    valid_kwargs = OneVisionVideoProcessorKwargs

    def __init__(self, preset: str = "default", image_mean=CLIP_MEAN, image_std=CLIP_STD,
                 rescale_factor: float = 1 / 255, **kwargs):
        parameters = preset_parameters(preset)
        parameters.update({key: kwargs.pop(key) for key in list(kwargs) if key in parameters})
        unknown = sorted(set(kwargs) - set(_BOOKKEEPING_KEYS))
        if unknown:
            raise OneVisionInputError(
                f"unknown OneVisionVideoProcessor parameter(s) {unknown}; known: {sorted(parameters)}."
            )
        super().__init__(**kwargs)
        self.preset = preset
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.rescale_factor = rescale_factor
        for key, value in parameters.items():
            setattr(self, key, value)
        check_normalization(self.image_mean, self.image_std, self.rescale_factor)
        self.selection_recipe()  # reject bad values now, where they enter

    def selection_recipe(self, **overrides) -> SelectionRecipe:
        """The `SelectionRecipe` of this processor's parameters, with call-time ``overrides``."""
        unknown = sorted(set(overrides) - set(SELECTION_PARAMETERS))
        if unknown:
            raise OneVisionInputError(
                f"unknown selection parameter(s) {unknown}; known: {sorted(SELECTION_PARAMETERS)}."
            )
        values = {key: overrides.get(key, getattr(self, key)) for key in SELECTION_PARAMETERS}
        check_selection_values(values)
        if values["intra_frame_energy"] not in INTRA_FRAME_POLICIES:
            raise OneVisionInputError(
                f"intra_frame_energy must be one of {INTRA_FRAME_POLICIES}, got {values['intra_frame_energy']!r}."
            )
        energy = EnergyRecipe(**{key: values.pop(key) for key in ENERGY_PARAMETERS})
        return SelectionRecipe(**values, energy=energy)

    def select(self, video, progress: bool = False, keep_frames: bool = False, **overrides) -> VideoSelection:
        """Select one video's patches (uint8 pixels, positions, metadata) without normalising them."""
        recipe = self.selection_recipe(**overrides)
        frames = _decoded_frames(video)
        if frames is not None:
            return select_frames(frames, recipe, progress=progress, keep_frames=keep_frames)
        return select_video(video, recipe, progress=progress, keep_frames=keep_frames)

    def preprocess(self, videos, return_tensors: str | None = "pt", return_metadata: bool = False,
                   progress: bool = False, **overrides) -> BatchFeature:
        """Videos -> `BatchFeature` with ``pixel_values`` (N, 3*p*p) float32, ``patch_positions`` (N, 3) int64
        and ``cu_seqlens`` (B+1,) int32; with ``return_metadata`` also ``video_metadata``, one `VideoSelection`
        per video (the encoder ignores that key)."""
        selections = [self.select(video, progress=progress, **overrides) for video in _as_video_list(videos)]
        data = self.pack(selections)
        if return_tensors == "np":
            data = {key: value.numpy() for key, value in data.items()}
        elif return_tensors not in (None, "pt"):
            raise OneVisionInputError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        batch = BatchFeature(data=data)
        if return_metadata:
            batch["video_metadata"] = selections
        return batch

    def pack(self, selections: list[VideoSelection]) -> dict[str, torch.Tensor]:
        """Selections -> the encoder's packed keyword arguments (normalised pixel rows)."""
        patches = np.concatenate([selection.patches for selection in selections])  # (N, C, p, p) uint8
        positions = np.concatenate([selection.positions for selection in selections])  # (N, 3)
        return {
            "pixel_values": normalize_patch_rows(patches, self.image_mean, self.image_std, self.rescale_factor),
            "patch_positions": torch.from_numpy(positions).to(torch.int64),
            "cu_seqlens": cu_seqlens_from_lengths([len(selection.positions) for selection in selections]),
        }


INTEGER_PARAMETERS = ("num_frames", "patch_size", "selection_unit")
BOOLEAN_PARAMETERS = ("keep_first_frame", "first_frame_padding", "subpixel_vectors", "future_vectors",
                      "camera_compensation")


def check_normalization(image_mean, image_std, rescale_factor) -> None:
    if len(image_mean) != 3 or len(image_std) != 3:
        raise OneVisionConfigError(f"image_mean and image_std need 3 values (RGB), got {image_mean}, {image_std}.")
    if any(not std > 0 for std in image_std):
        raise OneVisionConfigError(f"image_std must be positive (it divides the pixels), got {list(image_std)}.")
    if isinstance(rescale_factor, bool) or not rescale_factor > 0:
        raise OneVisionConfigError(f"rescale_factor must be a positive number, got {rescale_factor!r}.")


def check_selection_values(values: dict) -> None:
    """Types, ranges and the canvas bound (`limits`) of the selection parameters, before any is used."""
    for name in INTEGER_PARAMETERS:
        if isinstance(values[name], bool) or not isinstance(values[name], int):
            raise OneVisionConfigError(f"{name} must be an integer, got {values[name]!r}.")
    for name in BOOLEAN_PARAMETERS:
        if not isinstance(values[name], bool):
            raise OneVisionConfigError(f"{name} must be true or false, got {values[name]!r}.")
    for name in ("min_pixels", "max_pixels", "rope_temporal_size"):
        value = values[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OneVisionConfigError(f"{name} must be a positive integer or None, got {value!r}.")
    if not 0 < values["normalization_percentile"] <= 100:
        raise OneVisionConfigError(
            f"normalization_percentile must lie in (0, 100], got {values['normalization_percentile']!r}.")
    if not 0 <= values["motion_weight"] <= 1:
        raise OneVisionConfigError(f"motion_weight must lie in [0, 1], got {values['motion_weight']!r}.")
    for name in ("motion_floor", "residual_floor"):
        if not values[name] >= 0:
            raise OneVisionConfigError(f"{name} must be >= 0, got {values[name]!r}.")
    if values["num_frames"] < 1 or values["patch_size"] < 1:
        return  # the recipe names these
    spec = ResizeSpec.parse(values["resize"])
    # the smallest canvas a frame can get: one patch, the min_pixels area, or the fixed S x S square
    canvas = max(values["patch_size"] ** 2, values["min_pixels"] or 0, (spec.size or 0) ** 2)
    what = (f"patch_size={values['patch_size']}, resize={spec}, min_pixels={values['min_pixels']}, "
            f"num_frames={values['num_frames']}")
    check_bound("canvas pixels", canvas, f"a frame placed with {what}")
    check_bound("video canvas pixels", canvas * values["num_frames"], f"a video placed with {what}")


def _is_frame(item) -> bool:
    """Whether ``item`` is one decoded frame (an (H, W, C) array or tensor, or a PIL image)."""
    if hasattr(item, "convert") and hasattr(item, "size"):  # PIL image
        return True
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3


def _is_frame_stack(item) -> bool:
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 4


def _as_video_list(videos) -> list:
    """One video or a list of videos -> a list of videos (a list of frames is one video)."""
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise OneVisionInputError("videos is an empty list.")
        return [videos] if all(_is_frame(item) for item in videos) else list(videos)
    return [videos]


def _decoded_frames(video) -> list[np.ndarray] | None:
    """(H, W, 3) uint8 frames of an already-decoded video, or None for an encoded one (path, bytes, file)."""
    if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(video, "read"):
        return None
    if _is_frame_stack(video):
        video = list(video)
    if not isinstance(video, (list, tuple)) or not all(_is_frame(item) for item in video):
        raise OneVisionInputError(
            "a video must be a file path, bytes, a binary file object, a (T, H, W, 3) uint8 array or tensor, or "
            f"a list of frames; got {type(video).__name__}."
        )
    return [_frame_array(index, frame) for index, frame in enumerate(video)]


def _frame_array(index: int, frame) -> np.ndarray:
    if hasattr(frame, "convert"):  # PIL image
        return np.asarray(frame.convert("RGB"))
    array = frame.numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if array.shape[0] == 3 and array.shape[-1] != 3:  # channels first
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        raise OneVisionInputError(f"decoded frame {index} must be uint8 (0-255), got dtype {array.dtype}.")
    return array
