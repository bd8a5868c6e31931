import string
from pathlib import Path

from onevision_hf.evaluation.metrics import mvbench_accuracy, mvbench_option
from onevision_hf.evaluation.tasks import media_path

TASK_DIR = Path(__file__).parent

VIDEO_FOLDERS = {  # MVBench's folder of each sub-task's videos
    "moving_direction": "clevrer/video_validation",
    "action_count": "perception/videos",
}


def mvbench_doc_to_visual(doc, lmms_eval_specific_kwargs):
    folder = VIDEO_FOLDERS[lmms_eval_specific_kwargs["sub_task"]]
    return [media_path(lmms_eval_specific_kwargs, TASK_DIR, "mvbench_video", folder, doc["video"])]


def mvbench_doc_to_text(doc, lmms_eval_specific_kwargs):
    options = "".join(f"({letter}) {candidate}\n" for letter, candidate in zip(string.ascii_uppercase,
                                                                              doc["candidates"]))
    return f"Question:{doc['question']}\nOption:\n{options}{lmms_eval_specific_kwargs['post_prompt']}"


def mvbench_process_results(doc, results):
    target = string.ascii_uppercase[doc["candidates"].index(doc["answer"])]
    score = float(mvbench_option(results[0]) == mvbench_option(target))
    return {"mvbench_accuracy": {"pred_answer": results[0], "gt_answer": target, "score": score}}


def mvbench_aggregate_results(results):
    return mvbench_accuracy(results)
