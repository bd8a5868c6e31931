from onevision_hf.evaluation.metrics import anls


def docvqa_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def docvqa_doc_to_text(doc, lmms_eval_specific_kwargs):
    return f"{lmms_eval_specific_kwargs['pre_prompt']}{doc['question']}{lmms_eval_specific_kwargs['post_prompt']}"


def docvqa_process_results(doc, results):
    return {"anls": anls(results[0], doc["answers"])}
