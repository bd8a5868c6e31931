"""lmms-eval (>= 0.7) model plugin: OneVision-LLaVA as ``--model onevision_llava``.

Installed with ``pip install "onevision-hf[lmms-eval]"``; lmms-eval finds it through the ``lmms_eval.models``
entry point (`manifest`), so no lmms-eval file changes::

    cd assets/eval-data  # relative data files and media paths of the bundled tasks resolve from here
    accelerate launch -m lmms_eval --model onevision_llava --model_args pretrained=DIR --batch_size 4 \\
        --tasks chartqa_local,videomme_local --include_path <onevision_hf>/evaluation/tasks --output_path logs/

Only lmms-eval imports this module (it imports lmms-eval itself). ``generate_until`` takes a document's images
(PIL), several per document included, and video files (paths) as lmms-eval's tasks return them, and answers
in batches of ``batch_size`` through `OneVisionLlavaAdapter`; ``loglikelihood`` scores continuations.
"""

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tqdm.auto import tqdm

from ..errors import OneVisionInputError
from .model_adapter import LoglikelihoodRequest, OneVisionLlavaAdapter
from .runner import GenerationRequest

MODEL_ID = "onevision_llava"


def manifest() -> ModelManifest:
    """The ``lmms_eval.models`` entry point: registers `OneVisionLlavaLmms` as ``onevision_llava``."""
    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.OneVisionLlavaLmms")


def _flatten(visuals) -> list:
    """doc_to_visual's result (a visual, a list, or nested lists) -> a flat list, None entries dropped."""
    if visuals is None:
        return []
    if isinstance(visuals, (list, tuple)):
        return [item for visual in visuals for item in _flatten(visual)]
    return [visuals]


class OneVisionLlavaLmms(lmms):
    """``--model_args pretrained=DIR[,dtype=float32|bfloat16|float16]``; lmms-eval's ``--batch_size`` and
    ``--device`` arrive as keyword arguments (``max_batch_size`` too: batches here have a fixed size)."""

    is_simple = True

    def __init__(self, pretrained: str, batch_size: int | str = 1, device: str | None = None,
                 max_batch_size: int | None = None, dtype: str = "float32", **kwargs):
        super().__init__()
        import torch
        from accelerate import Accelerator

        if kwargs:
            raise OneVisionInputError(f"unknown onevision_llava model_args {sorted(kwargs)}; known: pretrained, "
                                      "dtype.")
        accelerator = Accelerator()
        device = accelerator.device if device is None or accelerator.num_processes > 1 else device
        self.adapter = OneVisionLlavaAdapter.from_pretrained(pretrained, batch_size=int(batch_size), device=device,
                                                             dtype=getattr(torch, dtype))
        self.accelerator = accelerator
        self._rank = accelerator.process_index
        self._world_size = accelerator.num_processes

    @property
    def batch_size(self) -> int:
        return self.adapter.batch_size

    def _visuals(self, doc_to_visual, doc_id, task: str, split: str) -> list:
        return _flatten(doc_to_visual(self.task_dict[task][split][doc_id]))

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers = []
        batch: list[GenerationRequest] = []
        bar = tqdm(total=len(requests), desc="onevision_llava", disable=self.rank != 0)
        for request in requests:
            context, generation_kwargs, doc_to_visual, doc_id, task, split = request.args
            item = GenerationRequest(context, self._visuals(doc_to_visual, doc_id, task, split),
                                     dict(generation_kwargs or {}))
            if batch and (len(batch) == self.batch_size or item.generation_kwargs != batch[0].generation_kwargs):
                answers += [generation.text for generation in self.adapter.generate_until(batch)]
                bar.update(len(batch))
                batch = []
            batch.append(item)
        if batch:
            answers += [generation.text for generation in self.adapter.generate_until(batch)]
            bar.update(len(batch))
        bar.close()
        return answers

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        items = []
        for request in requests:
            context, doc_to_target, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            continuation = doc_to_target if isinstance(doc_to_target, str) else doc_to_target(doc)
            items.append(LoglikelihoodRequest(context, continuation, _flatten(doc_to_visual(doc))))
        return self.adapter.loglikelihood(items)

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("onevision_llava answers single-round tasks (generate_until, loglikelihood).")
