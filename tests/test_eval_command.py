"""`onevision-hf eval` with a tiny random OneVision-LLaVA on the bundled data: outputs, batching, many processes."""

import json
import subprocess
import sys

import pytest
import torch

from onevision_hf.cli import main
from onevision_hf.errors import OneVisionInputError
from onevision_hf.evaluation.model_adapter import LoglikelihoodRequest, OneVisionLlavaAdapter, parse_batch_size
from onevision_hf.evaluation.runner import GenerationRequest, evaluate_task
from onevision_hf.evaluation.tasks import load_task

from eval_helpers import make_quick_tiny_llava

TASKS = "chartqa_local,mvbench_action_count_local"
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


def test_loglikelihood_marks_the_greedy_continuation_and_its_mean_loss(adapter):
    # a random model's byte-level tokens can decode to half a character, which does not tokenize back: take the
    # first document whose greedy continuation is whole characters
    prompt = "What is shown?"
    for doc in load_task("chartqa_local").docs:
        image = doc["image"]
        greedy = adapter.generate_until([GenerationRequest(prompt, [image], {"max_new_tokens": 3})])[0].text
        if "\ufffd" not in greedy:
            break
    greedy_score, other_score = adapter.loglikelihood([
        LoglikelihoodRequest(prompt, greedy, [image]), LoglikelihoodRequest(prompt, "zebra", [image])])
    assert greedy_score.is_greedy and not other_score.is_greedy
    assert greedy_score.log_probability > other_score.log_probability
    assert greedy_score.log_probability <= 0.0
    # mean_loss is what the model's own loss gives for the continuation's tokens
    inputs = adapter._encode([adapter.chat_prompt(prompt, [image]) + "zebra"], [[image]])
    labels = inputs["input_ids"].clone()
    labels[:, :-other_score.num_tokens] = -100
    with torch.no_grad():
        loss = adapter.model(**inputs, labels=labels).loss
    assert other_score.mean_loss == pytest.approx(loss.item(), abs=1e-5)


def test_generation_stops_at_a_blank_line_by_default_as_under_lmms_eval(adapter, monkeypatch):
    """A task without ``until`` stops at "\\n\\n" (lmms_eval/api/task.py, lines 186-187) in the package's runner
    too: the same answer reaches the metric under both runners."""
    task = load_task("chartqa_local")
    assert task.generation_kwargs["until"] == ["\n\n"]
    tokenizer = adapter.processor.tokenizer
    answer = tokenizer("200\n\nAnd more text.", add_special_tokens=False, return_tensors="pt").input_ids

    def generate(input_ids, **kwargs):
        return torch.cat([input_ids, answer.expand(len(input_ids), -1)], dim=1)

    monkeypatch.setattr(adapter.model, "generate", generate)
    result = evaluate_task(adapter, task, limit=1, progress=False)
    assert result.samples[0]["prediction"] == "200"
    assert result.scores["relaxed_overall"] == 1.0  # the first chart's answer is 200


def test_batch_size_accepts_numbers_and_auto():
    assert parse_batch_size(4) == (4, False) and parse_batch_size("4") == (4, False)
    assert parse_batch_size("auto") == (None, True) and parse_batch_size("auto:3") == (None, True)
    for bad in ("0", "four", "-1"):
        with pytest.raises(OneVisionInputError, match="batch_size"):
            parse_batch_size(bad)


def test_auto_batch_size_halves_on_out_of_memory_and_keeps_every_answer(tiny_model_dir):
    adapter = OneVisionLlavaAdapter.from_pretrained(tiny_model_dir, batch_size="auto", max_batch_size=8)
    tried = []

    def run_batch(batch):  # stands in for a forward pass that runs out of memory above 2 documents
        tried.append(len(batch))
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [item * 10 for item in batch]

    assert adapter._in_batches(list(range(7)), run_batch) == [item * 10 for item in range(7)]
    assert tried == [7, 4, 2, 2, 2, 1] and adapter.batch_size == 2
    fixed = OneVisionLlavaAdapter(adapter.model, adapter.processor, batch_size=4)
    with pytest.raises(RuntimeError, match="out of memory"):  # a fixed batch size is the user's: never changed
        fixed._in_batches(list(range(7)), run_batch)
    with pytest.raises(ValueError, match="not memory"):  # other errors are never retried
        adapter._in_batches([1], lambda batch: (_ for _ in ()).throw(ValueError("not memory")))


def test_eval_rejects_a_directory_without_a_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path), "--tasks", "chartqa_local", "--output", str(tmp_path / "out")]) == 2
    assert "not a saved model directory" in capsys.readouterr().err


def test_accelerate_launch_equals_one_process_document_for_document(tiny_model_dir, single_process_run, tmp_path):
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    "-m", "onevision_hf.cli", "eval", "--model", str(tiny_model_dir), "--tasks", TASKS,
                    "--limit", "3", "--batch-size", "2", "--output", str(tmp_path)], check=True)
    for name in ("results.json", *(f"samples_{task}.jsonl" for task in TASK_NAMES)):
        assert (tmp_path / name).read_text() == (single_process_run / name).read_text(), name
