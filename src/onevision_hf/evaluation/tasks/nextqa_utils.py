import random
from pathlib import Path

from onevision_hf.evaluation.metrics import mmmu_parse_choice
from onevision_hf.evaluation.tasks import media_path

TASK_DIR = Path(__file__).parent

OPTIONS = ["A", "B", "C", "D", "E"]


def nextqa_doc_to_visual(doc, lmms_eval_specific_kwargs):
    return [media_path(lmms_eval_specific_kwargs, TASK_DIR, "nextqa", "NExTVideo", f"{doc['video']}.mp4")]


def nextqa_doc_to_text_mc(doc, lmms_eval_specific_kwargs):
    options = [f"{letter}. {doc[f'a{index}'].strip()}" for index, letter in enumerate(OPTIONS)]
    question = "\n".join([doc["question"].strip(), *options])
    return f"{lmms_eval_specific_kwargs['pre_prompt']}{question}{lmms_eval_specific_kwargs['post_prompt']}"


def nextqa_doc_to_target(doc):
    return OPTIONS[doc["answer"]]


def nextqa_mc_process_results(doc, results):
    index_to_answer = {letter: doc[f"a{index}"].strip() for index, letter in enumerate(OPTIONS)}
    rng = random.Random(f"{doc['video']}/{doc['qid']}")  # the published fallback is random; seeded per question
    return {"exact_match": float(mmmu_parse_choice(results[0], index_to_answer, rng) == nextqa_doc_to_target(doc))}
