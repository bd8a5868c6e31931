from pathlib import Path

from onevision_hf.evaluation.metrics import first_standalone_letter
from onevision_hf.evaluation.tasks import media_path

TASK_DIR = Path(__file__).parent


def perceptiontest_val_doc_to_visual(doc, lmms_eval_specific_kwargs):
    return [media_path(lmms_eval_specific_kwargs, TASK_DIR, "perceptiontest_val", "videos", f"{doc['video_name']}.mp4")]


def perceptiontest_val_doc_to_text(doc, lmms_eval_specific_kwargs):
    options = "".join(f"\n{letter}. {option}" for letter, option in zip("ABC", doc["options"]))
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{doc['question']}{options}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def perceptiontest_val_doc_to_answer(doc):
    return doc["answer_id"]


def perceptiontest_val_process_results_mc(doc, results):
    letter = first_standalone_letter(results[0])
    return {"accuracy": float("ABCD".find(letter) == int(doc["answer_id"]) if letter else False)}
