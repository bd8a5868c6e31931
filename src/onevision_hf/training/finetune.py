"""Fine-tune OneVision-LLaVA on LLaVA-style conversations with `transformers.Trainer` (and PEFT LoRA).

Data: JSON or JSONL rows ``{"id", "image" | "images" | "video" | "videos", "conversations": [{"from", "value"}]}``
(``from``: ``human`` / ``user``, ``gpt`` / ``assistant``, ``system``), read with `datasets`; media paths are
relative to ``media_root``. `ConversationCollator` renders each conversation with the processor's chat template,
runs the processor on the whole batch (one packed visual batch, placeholders expanded) and sets ``labels`` to the
input ids on assistant answers (and their end-of-turn token) and -100 everywhere else.

Each component (``encoder``, ``projector``, ``llm``) is ``frozen``, trained in ``full`` or adapted with ``lora``
(PEFT, on the Linear layers whose names are in ``lora_target_modules``); fully trained components ride along as
PEFT ``modules_to_save`` when any LoRA is used, so the adapter directory holds everything that changed.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import OneVisionInputError

# module paths of each component in `OneVisionLlavaForConditionalGeneration` (the LLM: its base model and its head)
COMPONENTS = {"encoder": ("model.vision_tower",), "projector": ("model.multi_modal_projector",),
              "llm": ("model.language_model", "lm_head")}
TRAINING_MODES = ("frozen", "full", "lora")
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
MEDIA_FIELDS = {"image": "images", "images": "images", "video": "videos", "videos": "videos"}


def load_conversations(path):
    """A LLaVA conversation JSON / JSONL file -> `datasets.Dataset`."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise OneVisionInputError(f"conversation file {path} does not exist.")
    try:
        dataset = datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as error:  # datasets raises several types for unreadable JSON
        raise OneVisionInputError(f"{path} is not LLaVA conversation JSON / JSONL: {error}") from None
    if "conversations" not in dataset.column_names:
        raise OneVisionInputError(f"{path} has no 'conversations' field (columns: {dataset.column_names}).")
    return dataset


def to_messages(example: dict) -> list[dict]:
    """LLaVA ``conversations`` turns -> chat-template messages."""
    messages = []
    for turn in example["conversations"]:
        if turn.get("from") not in ROLES:
            raise OneVisionInputError(
                f"sample {example.get('id')!r}: turn 'from' must be one of {sorted(ROLES)}, got {turn.get('from')!r}."
            )
        messages.append({"role": ROLES[turn["from"]], "content": turn["value"]})
    return messages


def media_of(example: dict, media_root: Path) -> dict[str, list[str]]:
    """The sample's image and video paths, resolved against ``media_root``."""
    media = {"images": [], "videos": []}
    for key, kind in MEDIA_FIELDS.items():
        value = example.get(key)
        if value:
            media[kind] += [str(media_root / item) for item in ([value] if isinstance(value, str) else value)]
    return media


def _find(sequence: list[int], pattern: list[int], start: int) -> int:
    """Index of the first occurrence of ``pattern`` in ``sequence`` at or after ``start``, or -1."""
    for index in range(start, len(sequence) - len(pattern) + 1):
        if sequence[index:index + len(pattern)] == pattern:
            return index
    return -1


@dataclass
class ConversationCollator:
    """Conversation rows -> a model batch with ``labels`` on assistant answers only.

    ``processor_kwargs`` go to every processor call (e.g. ``{"num_frames": 8, "max_pixels": 50176}``).
    """

    processor: object
    media_root: Path
    processor_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.answer_start, self.answer_end = self._answer_markers()

    def _answer_markers(self) -> tuple[list[int], list[int]]:
        """Token ids that open an assistant answer and close it, read off the chat template."""
        template = self.processor.apply_chat_template
        probe = [{"role": "user", "content": "x"}]
        prompt = template(probe, add_generation_prompt=True)
        full = template(probe + [{"role": "assistant", "content": "y"}])
        opening = prompt[len(template(probe)):]
        if not opening or not full.startswith(prompt + "y"):
            raise OneVisionInputError(
                "the chat template has no fixed assistant header followed by the answer, so answers cannot be "
                "located for label masking."
            )
        closing = full[len(prompt) + 1:].rstrip()
        tokenizer = self.processor.tokenizer
        return (tokenizer.encode(opening, add_special_tokens=False),
                tokenizer.encode(closing, add_special_tokens=False))

    def answer_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) labels: the ids of every assistant answer and its closing marker, -100 elsewhere."""
        labels = torch.full_like(input_ids, -100)
        for row, ids in enumerate(input_ids.tolist()):
            cursor = _find(ids, self.answer_start, 0)
            while cursor >= 0:
                start = cursor + len(self.answer_start)
                end = _find(ids, self.answer_end, start)
                stop = len(ids) if end < 0 else end + len(self.answer_end)
                labels[row, start:stop] = input_ids[row, start:stop]
                cursor = _find(ids, self.answer_start, stop)
        return labels.masked_fill(attention_mask == 0, -100)

    def __call__(self, examples: list[dict]):
        texts, images, videos = [], [], []
        for example in examples:
            texts.append(self.processor.apply_chat_template(to_messages(example)))
            media = media_of(example, self.media_root)
            images += media["images"]
            videos += media["videos"]
        batch = self.processor(
            text=texts, images=images or None, videos=videos or None, padding=True, padding_side="right",
            return_tensors="pt", **self.processor_kwargs,
        )
        batch["labels"] = self.answer_labels(batch["input_ids"], batch["attention_mask"])
        return batch


def lora_target_pattern(model: nn.Module, components: list[str], module_names: list[str]) -> str:
    """PEFT ``target_modules`` regex: Linear layers named ``module_names`` inside the given components."""
    prefixes = [prefix for component in components for prefix in COMPONENTS[component]]
    pattern = rf"({'|'.join(map(re.escape, prefixes))})(\..*)?\.({'|'.join(map(re.escape, module_names))})"
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for component in components:
        inside = [name for name in linears if name.startswith(tuple(f"{prefix}." for prefix in COMPONENTS[component]))]
        if not any(re.fullmatch(pattern, name) for name in inside):
            available = sorted({name.rsplit(".", 1)[-1] for name in inside})
            raise OneVisionInputError(
                f"LoRA on the {component}: none of its Linear layers is named {module_names}; its Linear names are "
                f"{available}."
            )
    return pattern


def configure_trainable(model, encoder: str = "frozen", projector: str = "full", llm: str = "lora",
                        lora_r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
                        lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "out_proj")):
    """Freeze / fully train / LoRA-adapt each component; returns the model (a `PeftModel` when LoRA is used)."""
    modes = {"encoder": encoder, "projector": projector, "llm": llm}
    for component, mode in modes.items():
        if mode not in TRAINING_MODES:
            raise OneVisionInputError(f"{component} mode must be one of {TRAINING_MODES}, got {mode!r}.")
        for path in COMPONENTS[component]:
            model.get_submodule(path).requires_grad_(mode == "full")
    lora_components = [component for component, mode in modes.items() if mode == "lora"]
    if not lora_components:
        if all(mode == "frozen" for mode in modes.values()):
            raise OneVisionInputError("every component is frozen: nothing would train.")
        return model

    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(
        r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        target_modules=lora_target_pattern(model, lora_components, list(lora_target_modules)),
        modules_to_save=[path for component, mode in modes.items() if mode == "full"
                         for path in COMPONENTS[component]] or None,
    )
    return get_peft_model(model, lora_config)


def finetune(model_dir, data, output_dir, media_root=None, encoder="frozen", projector="full", llm="lora",
             lora_r=8, lora_alpha=16, lora_dropout=0.0,
             lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "out_proj"), max_steps=20,
             batch_size=2, learning_rate=2e-4, gradient_accumulation_steps=1, gradient_checkpointing=False,
             logging_steps=5, seed=0, merge_lora=False, processor_kwargs=None):
    """Train with `transformers.Trainer`, save the result (adapter, merged model or full model) and the processor
    to ``output_dir``; returns the `Trainer` (its ``state.log_history`` holds the losses)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments, set_seed

    set_seed(seed)
    data = Path(data)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    collator = ConversationCollator(processor, Path(media_root) if media_root else data.parent,
                                    processor_kwargs or {})
    if gradient_checkpointing:  # encoder and LM layers recompute activations in the backward pass
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model = configure_trainable(model, encoder, projector, llm, lora_r, lora_alpha, lora_dropout,
                                lora_target_modules)
    arguments = TrainingArguments(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, gradient_accumulation_steps=gradient_accumulation_steps,
        logging_steps=logging_steps, save_strategy="no", report_to="none", remove_unused_columns=False,
        dataloader_num_workers=0, seed=seed, use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=load_conversations(data), data_collator=collator)
    trainer.train()
    trained = trainer.model
    if merge_lora and hasattr(trained, "merge_and_unload"):
        trained = trained.merge_and_unload()
    trained.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return trainer


__all__ = ["ConversationCollator", "configure_trainable", "finetune", "load_conversations"]
