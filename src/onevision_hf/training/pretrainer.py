"""The pretraining loop on accelerate: one CPU process, or ``accelerate launch`` with several (DDP; FSDP through
accelerate's launcher config), with exact checkpoint/resume.

One optimizer step = ``gradient_accumulation_steps`` micro-steps; each micro-step runs the encoder once on the
packed batch of every head (`pretrain_data.PretrainBatches`) and adds ``loss_weight * loss`` of each head's
`ClusterDiscriminationLoss`. Gradients are clipped separately for the backbone and for the class banks (whose
norm is taken over all processes' shards). AdamW, linear warmup then cosine decay (per-group learning rates,
the class banks' scaled by ``class_bank_lr_scale``), bf16 autocast when ``mixed_precision: bf16``.

A checkpoint ``output_dir/checkpoint-NNNNNN/`` holds the encoder (``model/``, a `from_pretrained` directory),
per process the class-bank shard, the optimizer state and the RNG states (safetensors + json), the scheduler and
``trainer_state.json`` (step, data position, loss history, and the size and sha256 of every other file). It is
written atomically: every file goes into a hidden staging folder, ``trainer_state.json`` last (by rename), then the
folder is renamed into place, so a ``checkpoint-NNNNNN`` folder is always complete. Resuming verifies the files
against ``trainer_state.json`` (a truncated or corrupt file is named), restores all of it and replays the data
from the saved position, so an interrupted and resumed run logs the same losses as an uninterrupted one;
``--resume latest`` skips corrupt checkpoints, saying so, for the newest intact one. No pickle is written or read.

One output_dir holds one run, and ``log.jsonl`` holds exactly its steps: starting without ``resume_from`` in a
folder that already has checkpoints or a log is refused; resuming rewrites the log from the checkpoint's history.
"""

import hashlib
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

from ..errors import OneVisionConfigError, OneVisionInputError
from ..modeling import OneVisionEncoderConfig, OneVisionEncoderModel
from ..pipeline import load_strict
from .cluster_loss import ClusterDiscriminationLoss, clip_sharded_grad_norm_
from .pretrain_config import PretrainConfig
from .pretrain_data import PretrainBatches
from .synthetic_data import write_synthetic_dataset

CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.json"
LOG_FILE = "log.jsonl"
PACKED_KEYS = ("pixel_values", "patch_positions", "cu_seqlens")
logger = logging.getLogger(__name__)


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The ``checkpoint-NNNNNN`` folders of ``output_dir``, newest first."""
    found = [path for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*")
             if path.is_dir() and path.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda path: int(path.name[len(CHECKPOINT_PREFIX):]), reverse=True)


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint that `verify_checkpoint` accepts, or None; each newer corrupt one is logged."""
    intact = _newest_intact_checkpoint(output_dir)
    return intact[0] if intact is not None else None


def _newest_intact_checkpoint(output_dir: str | Path) -> tuple[Path, dict] | None:
    for checkpoint in checkpoints(output_dir):
        try:
            return checkpoint, verify_checkpoint(checkpoint)
        except OneVisionInputError as error:
            logger.warning("skipping corrupt checkpoint %s: %s", checkpoint.name, error)
    return None


def verify_checkpoint(directory: str | Path) -> dict:
    """``trainer_state.json`` of a checkpoint whose files all match the sizes and sha256 it lists; raise
    `OneVisionInputError` naming the first missing, truncated or corrupt file."""
    directory = Path(directory)
    state_file = directory / TRAINER_STATE
    if not state_file.is_file():
        raise OneVisionInputError(f"{state_file} is missing: {directory} is not a complete pretraining checkpoint.")
    try:
        state = json.loads(state_file.read_text())
        files = state["files"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise OneVisionInputError(f"{state_file} is truncated or corrupt ({error}).") from None
    for relative, expected in files.items():
        path = directory / relative
        if not path.is_file():
            raise OneVisionInputError(f"{path} is missing from the checkpoint.")
        size = path.stat().st_size
        if size != expected["size"]:
            raise OneVisionInputError(f"{path} is truncated or overwritten ({size} bytes, {expected['size']} written).")
        if _sha256(path) != expected["sha256"]:
            raise OneVisionInputError(f"{path} is corrupt (its sha256 differs from the one written).")
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


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
        checkpoint, self.checkpoint_state = self._resolve_checkpoint(resume_from)
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
    def _resolve_checkpoint(self, resume_from) -> tuple[Path | None, dict | None]:
        """The checkpoint to resume from and its verified state, by the rule that one output_dir holds one run."""
        if resume_from is None:
            existing = checkpoints(self.output_dir)
            log = self.output_dir / LOG_FILE
            if existing or (log.is_file() and log.stat().st_size):
                held = f"{len(existing)} checkpoint(s), newest {existing[0].name}" if existing else f"a {LOG_FILE}"
                raise OneVisionConfigError(
                    f"output_dir {self.output_dir} already holds a pretraining run ({held}); continue it with "
                    "--resume latest (resume_from='latest'), or give another output_dir (--output-dir) or delete it "
                    "to start over."
                )
            return None, None
        if str(resume_from) != "latest":
            return Path(resume_from), verify_checkpoint(resume_from)  # an error names the bad file
        intact, existing = _newest_intact_checkpoint(self.output_dir), checkpoints(self.output_dir)
        if intact is None and existing:
            raise OneVisionInputError(
                f"no intact checkpoint in {self.output_dir}: {', '.join(path.name for path in existing)} are all "
                "corrupt (see the warnings); delete them to start over."
            )
        if intact is None:
            return None, None
        if intact[0] != existing[0]:
            logger.warning("resuming from %s, the newest intact checkpoint (newer ones are corrupt)", intact[0].name)
        return intact

    def _write_synthetic_datasets(self) -> None:
        with self.accelerator.main_process_first():
            for head in self.config.heads:
                if head.synthetic is not None and not Path(head.dataset).exists() and self.accelerator.is_main_process:
                    write_synthetic_dataset(head.synthetic, head.num_classes, head.dataset, head.video_processor)

    def _build_encoder(self, checkpoint: Path | None) -> OneVisionEncoderModel:
        config = self.config
        source = checkpoint / "model" if checkpoint is not None else config.model
        if source is not None:
            encoder = load_strict(OneVisionEncoderModel, source, attn_implementation=config.attn_implementation,
                                  allow_missing_weights=checkpoint is None and config.allow_missing_weights)
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
            # the log holds exactly this run's steps: those of the checkpoint resumed from, then the new ones
            _atomic_write_text(self.output_dir / LOG_FILE, "".join(json.dumps(r) + "\n" for r in self.history))
        batches = iter(loader)
        progress = tqdm(total=last, initial=self.step, desc="pretraining", unit="step",
                        disable=not self.accelerator.is_local_main_process)
        while self.step < last:
            record = self._optimizer_step(batches)
            self.history.append(record)
            progress.update(1)
            progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
            if self.accelerator.is_main_process:
                with open(self.output_dir / LOG_FILE, "a") as log:
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
        """Write ``checkpoint-NNNNNN`` atomically (see the module docstring); every process writes its shards."""
        accelerator = self.accelerator
        final = self.output_dir / f"{CHECKPOINT_PREFIX}{self.step:06d}"
        directory = self.output_dir / f".{final.name}.partial"
        if accelerator.is_main_process:
            shutil.rmtree(directory, ignore_errors=True)  # left by a run killed while saving
            directory.mkdir(parents=True)
        accelerator.wait_for_everyone()
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
            files = {path.relative_to(directory).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
                     for path in sorted(directory.rglob("*")) if path.is_file()}
            state = {"step": self.step, "micro_step": self.step * accumulation,
                     "world_size": accelerator.num_processes,
                     "data_position": self.batches.data_position(self.step * accumulation),
                     "history": self.history, "files": files}
            _atomic_write_text(directory / TRAINER_STATE, json.dumps(state, indent=1))  # the marker, last
            _replace_directory(directory, final)
        accelerator.wait_for_everyone()
        return final

    def _load_checkpoint(self, directory: Path) -> None:
        state = self.checkpoint_state
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


def _replace_directory(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` (the same step saved again) is moved aside first."""
    if target.exists():
        previous = target.with_name(f".{target.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
        os.replace(source, target)
        shutil.rmtree(previous)
    else:
        os.replace(source, target)


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
