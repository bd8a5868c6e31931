from onevision_hf.evaluation.metrics import ocrbench_contains


def ocrbench_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def ocrbench_doc_to_text(doc, lmms_eval_specific_kwargs):
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{doc['question'].strip()}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def ocrbench_process_results(doc, results):
    answers = doc["answer"] if isinstance(doc["answer"], list) else [doc["answer"]]
    return {"ocrbench_accuracy": float(ocrbench_contains(results[0].strip(), answers, doc["dataset"]))}
