"""The attentive probe: the encoder's own video-classification benchmark (the released protocol).

The encoder is frozen; each video's tokens are computed once. A head of learned queries cross-attends to one
video's tokens (`AttentiveProbe`: cross-attention block, then a linear classifier on the mean query) and is
trained with AdamW, label smoothing and a warm-up + cosine learning rate; the validation accuracy of the best
and of the final epoch are both reported.

Inputs, at the same token budget K per video (`ProbeConfig.budget`):

* ``codec``: K patches chosen by codec-guided selection over ``num_frames`` uniformly sampled frames;
* ``frames``: every patch of ``K // (grid_h * grid_w)`` uniformly sampled frames.

Both go through `OneVisionVideoProcessor` (the one decoding and placement path). Video lists are CSV files with
a header ``path,label`` (paths relative to the CSV's folder; labels any strings).
"""

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import OneVisionInputError
from ..modeling.packed_attention import split_lengths
from .probe_config import INPUT_MODES, ProbeConfig

__all__ = ["INPUT_MODES", "AttentiveProbe", "ProbeConfig", "ProbeResult", "run_probe"]


@dataclass
class ProbeResult:
    best_accuracy: float
    best_epoch: int  # 1-based
    final_accuracy: float
    accuracy_per_epoch: list[float]
    loss_per_epoch: list[float]  # mean training loss
    tokens_per_video: float  # mean over the training videos
    classes: list[str]
    config: dict = field(default_factory=dict)


class AttentiveProbe(nn.Module):
    """Learned queries -> cross-attention over one video's tokens (+ MLP, pre-norm) -> linear classifier."""

    def __init__(self, hidden_size: int, num_classes: int, config: ProbeConfig):
        super().__init__()
        if hidden_size % config.num_heads:
            raise OneVisionInputError(f"the encoder width {hidden_size} is not divisible by num_heads "
                                      f"{config.num_heads}.")
        self.queries = nn.Parameter(torch.randn(1, config.num_queries, hidden_size) * 0.02)
        self.norm_tokens = nn.LayerNorm(hidden_size)
        self.attention = nn.MultiheadAttention(hidden_size, config.num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(hidden_size)
        mlp_size = int(hidden_size * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, mlp_size), nn.GELU(), nn.Linear(mlp_size, hidden_size))
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, L, D) padded, padding_mask (B, L) True at padding -> logits (B, num_classes)."""
        queries = self.queries.expand(tokens.shape[0], -1, -1)  # (B, Q, D)
        keys = self.norm_tokens(tokens)
        pooled = queries + self.attention(queries, keys, keys, key_padding_mask=padding_mask, need_weights=False)[0]
        pooled = pooled + self.mlp(self.norm_mlp(pooled))  # (B, Q, D)
        return self.classifier(pooled.mean(1))


def read_video_list(path: Path) -> list[tuple[Path, str]]:
    """A ``path,label`` CSV -> [(video path, label)], paths resolved against the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise OneVisionInputError(f"video list {path} does not exist.")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise OneVisionInputError(f"{path}: the header must name the columns 'path' and 'label', got "
                                      f"{reader.fieldnames}.")
        rows = [(path.parent / row["path"], row["label"]) for row in reader]
    if not rows:
        raise OneVisionInputError(f"{path} lists no videos.")
    missing = [str(video) for video, _ in rows if not video.is_file()]
    if missing:
        raise OneVisionInputError(f"{path}: video file(s) not found: {missing[:5]}.")
    return rows


def video_processor_for(encoder_config, config: ProbeConfig):
    """The video processor of the input mode, placed on the encoder's patch and temporal grids."""
    from ..processors.video_processing_onevision import OneVisionVideoProcessor

    return OneVisionVideoProcessor(patch_size=encoder_config.patch_size,
                                   rope_temporal_size=encoder_config.rope_temporal_size,
                                   num_frames=config.num_frames, budget=config.budget)


def select_video_patches(processor, video: Path, config: ProbeConfig):
    """The `VideoSelection` of one video under the input mode, at most ``budget`` patches either way."""
    if config.input_mode == "codec":
        return processor.select(video)
    _, grid_h, grid_w = processor.select(video, num_frames=1, budget=1.0).grid_size
    num_frames = config.budget // (grid_h * grid_w)
    if num_frames < 1:
        raise OneVisionInputError(f"{video}: a budget of {config.budget} tokens is less than one whole frame "
                                  f"({grid_h} x {grid_w} patches); raise --budget.")
    return processor.select(video, num_frames=num_frames, budget=1.0, keep_first_frame=False)


@torch.no_grad()
def encode_videos(encoder, processor, videos: list[Path], config: ProbeConfig, batch_size: int = 8,
                  desc: str = "encoding") -> list[torch.Tensor]:
    """One (L_i, D) float32 tensor of frozen-encoder tokens per video."""
    features = []
    for start in tqdm(range(0, len(videos), batch_size), desc=desc, unit="batch"):
        selections = [select_video_patches(processor, video, config) for video in videos[start:start + batch_size]]
        inputs = processor.pack(selections)
        output = encoder(pixel_values=inputs["pixel_values"].to(encoder.device, encoder.dtype),
                         patch_positions=inputs["patch_positions"].to(encoder.device),
                         cu_seqlens=inputs["cu_seqlens"].to(encoder.device))
        features += [tokens.float().cpu() for tokens in
                     output.last_hidden_state.split(split_lengths(inputs["cu_seqlens"]))]  # (L_i, D) each
    return features


def _pad(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length (L_i, D) -> (B, L_max, D) zero-padded and the (B, L_max) padding mask."""
    tokens = nn.utils.rnn.pad_sequence(features, batch_first=True)
    lengths = torch.tensor([len(item) for item in features])
    return tokens, torch.arange(tokens.shape[1])[None] >= lengths[:, None]


def _learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_probe(train_features: list[torch.Tensor], train_labels: list[int], val_features: list[torch.Tensor],
                val_labels: list[int], num_classes: int, config: ProbeConfig) -> tuple[AttentiveProbe, dict]:
    """Train the head on cached features; returns it (final epoch) and the per-epoch accuracy and loss."""
    torch.manual_seed(config.seed)
    probe = AttentiveProbe(train_features[0].shape[-1], num_classes, config)
    decay = [p for name, p in probe.named_parameters() if p.ndim >= 2 and name != "queries"]
    no_decay = [p for name, p in probe.named_parameters() if p.ndim < 2 or name == "queries"]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    labels = torch.tensor(train_labels)
    steps_per_epoch = math.ceil(len(train_features) / config.batch_size)
    total_steps, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    generator = torch.Generator().manual_seed(config.seed)
    history = {"accuracy": [], "loss": []}
    step = 0
    for _ in tqdm(range(config.epochs), desc="probe epochs", unit="epoch"):
        probe.train()
        losses = []
        for batch in torch.randperm(len(train_features), generator=generator).split(config.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, total_steps, warmup, config.learning_rate)
            tokens, mask = _pad([train_features[i] for i in batch.tolist()])
            loss = loss_fn(probe(tokens, mask), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        history["loss"].append(sum(losses) / len(losses))
        history["accuracy"].append(evaluate_probe(probe, val_features, val_labels, config.batch_size))
    return probe, history


@torch.no_grad()
def evaluate_probe(probe: AttentiveProbe, features: list[torch.Tensor], labels: list[int], batch_size: int) -> float:
    """Top-1 accuracy."""
    probe.eval()
    correct = 0
    for start in range(0, len(features), batch_size):
        tokens, mask = _pad(features[start:start + batch_size])
        predictions = probe(tokens, mask).argmax(-1)
        correct += int((predictions == torch.tensor(labels[start:start + batch_size])).sum())
    return correct / len(features)


def run_probe(encoder, train_csv: Path, val_csv: Path, config: ProbeConfig) -> tuple[AttentiveProbe, ProbeResult]:
    """Encode both video lists with the frozen encoder, train the head, report best and final accuracy."""
    train, val = read_video_list(train_csv), read_video_list(val_csv)
    classes = sorted({label for _, label in train})
    unknown = sorted({label for _, label in val} - set(classes))
    if unknown:
        raise OneVisionInputError(f"{val_csv}: label(s) {unknown} never occur in {train_csv}.")
    encoder = encoder.eval().requires_grad_(False)
    processor = video_processor_for(encoder.config, config)
    train_features = encode_videos(encoder, processor, [video for video, _ in train], config, desc="train videos")
    val_features = encode_videos(encoder, processor, [video for video, _ in val], config, desc="val videos")
    index = {label: i for i, label in enumerate(classes)}
    probe, history = train_probe(train_features, [index[label] for _, label in train], val_features,
                                 [index[label] for _, label in val], len(classes), config)
    accuracy = history["accuracy"]
    best_epoch = max(range(len(accuracy)), key=accuracy.__getitem__)
    result = ProbeResult(
        best_accuracy=accuracy[best_epoch],
        best_epoch=best_epoch + 1,
        final_accuracy=accuracy[-1],
        accuracy_per_epoch=accuracy,
        loss_per_epoch=history["loss"],
        tokens_per_video=sum(len(item) for item in train_features) / len(train_features),
        classes=classes,
        config=asdict(config),
    )
    return probe, result
