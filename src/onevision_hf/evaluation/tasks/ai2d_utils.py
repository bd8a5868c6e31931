from onevision_hf.evaluation.metrics import exact_match, leading_option_letter


def ai2d_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def ai2d_doc_to_text(doc, lmms_eval_specific_kwargs):
    letters = [chr(ord("A") + index) for index in range(len(doc["options"]))]
    choices = "\n".join(f"{letter}. {option}" for letter, option in zip(letters, doc["options"]))
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{doc['question']}\n{choices}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def ai2d_doc_to_target(doc):
    return chr(ord("A") + int(doc["answer"]))


def ai2d_process_results(doc, results):
    return {"exact_match": float(exact_match(leading_option_letter(results[0]), ai2d_doc_to_target(doc)))}
