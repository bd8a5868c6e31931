"""The published scoring rules: on the edge cases their definitions name, and equal to lmms-eval 0.7.3's code
(`lmms_eval_reference`, a transcription of it) on a fuzz set of predictions."""

import itertools
import math
import random

import lmms_eval_reference as reference
import pytest

from onevision_hf.evaluation.metrics import (
    anls,
    exact_match,
    first_standalone_letter,
    leading_option_letter,
    levenshtein_distance,
    mcq_answer_letter,
    mean_stderr,
    mmmu_parse_choice,
    mvbench_accuracy,
    mvbench_option,
    ocrbench_contains,
    ocrbench_final_score,
    relaxed_correctness,
    videomme_accuracy,
)
from onevision_hf.evaluation.tasks import load_task

from eval_helpers import FUZZ_PREDICTIONS as PREDICTIONS
from eval_helpers import FUZZ_TARGETS as TARGETS


@pytest.mark.parametrize("prediction, target, correct", [
    ("104", "100", True),  # 4 % off: within the 5 % tolerance
    ("106", "100", False),
    ("95", "100", True),  # exactly 5 % below still counts
    ("94.9", "100", False),
    ("45%", "0.45", True),  # a trailing % divides by 100
    ("45%", "45", False),  # ... so a percent answer against a bare-number target is 100x off
    ("45%", "45%", True),
    ("Jun", "jun", True),  # non-numbers: case-insensitive exact match
    ("June", "Jun", False),
    ("12 kg", "12", False),  # units make it a string: exact match fails
    ("", "12", False),  # empty prediction
    ("", "", True),
    ("0", "0", True),  # a zero target cannot be divided by: string comparison
    ("0.0", "0", False),
    ("Ünïcode", "üNÏCODE", True),
])
def test_chartqa_relaxed_accuracy(prediction, target, correct):
    assert relaxed_correctness(prediction, target) is correct


def test_levenshtein_distance_counts_edits():
    assert levenshtein_distance("kitten", "sitting") == 3
    assert levenshtein_distance("", "abc") == 3
    assert levenshtein_distance("same", "same") == 0


@pytest.mark.parametrize("prediction, answers, expected", [
    ("INV-4821", ["INV-4821", "4821"], 1.0),
    ("  inv-4821 ", ["INV-4821"], 1.0),  # case and surrounding whitespace ignored
    ("Fire   drill", ["fire drill"], 1.0),  # inner whitespace collapsed
    ("INV-4812", ["INV-4821"], 1 - 2 / 8),  # two substitutions out of 8 characters
    ("4821", ["INV-4821", "4821"], 1.0),  # the closest answer counts
    ("drill", ["fire drill"], 0.5),  # similarity 0.5 is kept ...
    ("ill", ["fire drill"], 0.0),  # ... below the 0.5 threshold it is 0
    ("", ["fire drill"], 0.0),  # empty prediction
    ("", [""], 1.0),
    ("café", ["cafe"], 0.75),  # unicode characters are single characters
    ("fire  dril", ["fire drill"], 1 - 1 / 10),  # lmms-eval divides by the raw lengths (10), not 9 ...
    ("  fire dril  ", ["fire drill"], 1 - 1 / 13),  # ... surrounding whitespace included
    ("ß", ["ss"], 0.0),  # one character, upper-cased "SS": distance 2 of length 2
])
def test_docvqa_anls(prediction, answers, expected):
    assert anls(prediction, answers) == pytest.approx(expected)


def test_anls_of_a_very_long_prediction_is_zero_and_fast():
    assert anls("the markers " * 2000, ["the markers"]) == 0.0


def test_anls_needs_a_reference():
    with pytest.raises(ValueError, match="reference"):
        anls("x", [])


@pytest.mark.parametrize("prediction, answers, dataset, score", [
    ("The word is HARVEST.", ["harvest"], "IIIT5K", 1),  # contained, case-insensitive
    ("harvest", ["harvests"], "IIIT5K", 0),  # the answer must be inside the prediction, not the reverse
    ("ＳＵＮＳＥＴ", ["sunset"], "WordArt", 1),  # fullwidth ASCII folded
    ("first\nline", ["first line"], "SROIE", 1),  # newlines read as spaces
    ("", ["6.20"], "SROIE", 0),  # empty prediction
    ("2x + 3 = 7", ["2x+3=7"], "HME100k", 1),  # handwritten maths ignores spaces
    ("2x + 3 = 7", ["2x+3=7"], "IIIT5K", 0),  # ... other datasets do not
    ("no idea", ["a", "idea"], "IIIT5K", 1),  # any of several answers
])
def test_ocrbench_containment(prediction, answers, dataset, score):
    assert ocrbench_contains(prediction, answers, dataset) == score


@pytest.mark.parametrize("response, letter", [
    ("B", "B"),
    ("The best answer is C.", "C"),  # a letter ending the response outranks the others
    ("The answer is (D)", "D"),
    ("A, but maybe C", "A"),  # a letter starting the response ranks highest
    ("(B) is wrong; it is D", "D"),
    ("Between (A) and (B), (B)", "B"),  # within one format, the last mention wins
    ("", ""),  # empty prediction
    ("I think it might be the second one", ""),  # no option letter anywhere ("I" is not one)
    ("E", ""),  # not one of A-D
    ("\u00c0 la B", "B"),  # accented capitals are not option letters
])
def test_videomme_letter_extraction(response, letter):
    assert mcq_answer_letter(response) == letter


def test_ai2d_letter_then_exact_match():
    assert leading_option_letter("B. a triangle") == "B"
    assert leading_option_letter("  C.") == "C"
    assert leading_option_letter("The answer is B") == "The answer is B"  # no leading "X.": kept whole
    assert exact_match(leading_option_letter("(b)"), "B")  # case and punctuation ignored
    assert not exact_match(leading_option_letter("The answer is B"), "B")
    assert not exact_match(leading_option_letter(""), "B")
    assert not exact_match(leading_option_letter("A B"), "B")  # several letters do not match one


@pytest.mark.parametrize("response, letter", [
    ("B", "B"), ("(C) blue", "C"), ("A and B", "A"), ("", ""), ("ABBA", ""), ("D", "D"), ("E", ""),
])
def test_perceptiontest_first_standalone_letter(response, letter):
    assert first_standalone_letter(response) == letter


@pytest.mark.parametrize("prediction, normalised", [
    ("B. down", "B"),  # "X. text" form
    ("(C)", "C"),
    ("Option c", "C"),  # a standalone letter, any case
    ("left", "left"),  # no letter: the normalised text
    ("", ""),
    ("A) up\n", "A"),
])
def test_mvbench_option_normalisation(prediction, normalised):
    assert mvbench_option(prediction) == normalised


OPTIONS = {"A": "stops", "B": "moves back to the left", "C": "disappears", "D": "turns blue", "E": "jumps up"}


@pytest.mark.parametrize("response, choice", [
    ("B", "B"),
    ("(C)", "C"),
    ("B.", "B"),  # trailing punctuation stripped
    ("The ball (A) or rather (D)", "D"),  # several bracketed letters: the last mention wins
    ("I am quite sure that the ball moves back to the left", "B"),  # option text in a long answer
])
def test_nextqa_mmmu_parser(response, choice):
    assert mmmu_parse_choice(response, OPTIONS, random.Random(0)) == choice


def test_nextqa_parser_falls_back_to_a_seeded_random_option():
    picks = {mmmu_parse_choice("", OPTIONS, random.Random(seed)) for seed in range(20)}
    assert picks <= set(OPTIONS) and len(picks) > 1
    assert mmmu_parse_choice("", OPTIONS, random.Random(3)) == mmmu_parse_choice("", OPTIONS, random.Random(3))


def test_aggregates_count_as_lmms_eval_does():
    assert ocrbench_final_score([{"question_type": "Doc-oriented VQA", "score": 1}] * 8) == 8 / 1000
    with pytest.raises(ValueError, match="Handwriting Recognitionn"):
        ocrbench_final_score([{"question_type": "Handwriting Recognitionn", "score": 1}])
    assert videomme_accuracy([{"pred_answer": "a", "answer": "A"}]) == 0.0  # the aggregate is case-sensitive
    assert videomme_accuracy([]) == 0.0
    assert mvbench_accuracy([{"pred_answer": "", "score": 0}, {"pred_answer": "B", "score": 1}]) == 1.0
    assert mvbench_accuracy([{"pred_answer": "", "score": 0}]) == 0.0


def test_mean_stderr_is_the_standard_error_of_the_mean():
    assert mean_stderr([0.0, 1.0, 0.0, 1.0]) == pytest.approx(math.sqrt(1 / 3 / 4))
    assert math.isnan(mean_stderr([1.0]))


# --- equal to lmms-eval 0.7.3 on a fuzz set ---------------------------------------------------------------------

def test_the_fuzz_set_covers_whitespace_case_numbers_percentages_empty_strings_and_unicode():
    assert len(PREDICTIONS) > 400
    assert {"", " ", "\n"} <= set(PREDICTIONS)
    assert any(not prediction.isascii() for prediction in PREDICTIONS)
    assert any(prediction.endswith("%") for prediction in PREDICTIONS)


def test_chartqa_relaxed_accuracy_equals_lmms_eval():
    for prediction, target in itertools.product(PREDICTIONS, TARGETS):
        assert relaxed_correctness(prediction, target) == reference.relaxed_correctness(prediction, target), (
            prediction, target)


def test_docvqa_anls_equals_lmms_eval():
    answer_sets = [[target] for target in TARGETS] + [["INV-4821", "4821"], ["the markers", "markers"], ["", "B"]]
    for prediction, answers in itertools.product(PREDICTIONS, answer_sets):
        stripped = prediction.strip()  # lmms-eval strips generations before scoring (lmms_eval/api/task.py, 1674)
        assert anls(stripped, answers) == reference.anls(answers, [stripped])["anls"], (prediction, answers)


def test_ocrbench_score_equals_lmms_eval():
    for prediction, target, dataset in itertools.product(PREDICTIONS, TARGETS, ("HME100k", "IIIT5K")):
        for answers in (target, [target, "harvest"]):
            ours = ocrbench_contains(prediction.strip(), answers if isinstance(answers, list) else [answers], dataset)
            assert ours == reference.ocrbench_score(prediction, answers, dataset), (prediction, answers, dataset)


def test_ocrbench_aggregate_equals_lmms_eval():
    rng = random.Random(0)
    records = [{"question_type": rng.choice(reference.OCRBENCH_TYPES), "score": rng.randint(0, 1)} for _ in range(37)]
    assert ocrbench_final_score(records) == reference.ocrbench_aggregate_accuracy(records)


def test_ai2d_score_equals_lmms_eval():
    for prediction, target in itertools.product(PREDICTIONS, ["A", "B", "C", "D"]):
        # our runner strips the generation, then the task scores it; lmms-eval filters the raw one, then strips
        ours = float(exact_match(leading_option_letter(prediction.strip()), target))
        assert ours == reference.ai2d_score(prediction, target), (prediction, target)


def test_videomme_score_and_aggregate_equal_lmms_eval():
    task = load_task("videomme_local")
    doc = dict(task.docs[0])
    records, reference_records = [], []
    for prediction, answer in itertools.product(PREDICTIONS, ["A", "B", "C", "D", "a"]):
        record = task.process_results({**doc, "answer": answer}, [prediction.strip()])["videomme_perception_score"]
        pred_answer, score = reference.videomme_score(prediction.strip(), answer)
        assert (record["pred_answer"], record["score"]) == (pred_answer, score), (prediction, answer)
        records.append(record)
        reference_records.append({"pred_answer": pred_answer, "answer": answer})
    assert videomme_accuracy(records) == pytest.approx(reference.videomme_aggregate(reference_records) / 100)


def test_mvbench_score_and_aggregate_equal_lmms_eval():
    task = load_task("mvbench_moving_direction_local")
    doc = dict(task.docs[0])  # candidates up / down / left / right
    records = []
    for prediction, answer in itertools.product(PREDICTIONS, doc["candidates"]):
        record = task.process_results({**doc, "answer": answer}, [prediction.strip()])["mvbench_accuracy"]
        gt_letter = "ABCD"[doc["candidates"].index(answer)]
        assert record["score"] == reference.mcq_acc(gt_letter, prediction.strip()), (prediction, answer)
        records.append(record)
    assert mvbench_accuracy(records) == pytest.approx(reference.mvbench_aggregate_results(records) / 100)


def test_mvbench_strips_at_most_32_periods_as_lmms_eval_does():
    prediction = "." * 40 + "x"  # lmms-eval passes re.UNICODE (32) as the count of periods to strip
    assert mvbench_option(prediction) == "." * 8 + "x" != mvbench_option("x")
    assert reference.mcq_acc("x", prediction) == 0


def test_perceptiontest_score_equals_lmms_eval():
    task = load_task("perceptiontest_val_mc_local")
    doc = dict(task.docs[0])
    for prediction, answer_id in itertools.product(PREDICTIONS, [0, 1, 2]):
        ours = task.process_results({**doc, "answer_id": answer_id}, [prediction.strip()])["accuracy"]
        assert ours == reference.perceptiontest_correct(prediction, answer_id), (prediction, answer_id)


def test_nextqa_parser_equals_lmms_eval_with_the_same_random_draws():
    options = {"A": "grass", "B": "moves back to the left", "C": "the markers", "D": "2x+3=7", "E": "café"}
    for index, prediction in enumerate(PREDICTIONS):
        ours = mmmu_parse_choice(prediction.strip(), options, random.Random(index))
        theirs = reference.parse_multi_choice_response(prediction.strip(), list(options), options, random.Random(index))
        assert ours == theirs, prediction
