"""The evaluation runner: tasks x a model -> scores, per-document samples, and a summary (Markdown and PNG).

The model is anything with ``generate_until(requests: list[GenerationRequest]) -> list[Generation]`` (the
real one is `model_adapter.OneVisionLlavaAdapter`). Under ``accelerate launch`` every process takes every
``num_processes``-th document, and the records are gathered before scoring, so the scores and samples equal
a single-process run document for document.

Outputs of `write_outputs` in ``OUT/``: ``results.json`` (``{task: {metric: value, "n": count, "stderr":
{metric: value}, "counts": {metric: documents scored}, "visual_tokens_mean": value}}``),
``samples_<task>.jsonl`` (one line per document: ``doc_id``, ``prompt``, ``prediction``, ``target``, ``score``,
``metrics``, ``visual_tokens``), ``summary.md`` and ``summary.png``.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from ..errors import OneVisionInputError
from .tasks import EvalTask


@dataclass
class GenerationRequest:
    """One document's prompt text (without chat template or visual placeholders) and its visuals in order."""

    prompt: str
    visuals: list  # PIL images and video file paths
    generation_kwargs: dict = field(default_factory=dict)


@dataclass
class Generation:
    text: str
    visual_tokens: int = 0  # LLM tokens the document's images and videos occupied


class GenerationModel(Protocol):
    def generate_until(self, requests: list[GenerationRequest]) -> list[Generation]: ...


@dataclass
class TaskResult:
    task: str
    scores: dict  # {metric: value, "n": count, "stderr": {...}, "counts": {...}, "visual_tokens_mean": value}
    samples: list[dict]  # one record per document, in doc_id order
    primary_metric: str


def evaluate_task(model: GenerationModel, task: EvalTask, limit: int | None = None, batch_size: int = 1,
                  progress: bool = True) -> TaskResult:
    """Generate for this process's share of the first ``limit`` documents, gather every process's records,
    score them."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    if batch_size < 1:
        raise OneVisionInputError(f"batch_size must be at least 1, got {batch_size}.")
    if limit is not None and limit < 1:
        raise OneVisionInputError(f"limit must be at least 1, got {limit}.")
    state = PartialState()
    doc_ids = list(range(len(task) if limit is None else min(limit, len(task))))
    mine = doc_ids[state.process_index::state.num_processes]
    records = []
    with tqdm(total=len(mine), desc=task.name, unit="doc", disable=not (progress and state.is_main_process)) as bar:
        for start in range(0, len(mine), batch_size):
            batch = mine[start:start + batch_size]
            docs = [task.docs[doc_id] for doc_id in batch]
            requests = [GenerationRequest(task.doc_to_text(doc), task.visuals(doc), dict(task.generation_kwargs))
                        for doc in docs]
            generations = model.generate_until(requests)
            if len(generations) != len(requests):
                raise OneVisionInputError(
                    f"the model returned {len(generations)} generations for {len(requests)} requests."
                )
            records += [_record(task, doc_id, doc, request, generation)
                        for doc_id, doc, request, generation in zip(batch, docs, requests, generations)]
            bar.update(len(batch))
    if state.num_processes > 1:
        records = gather_object(records)
    records.sort(key=lambda record: record["doc_id"])
    scores = task.aggregate([record["metrics"] for record in records])
    scores["visual_tokens_mean"] = (sum(r["visual_tokens"] for r in records) / len(records)) if records else math.nan
    return TaskResult(task.name, scores, records, task.metrics[0].name)


def _record(task: EvalTask, doc_id: int, doc: dict, request: GenerationRequest, generation: Generation) -> dict:
    prediction = generation.text.strip()
    metrics = task.process_results(doc, [prediction])
    primary = task.metrics[0].name
    return {
        "doc_id": doc_id,
        "prompt": request.prompt,
        "prediction": prediction,
        "target": task.doc_to_target(doc),
        "score": task.doc_score(metrics[primary]) if primary in metrics else None,
        "metrics": metrics,
        "visual_tokens": generation.visual_tokens,
    }


def _finite_or_none(value):
    """NaN -> None (JSON null), recursively, so results.json is strict JSON."""
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_table(results: list[TaskResult]) -> str:
    """A Markdown table: one row per task and metric, values in %."""
    lines = ["| task | metric | value (%) | stderr (%) | n | visual tokens / doc |", "|---|---|---|---|---|---|"]
    for result in results:
        for metric, count in result.scores["counts"].items():
            lines.append(
                f"| {result.task} | {metric} | {_percent(result.scores[metric])} | "
                f"{_percent(result.scores['stderr'][metric])} | {count} | {result.scores['visual_tokens_mean']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def _percent(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{100 * value:.1f}"


def save_summary_chart(results: list[TaskResult], path: Path) -> None:
    """One bar per task: its primary metric in %, with a stderr whisker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{result.task}\n{result.primary_metric}" for result in results]
    values = [100 * _nan_to_zero(result.scores[result.primary_metric]) for result in results]
    errors = [100 * _nan_to_zero(result.scores["stderr"][result.primary_metric]) for result in results]
    figure, axes = plt.subplots(figsize=(7, 0.6 * len(results) + 1.2))
    bars = axes.barh(names, values, xerr=errors, color="#4878a8", capsize=3)
    axes.bar_label(bars, labels=[f"{value:.1f}" for value in values], padding=4, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("score (%)")
    axes.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _nan_to_zero(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def write_outputs(results: list[TaskResult], output_dir: Path) -> None:
    """results.json, samples_<task>.jsonl, summary.md and summary.png under ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    scores = {result.task: _finite_or_none(result.scores) for result in results}
    (output_dir / "results.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    for result in results:
        with open(output_dir / f"samples_{result.task}.jsonl", "w", encoding="utf-8") as file:
            for record in result.samples:
                file.write(json.dumps(_finite_or_none(record), ensure_ascii=False, default=str) + "\n")
    (output_dir / "summary.md").write_text(summary_table(results), encoding="utf-8")
    save_summary_chart(results, output_dir / "summary.png")
