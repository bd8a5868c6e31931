"""Stand-in models for the evaluation runner (they answer from the documents' known answers), the tiny model's
quick configuration, and the fuzz set the metrics are compared with lmms-eval's on."""

import hashlib
import string

from PIL import Image

from onevision_hf.evaluation.runner import Generation, GenerationRequest
from onevision_hf.evaluation.tasks import EvalTask

# predictions and answers the metrics are compared with lmms-eval's on: whitespace, case, numbers, percentages,
# empty strings, unicode (case mappings that change length, fullwidth forms, other digits), option letters
FUZZ_SEEDS = ["200", "45%", "0.45", "45", "1,234.50", "$1,234.50", "3.14e2", "-0", "0", "nan", "inf", "50%%", "١٢٣",
              "INV-4821", "Fire drill", "fire  drill", "B", "b", "(C)", "C)", "A. a circle", "a.", "D:", "E",
              "Option c", "The answer is (D).", "The best answer is B", "I choose A", "答案是C", "(A) or (B)", "A B C",
              "yes", "", " ", "\n", "\t\n", "café", "Ünïcode", "ß", "İstanbul", "ﬁle", "ＳＵＮＳＥＴ", "2x+3=7",
              "B\x00", "the markers", "harvest", "grass", "moves back to the left"]
FUZZ_TRANSFORMS = [lambda s: s, str.upper, str.lower, str.title, lambda s: f"  {s} ", lambda s: s.replace(" ", "  "),
                   lambda s: f"{s}\n", lambda s: f"\t{s}.", lambda s: f"({s})", lambda s: f"The answer is {s}",
                   lambda s: f"{s} because the chart says so, clearly and without doubt"]
FUZZ_PREDICTIONS = sorted({transform(seed) for seed in FUZZ_SEEDS for transform in FUZZ_TRANSFORMS})
FUZZ_TARGETS = ["200", "45%", "0.45", "0", "1,234.50", "INV-4821", "Fire drill", "B", "A", "D", "café", "ß",
                "sunset", "2x+3=7", "", "the markers", "ＳＵＮＳＥＴ", "İstanbul"]


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
