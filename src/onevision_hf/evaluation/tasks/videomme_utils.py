from pathlib import Path

from onevision_hf.evaluation.metrics import mcq_answer_letter, videomme_accuracy
from onevision_hf.evaluation.tasks import media_path

TASK_DIR = Path(__file__).parent

OPTION_PROMPT = ("Select the best answer to the following multiple-choice question based on the video. Respond with "
                 "only the letter (A, B, C, or D) of the correct option.")


def videomme_doc_to_visual(doc, lmms_eval_specific_kwargs):
    return [media_path(lmms_eval_specific_kwargs, TASK_DIR, "videomme", "data", f"{doc['videoID']}.mp4")]


def videomme_doc_to_text(doc, lmms_eval_specific_kwargs):
    options = "\n".join(doc["options"])
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{OPTION_PROMPT}\n{doc['question']}\n{options}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def videomme_process_results(doc, results):
    pred_answer = mcq_answer_letter(results[0], "ABCD")
    record = {"pred_answer": pred_answer, "answer": doc["answer"],
              "score": float(pred_answer.lower() == doc["answer"].lower())}
    return {"videomme_perception_score": record, f"videomme_{doc['duration']}": record}


def videomme_aggregate_results(results):
    return videomme_accuracy(results)
