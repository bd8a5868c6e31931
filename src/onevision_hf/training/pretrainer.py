"""The pretraining loop on accelerate: one CPU process, or ``accelerate launch`` with several (DDP; FSDP through
accelerate's launcher config), with exact checkpoint/resume.

One optimizer step = ``gradient_accumulation_steps`` micro-steps; each micro-step runs the encoder once on the
packed batch of every head (`pretrain_data.PretrainBatches`) and adds ``loss_weight * loss`` of each head's
`ClusterDiscriminationLoss`. Gradients are clipped separately for the backbone and for the class banks (whose
norm is taken over all processes' shards). AdamW, linear warmup then cosine decay (per-group learning rates,
the class banks' scaled by ``class_bank_lr_scale``), bf16 autocast when ``mixed_precision: bf16``.

A checkpoint ``output_dir/checkpoint-NNNNNN/`` holds the encoder (``model/``, a `from_pretrained` directory),
per process the class-bank shard, the optimizer state and the RNG states (safetensors + json), the scheduler and
``trainer_state.json`` (step, data position, loss history; written last, so its presence marks a complete
checkpoint). Resuming restores all of it and replays the data from the saved position, so an interrupted and
resumed run logs the same losses as an uninterrupted one. No pickle is written or read.
"""

import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

from ..errors import OneVisionConfigError
from ..modeling import OneVisionEncoderConfig, OneVisionEncoderModel
from .cluster_loss import ClusterDiscriminationLoss, clip_sharded_grad_norm_
from .pretrain_config import PretrainConfig
from .pretrain_data import PretrainBatches
from .synthetic_data import write_synthetic_dataset

CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.json"
PACKED_KEYS = ("pixel_values", "patch_positions", "cu_seqlens")


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint (one with ``trainer_state.json``) of the highest step, or None."""
    complete = [path for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if (path / TRAINER_STATE).is_file()]
    return max(complete, key=lambda path: int(path.name[len(CHECKPOINT_PREFIX):]), default=None)


class Pretrainer:
    """Builds the encoder, class banks, optimizer, schedule and data of a `PretrainConfig`, then `train`s.

    ``resume_from``: a checkpoint directory, ``"latest"`` (the newest complete one in ``output_dir``, or a fresh
    start when there is none) or None.
    """

    def __init__(self, config: PretrainConfig, resume_from: str | Path | None = None):
        self.config = config
        # cpu=True on CPU-only machines: how accelerate recognises a multi-process (gloo) CPU launch
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available())
        self.output_dir = Path(config.output_dir)
        checkpoint = self._resolve_checkpoint(resume_from)
        self._write_synthetic_datasets()

        encoder = self._build_encoder(checkpoint)
        self.patch_size = encoder.config.patch_size
        self.model = self.accelerator.prepare(encoder)
        device = self.accelerator.device
        self.losses = torch.nn.ModuleDict({
            head.name: ClusterDiscriminationLoss(
                head.num_classes, encoder.config.hidden_size, head.sample_rate, head.margin, head.scale,
                head.false_negative_threshold, head.num_label_slots, seed=config.seed * 1000 + index,
            )
            for index, head in enumerate(config.heads)
        }).to(device)
        self.optimizer = self.accelerator.prepare(self._build_optimizer())
        self.scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            self.optimizer.optimizer, config.warmup_steps, config.max_steps, min_lr_rate=config.min_lr_ratio
        )
        self.batches = PretrainBatches(
            config.heads, self.patch_size, config.max_steps * config.gradient_accumulation_steps, config.seed,
            self.accelerator.process_index, self.accelerator.num_processes,
        )
        self.step = 0
        self.history: list[dict] = []
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)

    # --- construction -----------------------------------------------------------------------------------
    def _resolve_checkpoint(self, resume_from) -> Path | None:
        if resume_from is None:
            return None
        if str(resume_from) == "latest":
            return find_latest_checkpoint(self.output_dir)
        path = Path(resume_from)
        if not (path / TRAINER_STATE).is_file():
            raise OneVisionConfigError(f"{path} is not a complete pretraining checkpoint (no {TRAINER_STATE}).")
        return path

    def _write_synthetic_datasets(self) -> None:
        with self.accelerator.main_process_first():
            for head in self.config.heads:
                if head.synthetic is not None and not Path(head.dataset).exists() and self.accelerator.is_main_process:
                    write_synthetic_dataset(head.synthetic, head.num_classes, head.dataset, head.video_processor)

    def _build_encoder(self, checkpoint: Path | None) -> OneVisionEncoderModel:
        config = self.config
        source = checkpoint / "model" if checkpoint is not None else config.model
        if source is not None:
            encoder = OneVisionEncoderModel.from_pretrained(source, attn_implementation=config.attn_implementation)
            _own_aligned_memory(encoder.parameters())
        else:
            torch.manual_seed(config.seed)
            encoder = OneVisionEncoderModel(
                OneVisionEncoderConfig(**config.model_config, attn_implementation=config.attn_implementation)
            )
        if not encoder.config.use_head:
            raise OneVisionConfigError("pretraining classifies the pooled embedding: the encoder needs use_head=True.")
        if config.gradient_checkpointing:
            encoder.gradient_checkpointing_enable()
        return encoder.train()

    def _build_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        groups = [{"params": [p for p in self.model.parameters() if p.requires_grad],
                   "weight_decay": config.weight_decay}]
        for head in config.heads:
            groups.append({"params": list(self.losses[head.name].parameters()),
                           "lr": config.learning_rate * head.class_bank_lr_scale,
                           "weight_decay": config.class_bank_weight_decay})
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.adam_betas)

    # --- training ---------------------------------------------------------------------------------------
    def train(self, until_step: int | None = None) -> list[dict]:
        """Run optimizer steps up to ``until_step`` (default: ``max_steps``); checkpoint every ``save_every``
        steps and when stopping. Returns the log of every step run so far (resumed runs included)."""
        config = self.config
        last = config.max_steps if until_step is None else min(until_step, config.max_steps)
        accumulation = config.gradient_accumulation_steps
        loader = torch.utils.data.DataLoader(
            self.batches, batch_size=None, sampler=range(self.step * accumulation, last * accumulation),
            num_workers=config.num_workers,
        )
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "pretrain_config.yaml").write_text(yaml.safe_dump(_plain(config.to_dict())))
        batches = iter(loader)
        progress = tqdm(total=last, initial=self.step, desc="pretraining", unit="step",
                        disable=not self.accelerator.is_local_main_process)
        while self.step < last:
            record = self._optimizer_step(batches)
            self.history.append(record)
            progress.update(1)
            progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
            if self.accelerator.is_main_process:
                with open(self.output_dir / "log.jsonl", "a") as log:
                    log.write(json.dumps(record) + "\n")
            if (config.save_every and self.step % config.save_every == 0) or self.step == last:
                self.save_checkpoint()
        progress.close()
        return self.history

    def _optimizer_step(self, batches) -> dict:
        config, accelerator = self.config, self.accelerator
        accumulation = config.gradient_accumulation_steps
        started = time.perf_counter()
        total, per_head = 0.0, {head.name: 0.0 for head in config.heads}
        for micro in range(accumulation):
            batch = next(batches)
            micro_step = self.step * accumulation + micro
            if micro < accumulation - 1:
                with accelerator.no_sync(self.model):
                    loss, head_losses = self._micro_step(batch, micro_step)
            else:
                loss, head_losses = self._micro_step(batch, micro_step)
            total += loss / accumulation
            for name, value in head_losses.items():
                per_head[name] += value / accumulation
        grad_norm = class_bank_grad_norm = None
        if config.max_grad_norm is not None:
            grad_norm = float(accelerator.clip_grad_norm_(self.model.parameters(), config.max_grad_norm))
        if config.class_bank_max_grad_norm is not None:
            class_bank_grad_norm = float(clip_sharded_grad_norm_(self.losses.parameters(),
                                                                 config.class_bank_max_grad_norm))
        learning_rate = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"step": self.step, "loss": total, "head_losses": per_head, "lr": learning_rate,
                "grad_norm": grad_norm, "class_bank_grad_norm": class_bank_grad_norm,
                "seconds": time.perf_counter() - started}

    def _micro_step(self, batch: dict, micro_step: int) -> tuple[float, dict[str, float]]:
        """Forward + backward of one micro-batch; returns its (global) loss and per-head losses."""
        device = self.accelerator.device
        with self.accelerator.autocast():
            pooled = self.model(**{key: batch[key].to(device) for key in PACKED_KEYS}).pooler_output  # (B, D)
        embeddings = pooled.float().split(batch["head_sizes"])
        loss, head_losses = 0.0, {}
        for head, head_embeddings, labels in zip(self.config.heads, embeddings, batch["labels"]):
            head_loss = self.losses[head.name](head_embeddings, labels.to(device), step=micro_step)
            loss = loss + head.loss_weight * head_loss
            head_losses[head.name] = head_loss.item()
        self.accelerator.backward(loss / self.config.gradient_accumulation_steps)
        return loss.item(), head_losses

    # --- checkpoints ------------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        accelerator = self.accelerator
        directory = self.output_dir / f"{CHECKPOINT_PREFIX}{self.step:06d}"
        directory.mkdir(parents=True, exist_ok=True)
        rank = accelerator.process_index
        state_dict = accelerator.get_state_dict(self.model)
        if accelerator.is_main_process:
            accelerator.unwrap_model(self.model).save_pretrained(directory / "model", state_dict=state_dict)
            (directory / "scheduler.json").write_text(json.dumps(self.scheduler.state_dict()))
        shards = {name: loss.shard for name, loss in self.losses.items()}
        save_file({name: loss.class_centers.detach().cpu().contiguous() for name, loss in self.losses.items()},
                  directory / f"class_centers-rank{rank:03d}.safetensors",
                  metadata={name: json.dumps([shard.start, shard.size]) for name, shard in shards.items()})
        tensors, structure = _optimizer_state_to_flat(self.optimizer.state_dict())
        save_file(tensors, directory / f"optimizer-rank{rank:03d}.safetensors")
        (directory / f"optimizer-rank{rank:03d}.json").write_text(json.dumps(structure))
        _save_rng_states(directory, rank)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            accumulation = self.config.gradient_accumulation_steps
            state = {"step": self.step, "micro_step": self.step * accumulation,
                     "world_size": accelerator.num_processes,
                     "data_position": self.batches.data_position(self.step * accumulation),
                     "history": self.history}
            (directory / TRAINER_STATE).write_text(json.dumps(state, indent=1))
        accelerator.wait_for_everyone()
        return directory

    def _load_checkpoint(self, directory: Path) -> None:
        state = json.loads((directory / TRAINER_STATE).read_text())
        if state["world_size"] != self.accelerator.num_processes:
            raise OneVisionConfigError(
                f"{directory} was written by {state['world_size']} processes; resume it with the same number "
                f"(this run has {self.accelerator.num_processes}): the class banks and optimizer are sharded per "
                "process."
            )
        rank = self.accelerator.process_index
        banks = load_file(directory / f"class_centers-rank{rank:03d}.safetensors")
        with torch.no_grad():
            for name, loss in self.losses.items():
                loss.class_centers.copy_(banks[name])
        structure = json.loads((directory / f"optimizer-rank{rank:03d}.json").read_text())
        tensors = load_file(directory / f"optimizer-rank{rank:03d}.safetensors", device=str(self.accelerator.device))
        self.optimizer.load_state_dict(_optimizer_state_from_flat(tensors, structure))
        self.scheduler.load_state_dict(json.loads((directory / "scheduler.json").read_text()))
        _load_rng_states(directory, rank)
        self.step = state["step"]
        self.history = state["history"]


@torch.no_grad()
def _own_aligned_memory(parameters) -> None:
    """Move loaded parameters into freshly allocated memory. The safetensors loader maps tensors at arbitrary
    byte offsets of the file; CPU kernels take other vectorised paths on misaligned data and round differently
    (1e-8), which would make a resumed run drift from the uninterrupted one."""
    for parameter in parameters:
        parameter.data = parameter.data.clone()


def _plain(value):
    """Tuples -> lists, recursively, for yaml.safe_dump."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _optimizer_state_to_flat(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer ``state_dict`` -> (tensors keyed ``"{param}.{name}"``, json-able rest)."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _optimizer_state_from_flat(tensors: dict[str, torch.Tensor], structure: dict) -> dict:
    state: dict[int, dict] = {int(index): dict(values) for index, values in structure["scalars"].items()}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor.clone()  # aligned memory, see `_own_aligned_memory`
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in structure["param_groups"]]
    return {"state": state, "param_groups": groups}


def _save_rng_states(directory: Path, rank: int) -> None:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, directory / f"rng-rank{rank:03d}.safetensors")
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    (directory / f"rng-rank{rank:03d}.json").write_text(json.dumps({
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }))


def _load_rng_states(directory: Path, rank: int) -> None:
    tensors = load_file(directory / f"rng-rank{rank:03d}.safetensors")
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    states = json.loads((directory / f"rng-rank{rank:03d}.json").read_text())
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
