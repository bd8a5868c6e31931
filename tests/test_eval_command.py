"""`onevision-hf eval` with a tiny random OneVision-LLaVA on the bundled data: outputs, batching, many processes."""

import json
import subprocess
import sys

import pytest

from onevision_hf.cli import main
from onevision_hf.evaluation.model_adapter import LoglikelihoodRequest, OneVisionLlavaAdapter
from onevision_hf.evaluation.runner import GenerationRequest
from onevision_hf.evaluation.tasks import load_task

from eval_helpers import make_quick_tiny_llava

TASKS = "chartqa,mvbench_action_count_local"
TASK_NAMES = ("chartqa_local", "mvbench_action_count_local")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """The tiny model, its processor set to 112 x 112 images and 16-frame videos to keep CPU generation quick."""
    directory = tmp_path_factory.mktemp("tiny-llava")
    make_quick_tiny_llava(directory)
    return directory


@pytest.fixture(scope="module")
def adapter(tiny_model_dir):
    return OneVisionLlavaAdapter.from_pretrained(tiny_model_dir, batch_size=1)


@pytest.fixture(scope="module")
def single_process_run(tiny_model_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("eval-single")
    main(["eval", "--model", str(tiny_model_dir), "--tasks", TASKS, "--limit", "3", "--batch-size", "2",
          "--output", str(output)])
    return output


def test_eval_writes_results_samples_and_summary(single_process_run):
    scores = json.loads((single_process_run / "results.json").read_text())
    assert set(scores) == set(TASK_NAMES)
    assert scores["chartqa_local"]["n"] == 3
    assert 0.0 <= scores["chartqa_local"]["relaxed_overall"] <= 1.0
    assert scores["chartqa_local"]["visual_tokens_mean"] == 8 * 8  # a 112 x 112 crop in 14-pixel patches
    samples = [json.loads(line) for line in (single_process_run / "samples_mvbench_action_count_local.jsonl")
               .read_text().splitlines()]
    assert [sample["doc_id"] for sample in samples] == [0, 1, 2]
    assert all(0 < sample["visual_tokens"] < 16 * 8 * 8 for sample in samples)  # codec-selected, not dense
    assert "| chartqa_local | relaxed_overall |" in (single_process_run / "summary.md").read_text()
    assert (single_process_run / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batched_generation_equals_one_document_at_a_time(adapter):
    requests = []  # two images and two videos in one batch
    for name in TASK_NAMES:
        task = load_task(name)
        requests += [GenerationRequest(task.doc_to_text(doc), task.visuals(doc), {"max_new_tokens": 8})
                     for doc in (task.docs[0], task.docs[1])]
    one_by_one = [adapter.generate_until([request])[0] for request in requests]
    adapter.batch_size = 4
    try:
        batched = adapter.generate_until(requests)
    finally:
        adapter.batch_size = 1
    assert [g.text for g in batched] == [g.text for g in one_by_one]
    assert [g.visual_tokens for g in batched] == [g.visual_tokens for g in one_by_one]
    assert len({g.text for g in batched}) > 1  # the documents' answers differ: the visuals reach the model


def test_loglikelihood_marks_the_greedy_continuation(adapter):
    # a random model's byte-level tokens can decode to half a character, which does not tokenize back: take the
    # first document whose greedy continuation is whole characters
    prompt = "What is shown?"
    for doc in load_task("chartqa_local").docs:
        image = doc["image"]
        greedy = adapter.generate_until([GenerationRequest(prompt, [image], {"max_new_tokens": 3})])[0].text
        if "\ufffd" not in greedy:
            break
    (greedy_score, is_greedy), (other_score, other_is_greedy) = adapter.loglikelihood([
        LoglikelihoodRequest(prompt, greedy, [image]), LoglikelihoodRequest(prompt, "zebra", [image])])
    assert is_greedy and not other_is_greedy
    assert greedy_score > other_score
    assert greedy_score <= 0.0


def test_eval_rejects_a_directory_without_a_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path), "--tasks", "chartqa", "--output", str(tmp_path / "out")]) == 2
    assert "not a saved model directory" in capsys.readouterr().err


def test_accelerate_launch_equals_one_process_document_for_document(tiny_model_dir, single_process_run, tmp_path):
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    "-m", "onevision_hf.cli", "eval", "--model", str(tiny_model_dir), "--tasks", TASKS,
                    "--limit", "3", "--batch-size", "2", "--output", str(tmp_path)], check=True)
    for name in ("results.json", *(f"samples_{task}.jsonl" for task in TASK_NAMES)):
        assert (tmp_path / name).read_text() == (single_process_run / name).read_text(), name
