"""Stand-in models for the evaluation runner: they answer from the documents' known answers."""

import hashlib
import string

from PIL import Image

from onevision_hf.evaluation.runner import Generation, GenerationRequest
from onevision_hf.evaluation.tasks import EvalTask


def correct_answer(task: EvalTask, doc: dict) -> str:
    """What a perfect model answers, in the form each task's instructions ask for."""
    if task.name.startswith("mvbench"):
        return string.ascii_uppercase[doc["candidates"].index(doc["answer"])]
    if task.name.startswith("perceptiontest"):
        return "ABC"[doc["answer_id"]]
    target = task.doc_to_target(doc)
    return target[0] if isinstance(target, list) else str(target)


def fingerprint(prompt: str, visuals: list) -> tuple:
    """A request's identity: its prompt and the content of its images / the paths of its videos."""
    return (prompt, *(hashlib.md5(visual.tobytes()).hexdigest() if isinstance(visual, Image.Image) else str(visual)
                      for visual in visuals))


class OracleModel:
    """Answers every document of the given tasks correctly; records the batches it was given."""

    def __init__(self, tasks: list[EvalTask]):
        self.answers = {}
        for task in tasks:
            for doc in task.docs:
                self.answers[fingerprint(task.doc_to_text(doc), task.visuals(doc))] = correct_answer(task, doc)
        self.batches: list[list[GenerationRequest]] = []

    def generate_until(self, requests: list[GenerationRequest]) -> list[Generation]:
        self.batches.append(requests)
        return [Generation(f" {self.answers[fingerprint(request.prompt, request.visuals)]}\n",
                           visual_tokens=10 * len(request.visuals))
                for request in requests]


class SilentModel:
    """Answers nothing."""

    def generate_until(self, requests: list[GenerationRequest]) -> list[Generation]:
        return [Generation("") for _ in requests]


def make_quick_tiny_llava(directory):
    """The tiny random LLaVA, its processor set to 112 x 112 images and 16-frame videos for quick CPU generation."""
    import argparse
    import json

    from onevision_hf.commands.make_tiny_llava import run as make_tiny_llava

    from paths import ASSETS, TINY_ENCODER

    make_tiny_llava(argparse.Namespace(output_dir=directory, encoder=TINY_ENCODER, text=ASSETS / "tiny-llm",
                                       projector_type="mlp2x_gelu", seed=0))
    config = json.loads((directory / "processor_config.json").read_text())
    config["image_processor"]["resize_mode"] = "shorter-crop:112"
    config["video_processor"]["num_frames"] = 16
    (directory / "processor_config.json").write_text(json.dumps(config))
    return directory
