from onevision_hf.evaluation.metrics import videomme_extract_letter

OPTION_PROMPT = ("Select the best answer to the following multiple-choice question based on the video. Respond with "
                 "only the letter (A, B, C, or D) of the correct option.")


def videomme_doc_to_visual(doc):
    return [f"videomme/data/{doc['videoID']}.mp4"]


def videomme_doc_to_text(doc, lmms_eval_specific_kwargs):
    options = "\n".join(doc["options"])
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{OPTION_PROMPT}\n{doc['question']}\n{options}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def videomme_process_results(doc, results):
    score = float(videomme_extract_letter(results[0]).lower() == doc["answer"].lower())
    return {"videomme_perception_score": score, f"videomme_{doc['duration']}": score}
