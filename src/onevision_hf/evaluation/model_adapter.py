"""`OneVisionLlavaAdapter`: a OneVision-LLaVA model and its processor behind the evaluation interface.

``generate_until`` answers batches of documents with one ``generate`` call per batch (prompts left-padded, the
batch's images and videos packed into one encoder call by the model); ``loglikelihood`` scores continuations
the same way with one forward pass per batch. Each document's visuals become ``<image>`` / ``<video>`` parts
of one user turn, in their order, followed by the prompt text; the processor's chat template formats the turn.

``batch_size`` is a number, or ``"auto"`` (lmms-eval's ``--batch_size auto``; ``"auto:N"`` is taken as ``"auto"``):
batches start at ``max_batch_size`` and halve whenever a batch runs out of memory (accelerate's
``should_reduce_batch_size``: CUDA, XPU and CPU allocator errors), the failed batch is retried at the smaller size
and that size is kept. On a CPU the operating system rarely reports an allocation failure as an error (it ends
the process instead), so bound ``max_batch_size`` there.
"""

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import OneVisionInputError
from .runner import Generation, GenerationRequest

GREEDY_DEFAULTS = {"max_new_tokens": 128, "temperature": 0.0, "top_p": None, "num_beams": 1}
DEFAULT_MAX_BATCH_SIZE = 64  # where batch_size="auto" starts (lm-evaluation-harness' HFLM default)


@dataclass
class LoglikelihoodRequest:
    """A prompt (with its visuals) and a continuation whose log-probability is wanted."""

    prompt: str
    continuation: str
    visuals: list


@dataclass(frozen=True)
class ContinuationScore:
    """How a model scores a continuation of a prompt."""

    log_probability: float  # log P(continuation | prompt, visuals), summed over the continuation's tokens
    num_tokens: int
    is_greedy: bool  # greedy decoding from the prompt would produce exactly the continuation

    @property
    def mean_loss(self) -> float:
        """The mean cross-entropy per continuation token (what ``model(..., labels=...).loss`` gives)."""
        return -self.log_probability / self.num_tokens


def parse_batch_size(value: int | str) -> tuple[int | None, bool]:
    """``4`` / ``"4"`` -> ``(4, False)``; ``"auto"`` / ``"auto:N"`` -> ``(None, True)``."""
    text = str(value).strip()
    if text == "auto" or text.startswith("auto:"):
        return None, True
    try:
        size = int(text)
    except ValueError:
        raise OneVisionInputError(f"batch_size must be a positive integer or 'auto', got {value!r}.") from None
    if size < 1:
        raise OneVisionInputError(f"batch_size must be at least 1, got {size}.")
    return size, False


def _is_video(visual) -> bool:
    return isinstance(visual, (str, Path))


class OneVisionLlavaAdapter:
    """Evaluation interface (`runner.GenerationModel`, plus ``loglikelihood``) of a OneVision-LLaVA model."""

    def __init__(self, model, processor, batch_size: int | str = 1, max_batch_size: int | None = None):
        size, self.auto_batch_size = parse_batch_size(batch_size)
        max_batch_size = DEFAULT_MAX_BATCH_SIZE if max_batch_size is None else int(max_batch_size)
        if max_batch_size < 1:
            raise OneVisionInputError(f"max_batch_size must be at least 1, got {max_batch_size}.")
        self.model = model.eval()
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.batch_size = max_batch_size if self.auto_batch_size else size
        self.visual_token_ids = torch.tensor([processor.image_token_id, processor.video_token_id])

    @classmethod
    def from_pretrained(cls, path, batch_size: int | str = 1, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, max_batch_size: int | None = None
                        ) -> "OneVisionLlavaAdapter":
        """Load a saved model directory (model + processor, as `make-tiny-llava` or training writes it)."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        import onevision_hf  # noqa: F401  (registers the Auto classes)

        path = Path(path)
        if not (path / "config.json").is_file():
            raise OneVisionInputError(f"{path} is not a saved model directory (no config.json).")
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, AutoProcessor.from_pretrained(path), batch_size, max_batch_size)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def chat_prompt(self, prompt: str, visuals: list) -> str:
        """One user turn: a placeholder per visual (in order), then the prompt; ready for the assistant's reply."""
        parts = [{"type": "video" if _is_video(visual) else "image"} for visual in visuals]
        messages = [{"role": "user", "content": [*parts, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _encode(self, texts: list[str], visuals: list[list]) -> dict:
        """Left-padded token ids and the batch's packed images and videos, on the model's device."""
        flat = [visual for document in visuals for visual in document]
        images = [visual for visual in flat if not _is_video(visual)]
        videos = [str(visual) for visual in flat if _is_video(visual)]
        inputs = self.processor(text=texts, images=images or None, videos=videos or None, padding=True,
                                return_tensors="pt")
        return {key: value.to(self.device) for key, value in inputs.items()}

    def _visual_token_counts(self, input_ids: torch.Tensor) -> list[int]:
        return torch.isin(input_ids.cpu(), self.visual_token_ids).sum(-1).tolist()

    def generate_until(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Greedy (or sampled, with ``temperature`` > 0) answers, cut at the first ``until`` string."""
        return self._in_batches(requests, self._generate_batch)

    def _in_batches(self, requests: list, run_batch) -> list:
        """``run_batch`` over consecutive batches of ``batch_size`` requests, halving the size on out-of-memory
        errors in ``auto`` mode (the failed batch is run again)."""
        from accelerate.utils.memory import clear_device_cache, should_reduce_batch_size

        results, start = [], 0
        while start < len(requests):
            size = self.batch_size
            try:
                results += run_batch(requests[start:start + size])
            except Exception as error:
                if not (self.auto_batch_size and size > 1 and should_reduce_batch_size(error)):
                    raise
                self.batch_size = size // 2
                clear_device_cache(garbage_collection=True)
                continue
            start += size
        return results

    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        kwargs = {**GREEDY_DEFAULTS, **requests[0].generation_kwargs}
        if any(request.generation_kwargs != requests[0].generation_kwargs for request in requests):
            raise OneVisionInputError("a batch's requests must share their generation_kwargs.")
        until = kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        temperature = float(kwargs.pop("temperature"))
        do_sample = temperature > 0
        texts = [self.chat_prompt(request.prompt, request.visuals) for request in requests]
        inputs = self._encode(texts, [request.visuals for request in requests])
        tokenizer = self.processor.tokenizer
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=int(kwargs["max_new_tokens"]),
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=kwargs["top_p"] if do_sample else None,
                num_beams=int(kwargs["num_beams"]),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        answers = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        counts = self._visual_token_counts(inputs["input_ids"])
        return [Generation(_cut_at_stop(answer, until), count) for answer, count in zip(answers, counts)]

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[ContinuationScore]:
        """Each continuation's log-probability given its prompt and visuals, its token count, and whether greedy
        decoding would produce it."""
        return self._in_batches(requests, self._loglikelihood_batch)

    def _loglikelihood_batch(self, requests: list[LoglikelihoodRequest]) -> list[ContinuationScore]:
        contexts = [self.chat_prompt(request.prompt, request.visuals) for request in requests]
        texts = [context + request.continuation for context, request in zip(contexts, requests)]
        tokenizer = self.processor.tokenizer
        lengths = [len(tokenizer(text, add_special_tokens=False).input_ids)
                   - len(tokenizer(context, add_special_tokens=False).input_ids)
                   for text, context in zip(texts, contexts)]
        if min(lengths) < 1:
            raise OneVisionInputError("a loglikelihood continuation is empty after tokenization.")
        inputs = self._encode(texts, [request.visuals for request in requests])
        with torch.inference_mode():
            logits = self.model(**inputs).logits.float()  # (B, L, V), prompts left-padded: continuations at the end
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1)  # position i predicts token i + 1
        targets = inputs["input_ids"][:, 1:]
        results = []
        for row, length in enumerate(lengths):
            row_log_probs, row_targets = log_probs[row, -length:], targets[row, -length:]  # (n, V), (n,)
            total = row_log_probs.gather(-1, row_targets[:, None]).sum().item()
            results.append(ContinuationScore(total, length, bool((row_log_probs.argmax(-1) == row_targets).all())))
        return results


def _cut_at_stop(text: str, until: list[str]) -> str:
    """The text before the first occurrence of any stop string."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text
