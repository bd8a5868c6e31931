"""The pretraining run, as one YAML file (`configs/pretrain-tiny.yaml` is the documented example).

Top-level keys are the fields of `PretrainConfig`; ``heads`` is a list of `HeadConfig` mappings, one per labelled
dataset (its own label space, class-centre bank and loss weight). Unknown keys and invalid values raise
`OneVisionConfigError` naming the key. Relative paths are relative to the working directory.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import OneVisionConfigError
from ..processors.geometry import ResizeSpec

MIXED_PRECISION = ("no", "bf16")
SYNTHETIC_KINDS = ("images", "videos", "video-selections")


@dataclass
class SyntheticDataConfig:
    """Generated data with known cluster structure (`synthetic_data`), written to the head's ``dataset`` path
    when that path does not exist yet: for the tiny end-to-end run and the tests."""

    kind: str  # "images", "videos" (H.264 files) or "video-selections" (precomputed from such videos)
    num_samples: int
    top_k: int = 4  # pseudo-labels per sample
    size: tuple[int, int] = (56, 56)  # (height, width) of images / video frames
    num_frames: int = 16  # videos only
    seed: int = 0


@dataclass
class HeadConfig:
    """One labelled dataset: where its samples come from, how they become patches, and its loss."""

    name: str
    dataset: str  # a `datasets` dataset saved with `save_to_disk`; columns below
    num_classes: int
    batch_size: int = 8  # samples per process per micro-step
    loss_weight: float = 1.0
    sample_rate: float = 0.1  # fraction of the non-positive class centres in each softmax
    margin: float = 0.3
    scale: float = 64.0
    false_negative_threshold: float = 0.75
    num_label_slots: int = 8
    class_bank_lr_scale: float = 1.0  # class-centre learning rate = learning_rate * this
    image_resize: str = "shorter-crop:224"  # `image` rows: `geometry.ResizeSpec`
    video_processor: dict = field(default_factory=dict)  # `video` rows: `OneVisionVideoProcessor` parameters
    codec_fraction: float = 1.0  # `video` rows: share read as codec selections; the rest as uniform frames
    uniform_frames: int = 8  # frames (all their patches) of a uniform-frames sample
    synthetic: SyntheticDataConfig | None = None


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs; the trainer reads nothing else."""

    output_dir: str
    heads: list[HeadConfig]
    max_steps: int  # optimizer steps of the whole schedule
    model: str | None = None  # a local `from_pretrained` directory to continue from
    allow_missing_weights: bool = False  # start from a `model` folder lacking some encoder weights (initialised)
    model_config: dict = field(default_factory=dict)  # `OneVisionEncoderConfig` kwargs when training from scratch
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    class_bank_weight_decay: float = 0.05
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine decay ends at learning_rate * min_lr_ratio
    max_grad_norm: float | None = 1.0  # backbone
    class_bank_max_grad_norm: float | None = 1.0  # all class banks together, across processes
    mixed_precision: str = "no"  # "no" or "bf16" (autocast; CPU and CUDA)
    save_every: int = 0  # checkpoint every N optimizer steps (and at the end); 0 = only at the end
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PretrainConfig":
        path = Path(path)
        if not path.is_file():
            raise OneVisionConfigError(f"pretraining config {str(path)!r} does not exist.")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise OneVisionConfigError(f"{path}: not valid YAML ({error}).") from None
        if not isinstance(raw, dict):
            raise OneVisionConfigError(f"{path}: expected a mapping of config keys, got {type(raw).__name__}.")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict) -> "PretrainConfig":
        values = _known_keys(cls, raw, "config")
        heads = values.get("heads")
        if not isinstance(heads, list) or not heads:
            raise OneVisionConfigError("config key 'heads' must be a non-empty list of head mappings.")
        values["heads"] = [_head_from_dict(head, index) for index, head in enumerate(heads)]
        _required(values, "output_dir", "config")
        if "adam_betas" in values:
            values["adam_betas"] = tuple(values["adam_betas"])
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        _check(self.max_steps >= 1, "max_steps must be at least 1")
        _check(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1")
        _check(0 <= self.warmup_steps <= self.max_steps, "warmup_steps must lie in [0, max_steps]")
        _check(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio must lie in [0, 1]")
        _check(self.learning_rate > 0, "learning_rate must be positive")
        _check(self.mixed_precision in MIXED_PRECISION, f"mixed_precision must be one of {MIXED_PRECISION}")
        _check(self.save_every >= 0, "save_every must be >= 0")
        _check(self.model is None or not self.model_config, "give either model (continue) or model_config (scratch)")
        for norm_name in ("max_grad_norm", "class_bank_max_grad_norm"):
            value = getattr(self, norm_name)
            _check(value is None or value > 0, f"{norm_name} must be positive or null")
        names = [head.name for head in self.heads]
        _check(len(set(names)) == len(names), f"head names must be unique, got {names}")
        for head in self.heads:
            where = f"head {head.name!r}"
            _check(head.num_classes >= 1, f"{where}: num_classes must be at least 1")
            _check(head.batch_size >= 1, f"{where}: batch_size must be at least 1")
            _check(head.loss_weight >= 0, f"{where}: loss_weight must be >= 0")
            _check(0.0 <= head.sample_rate <= 1.0, f"{where}: sample_rate must lie in [0, 1]")
            _check(head.num_label_slots >= 1, f"{where}: num_label_slots must be at least 1")
            _check(0.0 <= head.codec_fraction <= 1.0, f"{where}: codec_fraction must lie in [0, 1]")
            _check(head.uniform_frames >= 1, f"{where}: uniform_frames must be at least 1")
            try:
                ResizeSpec.parse(head.image_resize)
            except ValueError as error:
                raise OneVisionConfigError(f"{where}: image_resize: {error}") from None
            if head.synthetic is not None:
                _check(head.synthetic.kind in SYNTHETIC_KINDS,
                       f"{where}: synthetic.kind must be one of {SYNTHETIC_KINDS}")
                _check(head.synthetic.top_k >= head.num_label_slots,
                       f"{where}: synthetic.top_k must be >= num_label_slots ({head.num_label_slots})")
                _check(head.synthetic.top_k <= head.num_classes, f"{where}: synthetic.top_k must be <= num_classes")
                _check(all(side > 0 and side % 2 == 0 for side in head.synthetic.size),
                       f"{where}: synthetic.size must be two positive even sides (H.264 4:2:0)")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise OneVisionConfigError(f"pretraining config: {message}.")


def _known_keys(cls, raw, where: str) -> dict:
    if not isinstance(raw, dict):
        raise OneVisionConfigError(f"{where} must be a mapping, got {type(raw).__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise OneVisionConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}.")
    return dict(raw)


def _required(values: dict, key: str, where: str):
    if values.get(key) is None:
        raise OneVisionConfigError(f"{where}: key {key!r} is required.")
    return values[key]


def _head_from_dict(raw, index: int) -> HeadConfig:
    where = f"heads[{index}]"
    values = _known_keys(HeadConfig, raw, where)
    for key in ("name", "dataset", "num_classes"):
        _required(values, key, where)
    if values.get("synthetic") is not None:
        synthetic = _known_keys(SyntheticDataConfig, values["synthetic"], f"{where}.synthetic")
        _required(synthetic, "kind", f"{where}.synthetic")
        _required(synthetic, "num_samples", f"{where}.synthetic")
        if "size" in synthetic:
            synthetic["size"] = tuple(synthetic["size"])
        values["synthetic"] = SyntheticDataConfig(**synthetic)
    try:
        return HeadConfig(**values)
    except TypeError as error:
        raise OneVisionConfigError(f"{where}: {error}") from None
