"""`ProbeConfig`: every hyperparameter of an attentive-probe run (`probe.py`), importable without torch."""

from dataclasses import dataclass

from ..errors import OneVisionInputError

INPUT_MODES = ("codec", "frames")


@dataclass
class ProbeConfig:
    """Every hyperparameter of a probe run."""

    input_mode: str = "codec"
    budget: int = 2048  # tokens per video
    num_frames: int = 16  # frames sampled for codec selection
    num_queries: int = 1
    num_heads: int = 4
    mlp_ratio: float = 4.0
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.input_mode not in INPUT_MODES:
            raise OneVisionInputError(f"input must be one of {INPUT_MODES}, got {self.input_mode!r}.")
        for name in ("budget", "num_frames", "num_queries", "num_heads", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise OneVisionInputError(f"{name} must be at least 1, got {getattr(self, name)}.")
