"""Files in, features out: processors matched to an encoder, and one packed encoder call over them all."""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from .errors import OneVisionInputError
from .modeling import OneVisionEncoderModel, PackedVisionInputs
from .modeling.packing import concat_packed
from .processors.image_processing_onevision import OneVisionImageProcessor
from .processors.video_processing_onevision import OneVisionVideoProcessor
from .resources import DEFAULT_ENCODER, bundled

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


MODEL_KINDS = {"onevision_encoder": "a OneVision encoder folder", "onevision_llava": "a OneVision-LLaVA folder"}


def load_strict(model_class, directory: str | Path, allow_missing_weights: bool = False, **kwargs):
    """``model_class.from_pretrained(directory)`` that refuses, with `OneVisionInputError` naming the folder and
    the kind of folder expected, a folder of another model type or one whose weights do not all load (missing,
    unexpected or of the wrong shape), instead of running with random weights. ``allow_missing_weights`` lets
    training start from a partial checkpoint (missing weights are initialised; unexpected ones still refuse)."""
    directory = Path(directory)
    expected = MODEL_KINDS[model_class.config_class.model_type]
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise OneVisionInputError(f"{directory} is not a model directory (no config.json); expected {expected}.")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise OneVisionInputError(f"{config_file} is not a valid config.json ({error}).") from None
    if model_type != model_class.config_class.model_type:
        found = MODEL_KINDS.get(model_type, f"a model of type {model_type!r}")
        raise OneVisionInputError(f"{directory} is {found}; expected {expected} "
                                  f"(model_type {model_class.config_class.model_type!r}).")
    model, info = model_class.from_pretrained(directory, output_loading_info=True, **kwargs)
    problems = {"missing": [] if allow_missing_weights else info["missing_keys"],
                "unexpected": info["unexpected_keys"], "wrong-shape": info.get("mismatched_keys", [])}
    problems = {kind: sorted(map(str, keys)) for kind, keys in problems.items() if keys}
    if problems or info.get("error_msgs"):
        details = "; ".join(f"{len(keys)} {kind} (e.g. {keys[0]})" for kind, keys in problems.items())
        raise OneVisionInputError(f"{directory}: its weights do not match {expected}: "
                                  f"{details or info['error_msgs'][0]}.")
    return model


def load_encoder(model: str | Path | None = None, attn_implementation: str = "sdpa") -> OneVisionEncoderModel:
    """An encoder from a local directory in the hub's format (default: the bundled model), in eval mode; every
    weight must load (`load_strict`)."""
    directory = Path(model) if model is not None else bundled(DEFAULT_ENCODER)
    return load_strict(OneVisionEncoderModel, directory, attn_implementation=attn_implementation).eval()


def check_output_file(path: str | Path, option: str = "--output") -> Path:
    """Refuse, before any work is done, an output file whose folder does not exist or that names a folder."""
    path = Path(path)
    if path.is_dir():
        raise OneVisionInputError(f"{option} {path} is a folder; give a file name.")
    if not path.parent.is_dir():
        raise OneVisionInputError(f"{option} {path}: the folder {path.parent} does not exist; create it first.")
    return path


def video_processor_for(model: OneVisionEncoderModel, preset: str = "default", **overrides) -> OneVisionVideoProcessor:
    """A video processor whose patches and temporal grid are the encoder's."""
    config = model.config
    if overrides.get("patch_size", config.patch_size) != config.patch_size:
        raise OneVisionInputError(
            f"patch_size {overrides['patch_size']} differs from the encoder's patch_size {config.patch_size}."
        )
    return OneVisionVideoProcessor(preset=preset, **{**overrides, "patch_size": config.patch_size,
                                                      "rope_temporal_size": config.rope_temporal_size})


@dataclass
class EncodedSample:
    name: str
    kind: str  # "image" or "video"
    tokens: int
    detail: str  # grid, or frames and selection method


@dataclass
class EncodingResult:
    samples: list[EncodedSample]
    features: dict[str, torch.Tensor]  # pooler_output, last_hidden_state, patch_positions, cu_seqlens
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def summary_table(self) -> str:
        pooled = self.features.get("pooler_output")
        lines = ["| input | kind | tokens | detail | pooled norm |", "|---|---|---|---|---|"]
        for index, sample in enumerate(self.samples):
            norm = f"{pooled[index].norm():.3f}" if pooled is not None else "-"
            lines.append(f"| {sample.name} | {sample.kind} | {sample.tokens} | {sample.detail} | {norm} |")
        stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in self.seconds.items())
        return "\n".join(lines) + (f"\n\ntime: {stages}" if stages else "")

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.features.items() if v is not None}, str(path))


def encode_files(model: OneVisionEncoderModel, paths: list[Path], preset: str = "default", progress: bool = True,
                 **selection_overrides) -> EncodingResult:
    """Images and videos -> one packed encoder call; per-sample token counts and the features."""
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise OneVisionInputError(f"no such file(s): {', '.join(missing)}")
    image_processor = OneVisionImageProcessor(patch_size=model.config.patch_size)
    video_processor = video_processor_for(model, preset, **selection_overrides)
    start = time.perf_counter()
    samples, parts = [], []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            batch = image_processor(images=[str(path)], return_tensors="pt")
            grid_h, grid_w = batch["image_grid_hw"][0].tolist()
            detail = f"{grid_h} x {grid_w} patches"
        else:
            selection = video_processor.select(path, progress=progress)
            batch = video_processor.pack([selection])
            t, grid_h, grid_w = selection.grid_size
            detail = f"{t} frames of {grid_h} x {grid_w}, {selection.method}"
        parts.append(batch)
        samples.append(EncodedSample(path.name, "image" if "image_grid_hw" in batch else "video",
                                     int(batch["cu_seqlens"][-1]), detail))
    packed = concat_packed([
        PackedVisionInputs(part["pixel_values"], part["patch_positions"], part["cu_seqlens"]) for part in parts
    ]).to_kwargs()
    preprocessed = time.perf_counter()
    with torch.inference_mode():
        output = model(**packed)
    encoded = time.perf_counter()
    features = {"pooler_output": output.pooler_output, "last_hidden_state": output.last_hidden_state,
                "patch_positions": packed["patch_positions"], "cu_seqlens": packed["cu_seqlens"]}
    return EncodingResult(samples, features, {"preprocess": preprocessed - start, "encode": encoded - preprocessed})
