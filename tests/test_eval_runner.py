"""Tasks as data and the runner, driven by stand-in models over the bundled sample data."""

import json
from pathlib import Path

import pytest
from PIL import Image

from onevision_hf.errors import OneVisionInputError
from onevision_hf.evaluation.runner import evaluate_task, summary_table, write_outputs
from onevision_hf.evaluation.tasks import load_task, read_task_yaml, resolve_task_names

from eval_helpers import OracleModel, SilentModel

ALL_TAGS = ["ai2d", "chartqa", "docvqa", "ocrbench", "videomme", "mvbench", "perceptiontest", "nextqa"]


@pytest.fixture(scope="module")
def all_tasks():
    return [load_task(name) for name in resolve_task_names(ALL_TAGS)]


def test_tags_name_the_published_benchmarks():
    assert resolve_task_names(["chartqa", "docvqa", "videomme"]) == ["chartqa_local", "docvqa_val_local",
                                                                     "videomme_local"]
    assert resolve_task_names(["mvbench", "mvbench_action_count_local"]) == [
        "mvbench_action_count_local", "mvbench_moving_direction_local"]
    with pytest.raises(OneVisionInputError, match="unknown task 'chartqb'.*chartqa"):
        resolve_task_names(["chartqb"])


def test_every_task_has_documents_with_visuals_on_disk(all_tasks):
    assert len(all_tasks) == 9
    for task in all_tasks:
        assert len(task) >= 3, task.name
        for doc in task.docs:
            assert isinstance(task.doc_to_text(doc), str) and task.doc_to_text(doc)
            visuals = task.visuals(doc)
            assert len(visuals) == 1
            assert isinstance(visuals[0], Image.Image) or Path(visuals[0]).is_file(), (task.name, visuals)


def test_a_perfect_model_scores_full_marks_on_every_task(all_tasks):
    model = OracleModel(all_tasks)
    for task in all_tasks:
        result = evaluate_task(model, task, progress=False)
        assert result.scores[result.primary_metric] == 1.0, (task.name, result.samples)
        assert result.scores["n"] == len(task)
        assert all(record["score"] == 1.0 for record in result.samples)


def test_a_silent_model_scores_zero(all_tasks):
    for task in all_tasks:
        if task.name.startswith("nextqa"):  # the published NExT-QA parser guesses a random option
            continue
        result = evaluate_task(SilentModel(), task, progress=False)
        expected = float("nan") if task.name.startswith("mvbench") else 0.0  # MVBench skips empty answers
        assert result.scores[result.primary_metric] == pytest.approx(expected, nan_ok=True), task.name


def test_video_mme_reports_accuracy_by_duration():
    task = load_task("videomme_local")
    scores = evaluate_task(OracleModel([task]), task, progress=False).scores
    durations = [doc["duration"] for doc in task.docs]
    assert {"short", "medium", "long"} <= set(durations)
    for duration in ("short", "medium", "long"):
        assert scores[f"videomme_{duration}"] == 1.0
        assert scores["counts"][f"videomme_{duration}"] == durations.count(duration)
    assert scores["n"] == len(durations)


def test_limit_and_batch_size_shape_the_calls():
    task = load_task("chartqa_local")
    model = OracleModel([task])
    result = evaluate_task(model, task, limit=5, batch_size=2, progress=False)
    assert [len(batch) for batch in model.batches] == [2, 2, 1]
    assert [record["doc_id"] for record in result.samples] == [0, 1, 2, 3, 4]
    assert result.scores["n"] == 5
    with pytest.raises(OneVisionInputError, match="batch_size"):
        evaluate_task(model, task, batch_size=0)


def test_outputs_hold_scores_samples_and_a_summary(tmp_path):
    tasks = [load_task("chartqa_local"), load_task("videomme_local")]
    results = [evaluate_task(OracleModel(tasks), task, limit=3, progress=False) for task in tasks]
    write_outputs(results, tmp_path)
    scores = json.loads((tmp_path / "results.json").read_text())
    assert scores["chartqa_local"]["relaxed_overall"] == 1.0
    assert scores["chartqa_local"]["n"] == 3
    assert scores["chartqa_local"]["stderr"]["relaxed_overall"] == 0.0
    assert scores["videomme_local"]["videomme_long"] is None  # no long video among the first 3: null, not NaN
    assert scores["videomme_local"]["visual_tokens_mean"] == 10.0
    lines = (tmp_path / "samples_chartqa_local.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert [sample["doc_id"] for sample in samples] == [0, 1, 2]
    assert samples[0]["prediction"] == "200" and samples[0]["target"] == "200" and samples[0]["score"] == 1.0
    assert {"prompt", "metrics", "visual_tokens"} <= set(samples[0])
    table = (tmp_path / "summary.md").read_text()
    assert table == summary_table(results)
    assert "| chartqa_local | relaxed_overall | 100.0 | 0.0 | 3 | 10 |" in table
    with Image.open(tmp_path / "summary.png") as chart:
        assert chart.format == "PNG"


def test_task_files_merge_includes_and_import_their_functions():
    from onevision_hf.evaluation.tasks import TASKS_DIR

    config = read_task_yaml(TASKS_DIR / "mvbench" / "mvbench_moving_direction.yaml")
    assert config["task"] == "mvbench_moving_direction_local"
    assert config["output_type"] == "generate_until"  # from the included template
    assert callable(config["process_results"]) and callable(config["metric_list"][0]["aggregation"])


def test_missing_data_is_reported_with_the_path(tmp_path):
    with pytest.raises(OneVisionInputError, match="chartqa/test.parquet.*not found"):
        load_task("chartqa_local", data_root=tmp_path)
