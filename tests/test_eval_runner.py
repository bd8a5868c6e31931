"""Tasks as data and the runner, driven by stand-in models over the bundled sample data."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from onevision_hf.errors import OneVisionInputError
from onevision_hf.evaluation.runner import evaluate_task, summary_table, write_outputs
from onevision_hf.evaluation.tasks import TASKS_DIR, load_task, read_task_yaml, resolve_task_names

from eval_helpers import OracleModel, SilentModel

BUNDLED_TASKS = ["ai2d_local", "chartqa_local", "docvqa_val_local", "mvbench_action_count_local",
                 "mvbench_moving_direction_local", "nextqa_mc_test_local", "ocrbench_local",
                 "perceptiontest_val_mc_local", "videomme_local"]


@pytest.fixture(scope="module")
def all_tasks():
    return [load_task(name) for name in resolve_task_names(["onevision_hf_local"])]


def test_tags_select_the_bundled_tasks_and_short_names_are_refused_with_a_hint():
    assert sorted(resolve_task_names(["onevision_hf_local"])) == BUNDLED_TASKS
    assert resolve_task_names(["mvbench_local", "mvbench_action_count_local"]) == [
        "mvbench_action_count_local", "mvbench_moving_direction_local"]
    # lmms-eval's own "chartqa" reads the hub and would win over ours under --include_path: never a name here
    with pytest.raises(OneVisionInputError, match="unknown task 'chartqa' \\(did you mean 'chartqa_local'\\?\\)"):
        resolve_task_names(["chartqa"])
    with pytest.raises(OneVisionInputError, match="unknown task 'chartqb'.*chartqa_local"):
        resolve_task_names(["chartqb"])


def test_bundled_data_is_found_beside_the_task_files_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = load_task("videomme_local")
    assert task.data_root == TASKS_DIR
    video = Path(task.visuals(task.docs[0])[0])
    assert video.is_absolute() and video.is_file() and video.is_relative_to(TASKS_DIR)


def test_data_root_replaces_the_task_folder_for_data_files_and_media(tmp_path):
    for folder in ("videomme",):
        shutil.copytree(TASKS_DIR / folder, tmp_path / folder)
    task = load_task("videomme_local", data_root=tmp_path)
    video = Path(task.visuals(task.docs[0])[0])
    assert video.is_relative_to(tmp_path) and video.is_file()
    assert len(task) == len(load_task("videomme_local"))
    (tmp_path / "videomme" / "test.parquet").unlink()
    with pytest.raises(OneVisionInputError, match=f"videomme/test.parquet.*not found under {tmp_path}"):
        load_task("videomme_local", data_root=tmp_path)


def test_generation_kwargs_default_as_lmms_eval_completes_them(tmp_path):
    """lmms_eval/api/task.py, lines 178-196 (TaskConfig.__post_init__): until defaults to [fewshot_delimiter],
    "\\n\\n" by default (line 133); a task without generation_kwargs generates greedily until it."""
    assert load_task("chartqa_local").generation_kwargs == {"max_new_tokens": 16, "temperature": 0.0,
                                                             "do_sample": False, "until": ["\n\n"]}
    config = (TASKS_DIR / "chartqa.yaml").read_text()
    shutil.copy(TASKS_DIR / "chartqa_utils.py", tmp_path)
    (tmp_path / "chartqa").symlink_to(TASKS_DIR / "chartqa")
    variants = {
        "no_kwargs": (config.replace("generation_kwargs:\n  max_new_tokens: 16\n  temperature: 0\n  do_sample: false\n",
                                     ""), {"until": ["\n\n"], "do_sample": False}),
        "own_delimiter": (config + 'fewshot_delimiter: "\\n###\\n"\n',
                          {"max_new_tokens": 16, "temperature": 0.0, "do_sample": False, "until": ["\n###\n"]}),
        "own_until": (config.replace("  do_sample: false\n", "  do_sample: false\n  until: [\"Q:\"]\n"),
                      {"max_new_tokens": 16, "temperature": 0.0, "do_sample": False, "until": ["Q:"]}),
    }
    for name, (text, expected) in variants.items():
        (tmp_path / "chartqa.yaml").write_text(text.replace('task: "chartqa_local"', f'task: "chartqa_{name}"'))
        assert load_task(f"chartqa_{name}", include_paths=[tmp_path]).generation_kwargs == expected, name


def test_every_task_has_documents_with_visuals_on_disk(all_tasks):
    assert len(all_tasks) == len(BUNDLED_TASKS)
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
        # OCRBench reports correct answers / 1000 (its published total), as lmms-eval does
        expected = len(task) / 1000 if task.name == "ocrbench_local" else 1.0
        assert result.scores[result.primary_metric] == expected, (task.name, result.samples)
        assert result.scores["n"] == len(task)
        assert all(record["score"] == 1.0 for record in result.samples)


def test_a_silent_model_scores_zero(all_tasks):
    for task in all_tasks:
        if task.name.startswith("nextqa"):  # the published NExT-QA parser guesses a random option
            continue
        result = evaluate_task(SilentModel(), task, progress=False)
        assert result.scores[result.primary_metric] == 0.0, task.name  # MVBench: no answer at all scores 0


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
    config = read_task_yaml(TASKS_DIR / "mvbench_moving_direction.yaml")
    assert config["task"] == "mvbench_moving_direction_local"
    assert config["output_type"] == "generate_until"  # from the included template
    assert callable(config["process_results"]) and callable(config["metric_list"][0]["aggregation"])


def test_missing_data_is_reported_with_the_path(tmp_path):
    with pytest.raises(OneVisionInputError, match="chartqa/test.parquet.*not found"):
        load_task("chartqa_local", data_root=tmp_path)
