from onevision_hf.evaluation.metrics import ocrbench_contains, ocrbench_final_score


def ocrbench_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def ocrbench_doc_to_text(doc, lmms_eval_specific_kwargs):
    return (f"{lmms_eval_specific_kwargs['pre_prompt']}{doc['question'].strip()}"
            f"{lmms_eval_specific_kwargs['post_prompt']}")


def ocrbench_process_results(doc, results):
    answers = doc["answer"] if isinstance(doc["answer"], list) else [doc["answer"]]
    score = ocrbench_contains(results[0].strip(), answers, doc["dataset"])
    return {"ocrbench_accuracy": {"question_type": doc["question_type"], "score": score}}


def ocrbench_aggregate_accuracy(results):
    return ocrbench_final_score(results)
