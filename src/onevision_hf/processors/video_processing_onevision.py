"""`OneVisionVideoProcessor`: a video (file, bytes, file object or decoded frames) -> the encoder's packed input.

```python
processor = OneVisionVideoProcessor()                       # the "default" preset
processor = OneVisionVideoProcessor(preset="reference")     # the released LLaVA recipe
batch = processor(videos=["a.mp4", "b.mp4"], return_tensors="pt")
model(**batch)                                              # pixel_values, patch_positions, cu_seqlens
selection = processor.select("a.mp4")                       # VideoSelection: frames, positions, method, ...
```

Built on transformers' `VideoProcessorMixin` (the torchvision-free base): parameters are attributes, saved to
``video_preprocessor_config.json`` by `save_pretrained` and restored by `from_pretrained`. transformers' standard
video arguments keep their meaning (``VideosKwargs``): frame sampling by ``num_frames`` or ``fps``
(``do_sample_frames``, ``video_metadata``), ``do_rescale`` / ``rescale_factor``, ``do_normalize`` / ``image_mean`` /
``image_std``, ``do_convert_rgb``, ``input_data_format``, ``size`` / ``crop_size`` (CLIP geometry, as
``resize="shorter-crop:S"``), ``return_metadata`` and ``device``. The codec selection runs on the frames they choose.
Selection itself lives in `video_selection`; this class only resolves parameters, dispatches inputs and packs.
"""

import os
from dataclasses import dataclass

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import VideosKwargs
from transformers.utils import VIDEO_PROCESSOR_NAME
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata, make_batched_metadata

from ..errors import OneVisionConfigError, OneVisionInputError
from ..hub_code import HubCodeMixin
from ..limits import check_bound
from ..modeling.packing import cu_seqlens_from_lengths
from .codec_energy import RESIDUAL_MEASURES
from .frame_energy import (
    ENERGY_RESOLUTIONS,
    FRAME_BACKGROUND_RULES,
    INTRA_FRAME_POLICIES,
    RESIDUAL_PREDICTIONS,
    REVEALED_CONTENT_RULES,
    UNOBSERVABLE_MOTION_RULES,
    UNUSED_LIST_RULES,
    VECTORLESS_CELL_RULES,
    EnergyRecipe,
)
from .geometry import ResizeSpec
from .image_loading import load_image
from .image_processing_onevision import CHANNELS_FIRST, resize_mode_from_clip_keys
from .motion_energy import CAMERA_MODELS
from .normalization import CLIP_MEAN, CLIP_STD, check_normalization, patch_rows
from .patch_selection import plan_video_geometry, resolve_budget, select_patches, temporal_positions
from .video_decoding import sample_frame_indices
from .video_presets import VIDEO_PRESETS, preset_parameters
from .video_selection import SelectionRecipe, VideoSelection, select_frames, select_video

SELECTION_PARAMETERS = tuple(VIDEO_PRESETS["default"])
ENERGY_PARAMETERS = ("subpixel_vectors", "future_vectors", "camera_compensation", "camera_model", "motion_weight",
                     "normalization_percentile", "motion_floor", "residual_floor", "intra_frame_energy",
                     "frame_background", "energy_resolution", "vectorless_cells", "unused_list_vectors",
                     "residual_prediction", "revealed_content", "residual_measure", "unobservable_motion")
CHOICE_PARAMETERS = {"intra_frame_energy": INTRA_FRAME_POLICIES, "camera_model": CAMERA_MODELS,
                     "frame_background": FRAME_BACKGROUND_RULES, "energy_resolution": ENERGY_RESOLUTIONS,
                     "vectorless_cells": VECTORLESS_CELL_RULES, "unused_list_vectors": UNUSED_LIST_RULES,
                     "residual_prediction": RESIDUAL_PREDICTIONS, "revealed_content": REVEALED_CONTENT_RULES,
                     "residual_measure": RESIDUAL_MEASURES, "unobservable_motion": UNOBSERVABLE_MOTION_RULES}
NORMALIZATION_PARAMETERS = ("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")
# transformers' VideosKwargs this processor reads (the rest of its parameters are the selection recipe's)
STANDARD_PARAMETERS = NORMALIZATION_PARAMETERS + ("do_convert_rgb", "do_sample_frames", "fps", "return_metadata")
CALL_ONLY_PARAMETERS = ("video_metadata", "input_data_format", "device", "return_tensors")
CLIP_GEOMETRY_PARAMETERS = ("do_resize", "size", "do_center_crop", "crop_size")
UNSUPPORTED = {
    "do_pad": "videos are packed, never padded to a common size",
    "resample": "frames are resized with the geometry's own filter (bicubic, as the released recipe)",
    "default_to_square": "the canvas is chosen by `resize`",
    "data_format": "packed rows are always (C, p, p)",
}
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
    camera_model: str
    motion_weight: float
    normalization_percentile: float
    motion_floor: float
    residual_floor: float
    intra_frame_energy: str
    frame_background: str
    energy_resolution: str
    vectorless_cells: str
    unused_list_vectors: str
    residual_prediction: str
    revealed_content: str
    residual_measure: str
    unobservable_motion: str
    progress: bool


@dataclass
class OneVisionVideoMetadata(VideoMetadata):
    """transformers' `VideoMetadata` of a processed video (``frames_indices``: the sampled frames), plus the
    `VideoSelection` the processor made from it."""

    selection: VideoSelection | None = None


class OneVisionVideoProcessor(HubCodeMixin, VideoProcessorMixin):
    r"""
    Codec-guided sparse patch selection for OneVision-Encoder.

    Args:
        preset: ``"default"`` or ``"reference"`` (`video_presets`); the other arguments override it.
        num_frames: frames sampled uniformly over the video, at ``floor(linspace(0, N - 1, num_frames))`` (all of
            them when the video is shorter). A call's own ``num_frames`` (``processor(videos, num_frames=8)``) is
            a demand, as in transformers' samplers: a video with fewer frames raises; it chooses which frames are
            read and keeps the recipe's token budget.
        fps: sample this many frames per second of video instead (needs the video's frame rate: a file's own, or
            ``video_metadata`` for decoded frames); ``num_frames`` and ``fps`` exclude each other.
        do_sample_frames: False reads every frame of the video (at most ``rope_temporal_size`` of them).
        patch_size: patch side in pixels (the encoder's ``patch_size``).
        resize: ``"native"``, ``"square-pad:S"`` or ``"shorter-crop:S"`` (`geometry.ResizeSpec`).
        min_pixels, max_pixels: area bounds of the ``native`` canvas.
        budget: patches per video: a count, or a fraction in (0, 1] of the dense grid of ``num_frames`` frames
            (a fixed token budget, whatever frames a call's ``num_frames`` / ``fps`` / ``do_sample_frames`` read).
        keep_first_frame: keep every content patch of the first sampled frame (counted in the budget).
        first_frame_padding: the kept first frame includes its padding patches (the released recipe).
        selection_unit: 1, or 2 to select whole 2 x 2-patch blocks (for a later 2 x 2 token merge).
        rope_temporal_size: temporal grid of the encoder; sampled frame i of T sits at
            ``floor(linspace(0, rope_temporal_size - 1, T))[i]``.
        motion_source: ``"auto"`` (codec vectors when the codec exports them, else block matching) or ``"pixel"``.
        subpixel_vectors, future_vectors, camera_compensation, camera_model, motion_weight,
        normalization_percentile, motion_floor, residual_floor, intra_frame_energy, frame_background,
        energy_resolution, vectorless_cells, unused_list_vectors, residual_prediction, revealed_content,
        residual_measure, unobservable_motion: the energy recipe (`frame_energy.EnergyRecipe`).
        do_rescale, rescale_factor, do_normalize, image_mean, image_std: pixel normalisation of the packed rows,
            ``(x * rescale_factor - mean) / std`` (CLIP's mean and std by default).
        do_convert_rgb: convert decoded frames to RGB (grayscale, RGBA composited on white); False refuses them.
    """

    model_input_names = ["pixel_values", "patch_positions", "cu_seqlens"]
    valid_kwargs = OneVisionVideoProcessorKwargs

    def hub_auto_map(self) -> dict:
        return {VIDEO_PROCESSOR_NAME: {"AutoVideoProcessor": type(self)}}

    def __init__(self, preset: str = "default", image_mean=CLIP_MEAN, image_std=CLIP_STD,
                 rescale_factor: float = 1 / 255, do_rescale: bool = True, do_normalize: bool = True,
                 do_convert_rgb: bool = True, do_sample_frames: bool = True, fps: float | None = None,
                 return_metadata: bool = False, **kwargs):
        kwargs = _resize_from_clip_keys(kwargs)
        parameters = preset_parameters(preset)
        parameters.update({key: kwargs.pop(key) for key in list(kwargs) if key in parameters})
        _refuse_unsupported(kwargs)
        unknown = sorted(set(kwargs) - set(_BOOKKEEPING_KEYS))
        if unknown:
            raise OneVisionInputError(
                f"unknown OneVisionVideoProcessor parameter(s) {unknown}; known: "
                f"{sorted([*parameters, *STANDARD_PARAMETERS])}."
            )
        super().__init__(**kwargs)
        self.preset = preset
        self.image_mean = list(np.atleast_1d(image_mean).tolist())
        self.image_std = list(np.atleast_1d(image_std).tolist())
        self.rescale_factor = rescale_factor
        self.do_rescale = do_rescale
        self.do_normalize = do_normalize
        self.do_convert_rgb = do_convert_rgb
        self.do_sample_frames = do_sample_frames
        self.fps = fps
        self.return_metadata = return_metadata
        for key, value in parameters.items():
            setattr(self, key, value)
        self.selection_recipe()  # reject bad values now, where they enter
        check_normalization(*(getattr(self, key) for key in NORMALIZATION_PARAMETERS))

    def selection_recipe(self, **overrides) -> SelectionRecipe:
        """The `SelectionRecipe` of this processor's parameters, with call-time ``overrides``."""
        unknown = sorted(set(overrides) - set(SELECTION_PARAMETERS))
        if unknown:
            raise OneVisionInputError(
                f"unknown selection parameter(s) {unknown}; known: {sorted(SELECTION_PARAMETERS)}."
            )
        values = {key: overrides.get(key, getattr(self, key)) for key in SELECTION_PARAMETERS}
        check_selection_values(values)
        energy = EnergyRecipe(**{key: values.pop(key) for key in ENERGY_PARAMETERS})
        return SelectionRecipe(**values, energy=energy)

    def sample_frames(self, metadata: VideoMetadata | dict, num_frames: int | None = None,
                      fps: float | None = None, **kwargs) -> np.ndarray:
        """Indices of the frames to sample from a video described by ``metadata`` (transformers' API).

        ``num_frames`` frames, or ``fps`` frames per second of video (``metadata`` must give the video's fps), at
        ``floor(linspace(0, N - 1, T))``; a count the video cannot supply raises. Neither: the processor's own
        ``fps``, else its ``num_frames`` (all frames of a shorter video).
        """
        metadata = metadata if isinstance(metadata, VideoMetadata) else VideoMetadata(**metadata)
        total = metadata.total_num_frames
        if num_frames is not None and fps is not None:
            raise OneVisionInputError("num_frames and fps are mutually exclusive ways to sample; give one.")
        fps = fps if num_frames is not None or fps is not None else self.fps
        if fps is not None:
            if not metadata.fps:
                raise OneVisionInputError(
                    f"sampling {fps} frames per second needs the video's frame rate, which its metadata lacks; "
                    "pass video_metadata with an fps, or num_frames."
                )
            num_frames = max(1, int(total / metadata.fps * fps))
        if num_frames is None:
            return sample_frame_indices(total, self.num_frames)
        if num_frames > total:
            raise OneVisionInputError(
                f"asked to sample {num_frames} frames but the video has {total}; ask for fewer frames (or a lower "
                "fps)."
            )
        return sample_frame_indices(total, num_frames)

    def select(self, video, progress: bool = False, keep_frames: bool = False, metadata: VideoMetadata | None = None,
               do_sample_frames: bool | None = None, sample_num_frames: int | None = None, fps: float | None = None,
               do_convert_rgb: bool | None = None, input_data_format=None, **overrides) -> VideoSelection:
        """Select one video's patches (uint8 pixels, positions, metadata) without normalising them.

        ``overrides`` are recipe parameters (``num_frames``: up to that many frames, and the base of a fractional
        budget). ``sample_num_frames`` (a call's ``num_frames``), ``fps`` and ``do_sample_frames`` only choose
        which frames are read, as in `sample_frames`, and spend the recipe's budget on them; ``metadata`` (a
        `VideoMetadata` or dict) gives a decoded video's frame rate.
        """
        recipe = self.selection_recipe(**overrides)
        sampler = self._frame_sampler(recipe, do_sample_frames, sample_num_frames, fps, metadata)
        convert_rgb = do_convert_rgb if do_convert_rgb is not None else self.do_convert_rgb
        frames = _decoded_frames(video, CHANNELS_FIRST[_channels(input_data_format)], convert_rgb)
        if frames is not None:
            return select_frames(frames, recipe, progress=progress, keep_frames=keep_frames, frame_sampler=sampler,
                                 fps=_metadata_fps(metadata))
        return select_video(video, recipe, progress=progress, keep_frames=keep_frames, frame_sampler=sampler)

    def _frame_sampler(self, recipe: SelectionRecipe, do_sample_frames, num_frames, fps, metadata):
        """The `video_selection.FrameSampler` for these arguments; None: the recipe's own uniform sampling."""
        do_sample_frames = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        fps = fps if fps is not None or num_frames is not None else self.fps
        if do_sample_frames and num_frames is None and fps is None:
            return None
        known_fps = _metadata_fps(metadata)

        def sample(frame_count: int, video_fps: float | None) -> np.ndarray:
            if not do_sample_frames:
                indices = np.arange(frame_count, dtype=np.int64)
            else:
                described = VideoMetadata(total_num_frames=frame_count, fps=known_fps or video_fps)
                indices = self.sample_frames(described, num_frames=num_frames, fps=fps)
            if recipe.rope_temporal_size is not None and len(indices) > recipe.rope_temporal_size:
                raise OneVisionInputError(
                    f"{len(indices)} frames would be read but the encoder's temporal grid has rope_temporal_size "
                    f"= {recipe.rope_temporal_size} positions; sample fewer frames (do_sample_frames, num_frames, "
                    "fps)."
                )
            return indices

        return sample

    def preprocess(self, videos, return_tensors: str | None = "pt", return_metadata: bool | None = None,
                   progress: bool = False, video_metadata=None, device=None, **kwargs) -> BatchFeature:
        """Videos -> `BatchFeature` with ``pixel_values`` (N, 3*p*p) float32, ``patch_positions`` (N, 3) int64
        and ``cu_seqlens`` (B+1,) int32; with ``return_metadata`` also ``video_metadata``, one
        `OneVisionVideoMetadata` per video (its ``selection`` the `VideoSelection`; the encoder ignores the key).

        Keyword arguments override the processor's parameters for this call (see the class docstring).
        """
        kwargs = _resize_from_clip_keys(kwargs)
        _refuse_unsupported(kwargs)
        given = {key: kwargs.pop(key, None) for key in NORMALIZATION_PARAMETERS}
        normalization = {key: getattr(self, key) if value is None else value for key, value in given.items()}
        check_normalization(*normalization.values())
        video_list = _as_video_list(videos)
        metadata = [None] * len(video_list)
        if video_metadata is not None:
            metadata = make_batched_metadata(video_list, video_metadata)
        frame_arguments = {key: kwargs.pop(key, None) for key in
                           ("do_sample_frames", "fps", "do_convert_rgb", "input_data_format")}
        frame_arguments["sample_num_frames"] = kwargs.pop("num_frames", None)
        selections = [self.select(video, progress=progress, metadata=entry, **frame_arguments, **kwargs)
                      for video, entry in zip(video_list, metadata)]
        data = self.pack(selections, **normalization)
        if device is not None:
            data = {key: value.to(device) for key, value in data.items()}
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        elif return_tensors not in (None, "pt"):
            raise OneVisionInputError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        batch = BatchFeature(data=data)
        if return_metadata if return_metadata is not None else self.return_metadata:
            batch["video_metadata"] = [video_metadata_of(selection) for selection in selections]
        return batch

    def pack(self, selections: list[VideoSelection], **normalization) -> dict[str, torch.Tensor]:
        """Selections -> the encoder's packed keyword arguments (rows normalised with this processor's settings,
        or the given ``do_rescale`` / ``rescale_factor`` / ``do_normalize`` / ``image_mean`` / ``image_std``)."""
        settings = {key: normalization.get(key, getattr(self, key)) for key in NORMALIZATION_PARAMETERS}
        patches = np.concatenate([selection.patches for selection in selections])  # (N, C, p, p) uint8
        positions = np.concatenate([selection.positions for selection in selections])  # (N, 3)
        return {
            "pixel_values": patch_rows(patches, **settings),
            "patch_positions": torch.from_numpy(positions).to(torch.int64),
            "cu_seqlens": cu_seqlens_from_lengths([len(selection.positions) for selection in selections]),
        }

    def selected_positions(self, frame_count: int, height: int, width: int, do_sample_frames: bool | None = None,
                           sample_num_frames: int | None = None, **overrides) -> np.ndarray:
        """(K, 3) (t, h, w) positions of a selection from a video of ``frame_count`` upright ``height`` x ``width``
        frames, as if every patch scored the same: which patches the codec picks depends on the content, how many
        (and, with ``selection_unit=2``, how many 2 x 2 blocks) does not. For counting tokens without decoding
        (vLLM); frame arguments as in `select` (``fps`` needs the video itself)."""
        recipe = self.selection_recipe(**overrides)
        sampler = self._frame_sampler(recipe, do_sample_frames, sample_num_frames, None, None)
        sampled = len(sampler(frame_count, None) if sampler is not None
                      else sample_frame_indices(frame_count, recipe.num_frames))
        geometry = plan_video_geometry(height, width, recipe.resize, recipe.patch_size, recipe.selection_unit,
                                       recipe.min_pixels, recipe.max_pixels)
        grid_h, grid_w = geometry.grid_size
        budget = resolve_budget(recipe.budget, recipe.num_frames, grid_h, grid_w)
        chosen = select_patches(np.zeros((sampled, grid_h, grid_w), np.float32), geometry.content_patch_mask(),
                                budget, recipe.keep_first_frame, recipe.first_frame_padding, recipe.selection_unit)
        times = temporal_positions(sampled, recipe.rope_temporal_size)
        return np.stack((times[chosen[:, 0]], chosen[:, 1], chosen[:, 2]), axis=1).astype(np.int64)


def video_metadata_of(selection: VideoSelection) -> OneVisionVideoMetadata:
    """transformers' metadata of a processed video, from its selection."""
    fps, total = selection.source_fps, selection.source_frame_count
    height, width = selection.geometry.source_size
    return OneVisionVideoMetadata(
        total_num_frames=total, fps=fps, width=width, height=height, duration=total / fps if fps else None,
        video_backend="pyav" if selection.method == "codec-mv" or selection.source_fps else None,
        frames_indices=selection.frame_indices.tolist(), selection=selection,
    )


def _metadata_fps(metadata) -> float | None:
    if metadata is None:
        return None
    return (metadata.get("fps") if isinstance(metadata, dict) else metadata.fps) or None


def _resize_from_clip_keys(kwargs: dict) -> dict:
    """CLIP-style ``size`` / ``crop_size`` (and their switches) -> ``resize="shorter-crop:S"``."""
    if not any(key in kwargs for key in CLIP_GEOMETRY_PARAMETERS):
        return kwargs
    if kwargs.get("resize") is not None and any(kwargs.get(k) is not None for k in ("size", "crop_size")):
        raise OneVisionInputError("give either resize or the CLIP-style size / crop_size, not both.")
    kwargs = resize_mode_from_clip_keys(kwargs)
    if "resize_mode" in kwargs:
        kwargs["resize"] = kwargs.pop("resize_mode")
    return kwargs


def _refuse_unsupported(kwargs: dict) -> None:
    for key, reason in UNSUPPORTED.items():
        value = kwargs.pop(key, None)
        if value not in (None, False) and not (key == "data_format" and str(value) == "channels_first"):
            raise OneVisionInputError(f"{key}={value!r} is not supported: {reason}.")


def _channels(input_data_format):
    value = None if input_data_format is None else getattr(input_data_format, "value", input_data_format)
    if value not in CHANNELS_FIRST:
        raise OneVisionInputError(
            f"input_data_format must be 'channels_first', 'channels_last' or None, got {input_data_format!r}."
        )
    return value


INTEGER_PARAMETERS = ("num_frames", "patch_size", "selection_unit")
BOOLEAN_PARAMETERS = ("keep_first_frame", "first_frame_padding", "subpixel_vectors", "future_vectors",
                      "camera_compensation")


def check_selection_values(values: dict) -> None:
    """Types, ranges and the canvas bound (`limits`) of the selection parameters, before any is used."""
    for name in INTEGER_PARAMETERS:
        if isinstance(values[name], bool) or not isinstance(values[name], int):
            raise OneVisionConfigError(f"{name} must be an integer, got {values[name]!r}.")
    for name in BOOLEAN_PARAMETERS:
        if not isinstance(values[name], bool):
            raise OneVisionConfigError(f"{name} must be true or false, got {values[name]!r}.")
    for name, choices in CHOICE_PARAMETERS.items():
        if values[name] not in choices:
            raise OneVisionConfigError(f"{name} must be one of {choices}, got {values[name]!r}.")
    for name in ("min_pixels", "max_pixels", "rope_temporal_size"):
        value = values[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OneVisionConfigError(f"{name} must be a positive integer or None, got {value!r}.")
    if not 0 < values["normalization_percentile"] <= 100:
        raise OneVisionConfigError(
            f"normalization_percentile must lie in (0, 100], got {values['normalization_percentile']!r}.")
    if not 0 <= values["motion_weight"] <= 1:
        raise OneVisionConfigError(f"motion_weight must lie in [0, 1], got {values['motion_weight']!r}.")
    if values["unobservable_motion"] == "ignore" and not (values["camera_compensation"]
                                                          and values["camera_model"] == "affine"):
        raise OneVisionConfigError(
            "unobservable_motion='ignore' compares with the camera's prediction: it needs camera_model='affine' "
            f"and camera_compensation=True, got camera_model={values['camera_model']!r}, "
            f"camera_compensation={values['camera_compensation']!r}; or set unobservable_motion='keep'.")
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
    """Whether ``item`` is one decoded frame (an (H, W, C) / (C, H, W) array or tensor, or a PIL image)."""
    if hasattr(item, "convert") and hasattr(item, "size"):  # PIL image
        return True
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3


def _is_frame_stack(item) -> bool:
    return isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 4


def _as_video_list(videos) -> list:
    """One video or a list of videos -> a list of videos (a list of frames is one video, a (B, T, ...) array or
    tensor a batch of B, as transformers' video processors read them)."""
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise OneVisionInputError("videos is an empty list.")
        return [videos] if all(_is_frame(item) for item in videos) else list(videos)
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return list(videos)
    return [videos]


def _described(value) -> str:
    """A type name, with the shape of an array or tensor."""
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__} of shape {tuple(shape)}" if shape is not None else type(value).__name__


def _decoded_frames(video, channels_first: bool | None, convert_rgb: bool) -> list[np.ndarray] | None:
    """(H, W, 3) uint8 frames of an already-decoded video, or None for an encoded one (path, bytes, file)."""
    if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(video, "read"):
        return None
    if _is_frame_stack(video):
        video = list(video)
    if not isinstance(video, (list, tuple)) or not all(_is_frame(item) for item in video):
        raise OneVisionInputError(
            "a video must be a file path, bytes, a binary file object, a (T, H, W, C) / (T, C, H, W) array or "
            f"tensor, or a list of frames; got {_described(video)}."
        )
    return [load_image(frame, channels_first, f"decoded frame {index}", convert_rgb)
            for index, frame in enumerate(video)]
