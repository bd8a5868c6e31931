"""The lmms-eval plugin and the bundled tasks under lmms-eval itself, where lmms-eval is installed.

lmms-eval lives in its own environment (it pins av<16, and PyPI's torchvision needs PyPI's torch), so in the
default environment and CI these tests skip. They run in the environment the README's lmms-eval command builds,
which ``tests/test_lmms_eval_environment.py`` builds and runs them in when asked::

    ONEVISION_HF_LMMS_EVAL_ENV=/tmp/lmms-env .venv/bin/python -m pytest tests/test_lmms_eval_environment.py
"""

import importlib
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (its own environment: README, 'Evaluation')")

import lmms_eval_reference as reference  # noqa: E402
from lmms_eval.api.instance import Instance  # noqa: E402

from onevision_hf.evaluation.tasks import TASKS_DIR, load_task, resolve_task_names, task_summaries  # noqa: E402

from eval_helpers import FUZZ_PREDICTIONS, FUZZ_TARGETS, make_quick_tiny_llava  # noqa: E402

BUNDLED = resolve_task_names(["onevision_hf_local"])


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return make_quick_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def lmm(tiny_model_dir):
    from lmms_eval.models import get_model

    return get_model("onevision_llava").create_from_arg_string(f"pretrained={tiny_model_dir}", {"batch_size": 2})


@pytest.fixture(scope="module")
def manager():
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR))


def test_the_entry_point_registers_onevision_llava():
    from lmms_eval.models import get_model

    names = {entry.name for entry in entry_points(group="lmms_eval.models")}
    assert "onevision_llava" in names
    assert get_model("onevision_llava").__name__ == "OneVisionLlavaLmms"


def test_batch_size_auto_starts_at_max_batch_size(tiny_model_dir):
    from lmms_eval.models import get_model

    model_class = get_model("onevision_llava")
    # lmms-eval passes --batch_size as a string ("auto", "auto:N" or "N"), lmms_eval/__main__.py, lines 186-193
    auto = model_class.create_from_arg_string(f"pretrained={tiny_model_dir}",
                                              {"batch_size": "auto", "max_batch_size": 3})
    assert auto.batch_size == 3 and auto.adapter.auto_batch_size
    assert model_class.create_from_arg_string(f"pretrained={tiny_model_dir}", {"batch_size": "4"}).batch_size == 4


def _instance(request_type, arguments, doc_id, task):
    return Instance(request_type=request_type, arguments=arguments, idx=0,
                    metadata={"task": task, "doc_id": doc_id, "repeats": 1})


def test_generate_until_answers_images_several_images_and_videos(lmm):
    chart, video = load_task("chartqa_local"), load_task("videomme_local")
    lmm.task_dict = {"chartqa_local": {"test": chart.docs}, "videomme_local": {"test": video.docs}}
    two_images = lambda doc: [doc["image"], doc["image"].rotate(90)]  # noqa: E731  (a multi-image document)
    kwargs = {"max_new_tokens": 4, "until": ["\n\n"]}
    requests = [
        _instance("generate_until", ("What is shown?", dict(kwargs), chart.doc_to_visual, 0, "chartqa_local", "test"),
                  0, "chartqa_local"),
        _instance("generate_until", ("Compare them.", dict(kwargs), two_images, 1, "chartqa_local", "test"), 1,
                  "chartqa_local"),
        _instance("generate_until", ("Describe.", dict(kwargs), video.visuals, 0, "videomme_local", "test"), 0,
                  "videomme_local"),
    ]
    answers = lmm.generate_until(requests)
    assert len(answers) == 3 and all(isinstance(answer, str) for answer in answers)


def test_no_bundled_name_is_one_of_lmms_evals_own_tasks(manager):
    from lmms_eval.tasks import TaskManager

    own = set(TaskManager().all_tasks)
    ours = {name for summary in task_summaries() for name in (summary.name, *summary.tags)}
    assert not ours & own  # lmms-eval's own names win over --include_path ones (lmms_eval/tasks/__init__.py, 72)
    for summary in task_summaries():
        assert Path(manager.task_index[summary.name]["yaml_path"]) == summary.path
    assert set(manager.match_tasks(["onevision_hf_local"])) == {"onevision_hf_local"}


def test_lmms_eval_reads_the_bundled_data_from_any_folder_with_our_prompts_and_generation_defaults(
        manager, tmp_path, monkeypatch):
    from lmms_eval.tasks import get_task_dict

    monkeypatch.chdir(tmp_path)
    tasks = get_task_dict(BUNDLED, manager)
    assert set(tasks) == set(BUNDLED)
    for name, task in tasks.items():
        ours = load_task(name)
        split = task.config.test_split
        assert len(task.dataset[split]) == len(ours), name
        assert task.config.generation_kwargs == ours.generation_kwargs, name
        for doc_id in range(len(ours)):
            doc = task.dataset[split][doc_id]
            assert task.doc_to_text(doc) == ours.doc_to_text(ours.docs[doc_id]), name
            visuals = task.doc_to_visual(doc)
            for visual, expected in zip(visuals, ours.visuals(ours.docs[doc_id])):
                if isinstance(visual, str):
                    assert Path(visual).is_file() and visual == str(expected), name


def _multiple_choice_task(tmp_path, manager_class):
    """AI2D's bundled documents as an lmms-eval multiple-choice task: one loglikelihood request per option."""
    (tmp_path / "ai2d_mc_check.yaml").write_text(f"""
task: ai2d_mc_check
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {TASKS_DIR / "ai2d" / "test.parquet"}
test_split: test
output_type: multiple_choice
doc_to_visual: !function ai2d_utils.ai2d_doc_to_visual
doc_to_text: "{{{{question}}}}"
doc_to_choice: options
doc_to_target: answer
metric_list:
  - metric: acc
""")
    (tmp_path / "ai2d_utils.py").write_text((TASKS_DIR / "ai2d_utils.py").read_text())
    from lmms_eval.tasks import get_task_dict

    return get_task_dict(["ai2d_mc_check"], manager_class(include_path=str(tmp_path)))["ai2d_mc_check"]


def test_multiple_choice_scoring_picks_the_option_the_model_finds_most_likely(lmm, tmp_path):
    """lmms-eval's multiple_choice scoring takes the argmin of what loglikelihood returns
    (lmms_eval/api/task.py, line 1624): the plugin returns the loss, so that is the most likely option."""
    from lmms_eval.tasks import TaskManager

    from onevision_hf.evaluation.model_adapter import LoglikelihoodRequest

    task = _multiple_choice_task(tmp_path, TaskManager)
    task.build_all_requests(limit=3, rank=0, world_size=1)
    lmm.task_dict = {"ai2d_mc_check": task.dataset}
    results = lmm.loglikelihood(task.instances)
    by_doc = {}
    for instance, result in zip(task.instances, results):
        by_doc.setdefault(instance.doc_id, []).append((instance.idx, instance, result))
    for doc_id, entries in by_doc.items():
        entries.sort(key=lambda entry: entry[0])
        doc = task.dataset["test"][doc_id]
        scores = lmm.adapter.loglikelihood([  # the adapter's own view: mean log-probability per token
            LoglikelihoodRequest(instance.args[0], instance.args[1], [doc["image"].convert("RGB")])
            for _, instance, _ in entries])
        per_token = [score.log_probability / score.num_tokens for score in scores]
        most, least = per_token.index(max(per_token)), per_token.index(min(per_token))
        assert most != least
        lls = [result for _, _, result in entries]
        assert task.process_results({**doc, "answer": most}, lls)["acc"] == 1.0
        assert task.process_results({**doc, "answer": least}, lls)["acc"] == 0.0


def _lmms_eval_function(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def test_the_transcription_of_lmms_evals_metrics_is_faithful(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # lmms_eval.tasks.nextqa.utils reads it at import
    pairs = [(prediction, target) for prediction in FUZZ_PREDICTIONS for target in FUZZ_TARGETS]
    relaxed = _lmms_eval_function("lmms_eval.tasks.chartqa.utils", "relaxed_correctness")
    anls = _lmms_eval_function("lmms_eval.api.metrics", "anls")
    exact = _lmms_eval_function("lmms_eval.api.metrics", "exact_match_hf_evaluate")
    mcq = _lmms_eval_function("lmms_eval.tasks._task_utils.mcq_extract", "extract_mcq_answer")
    mcq_acc = _lmms_eval_function("lmms_eval.tasks.mvbench.utils", "mcq_acc")
    ocrbench = _lmms_eval_function("lmms_eval.tasks.ocrbench.utils", "ocrbench_process_results")
    perception = _lmms_eval_function("lmms_eval.tasks.perceptiontest.val.utils",
                                     "perceptiontest_val_process_results_mc")
    for prediction, target in pairs:
        stripped = prediction.strip()
        assert reference.relaxed_correctness(prediction, target) == relaxed(prediction, target)
        assert reference.anls([target, "B"], [stripped]) == anls([target, "B"], [stripped])
        assert reference.exact_match_hf_evaluate([stripped], [target], ignore_case=True, ignore_punctuation=True) == \
            exact(predictions=[stripped], references=[target], ignore_case=True, ignore_punctuation=True)
        for dataset in ("HME100k", "IIIT5K"):
            doc = {"answer": [target], "dataset": dataset, "question_type": "Doc-oriented VQA"}
            assert reference.ocrbench_score(prediction, [target], dataset) == \
                ocrbench(doc, [prediction])["ocrbench_accuracy"]["score"]
    for prediction in FUZZ_PREDICTIONS:
        assert reference.extract_mcq_answer(prediction, ["A", "B", "C", "D"]) == mcq(prediction, ["A", "B", "C", "D"])
        assert reference.mcq_acc("B", prediction.strip()) == mcq_acc("B", prediction.strip())
        doc = {"answer_id": 1, "video_name": "v", "question": "q"}
        assert reference.perceptiontest_correct(prediction, 1) == perception(doc, [prediction])["accuracy"]["correct"]
    videomme = _lmms_eval_function("lmms_eval.tasks.videomme.utils", "videomme_process_results")
    doc = {"answer": "B", "domain": "Knowledge", "sub_category": "Humanity & History", "task_type": "Counting Problem",
           "question_id": "1", "duration": "short", "videoID": "v"}
    for prediction in FUZZ_PREDICTIONS:
        record = videomme(doc, [prediction])["videomme_perception_score"]
        assert reference.videomme_score(prediction, "B") == (record["pred_answer"], record["score"])


def test_lmms_eval_run_equals_onevision_hf_eval_from_another_folder(tiny_model_dir, tmp_path):
    """``python -m lmms_eval`` on every bundled task, from a folder that is not the repository, scores what
    ``onevision-hf eval`` scores."""
    lmms_out, ours_out = tmp_path / "lmms", tmp_path / "ours"
    include = subprocess.run([sys.executable, "-m", "onevision_hf.cli", "tasks", "--path"], capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout.strip()
    subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "onevision_llava", "--model_args",
                    f"pretrained={tiny_model_dir}", "--tasks", "onevision_hf_local", "--include_path", include,
                    "--batch_size", "auto", "--max_batch_size", "2", "--limit", "2", "--device", "cpu",
                    "--output_path", str(lmms_out)], check=True, cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "onevision_hf.cli", "eval", "--model", str(tiny_model_dir), "--tasks",
                    "onevision_hf_local", "--limit", "2", "--batch-size", "2", "--output", str(ours_out)],
                   check=True, cwd=tmp_path)
    [lmms_results] = lmms_out.rglob("*results.json")
    theirs = json.loads(lmms_results.read_text())["results"]
    ours = json.loads((ours_out / "results.json").read_text())
    for task in BUNDLED:
        metric = load_task(task).metrics[0].name
        assert theirs[task][f"{metric},none"] == pytest.approx(ours[task][metric]), task
