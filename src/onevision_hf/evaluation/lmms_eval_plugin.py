"""lmms-eval (0.7.3 and later 0.7 releases) model plugin: OneVision-LLaVA as ``--model onevision_llava``.

Installed with the ``lmms-eval`` extra in its own environment (README, "Evaluation"); lmms-eval finds it through
the ``lmms_eval.models`` entry point (`manifest`), so no lmms-eval file changes. From any folder::

    accelerate launch -m lmms_eval --model onevision_llava --model_args pretrained=DIR --batch_size auto \\
        --tasks onevision_hf_local --include_path "$(onevision-hf tasks --path)" --output_path logs/

Only lmms-eval imports this module (it imports lmms-eval itself). It follows lmms-eval's conventions:

- ``--batch_size N``, ``auto`` or ``auto:N`` (`model_adapter.parse_batch_size`; ``--max_batch_size`` bounds
  ``auto``);
- ``generate_until`` takes the generation kwargs lmms-eval's task config completed (``until: ["\\n\\n"]`` by
  default, the same defaults `onevision_hf.evaluation.tasks.generation_kwargs_with_defaults` gives the package's
  own runner), a document's images (PIL, several per document included) and video files (paths), and answers in
  batches through `OneVisionLlavaAdapter`;
- ``loglikelihood`` returns, per request, ``(mean cross-entropy of the continuation's tokens, is_greedy)``: the
  loss, as lmms-eval's own models return it (``lmms_eval/models/simple/llava.py``, lines 267-274), because
  lmms-eval's multiple-choice scoring picks the option with the *smallest* value (``lmms_eval/api/task.py``, line
  1624: ``pred = np.argmin(lls)``), although its ``lmms.loglikelihood`` docstring speaks of log-probabilities.
"""

from itertools import groupby

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
    """``--model_args pretrained=DIR[,dtype=float32|bfloat16|float16]``; lmms-eval's ``--batch_size``,
    ``--max_batch_size`` and ``--device`` arrive as keyword arguments."""

    is_simple = True

    def __init__(self, pretrained: str, batch_size: int | str = 1, device: str | None = None,
                 max_batch_size: int | None = None, dtype: str = "float32", **kwargs):
        super().__init__()
        import torch
        from accelerate import Accelerator

        if kwargs:
            raise OneVisionInputError(f"unknown onevision_llava model_args {sorted(kwargs)}; known: pretrained, "
                                      "dtype.")
        if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
            raise OneVisionInputError(f"dtype must name a torch dtype (float32, bfloat16, float16), got {dtype!r}.")
        accelerator = Accelerator()
        device = accelerator.device if device is None or accelerator.num_processes > 1 else device
        self.adapter = OneVisionLlavaAdapter.from_pretrained(pretrained, batch_size=batch_size, device=device,
                                                             dtype=getattr(torch, dtype), max_batch_size=max_batch_size)
        self.accelerator = accelerator
        self._rank = accelerator.process_index
        self._world_size = accelerator.num_processes

    @property
    def batch_size(self) -> int:
        """The current batch size (with ``auto``: the largest that has fitted so far)."""
        return self.adapter.batch_size

    def _visuals(self, doc_to_visual, doc_id, task: str, split: str) -> list:
        return _flatten(doc_to_visual(self.task_dict[task][split][doc_id]))

    def generate_until(self, requests: list[Instance]) -> list[str]:
        items = []
        for request in requests:
            context, generation_kwargs, doc_to_visual, doc_id, task, split = request.args
            items.append(GenerationRequest(context, self._visuals(doc_to_visual, doc_id, task, split),
                                           dict(generation_kwargs or {})))
        answers = []
        with tqdm(total=len(items), desc=MODEL_ID, disable=self.rank != 0) as bar:
            # a batch shares its generation kwargs: consecutive requests with equal kwargs go to the adapter together
            for _, group in groupby(items, key=lambda item: repr(sorted(item.generation_kwargs.items()))):
                group = list(group)
                answers += [generation.text for generation in self.adapter.generate_until(group)]
                bar.update(len(group))
        return answers

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        items = []
        for request in requests:
            context, doc_to_target, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            continuation = doc_to_target if isinstance(doc_to_target, str) else doc_to_target(doc)
            items.append(LoglikelihoodRequest(context, continuation, _flatten(doc_to_visual(doc))))
        return [(score.mean_loss, score.is_greedy) for score in self.adapter.loglikelihood(items)]

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("onevision_llava answers single-round tasks (generate_until, loglikelihood).")
