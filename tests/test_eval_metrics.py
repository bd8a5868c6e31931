"""The published scoring rules, on the edge cases their definitions name."""

import math
import random

import pytest

from onevision_hf.evaluation.metrics import (
    anls,
    exact_match,
    first_standalone_letter,
    leading_option_letter,
    levenshtein_distance,
    mean_stderr,
    mmmu_parse_choice,
    mvbench_option,
    ocrbench_contains,
    relaxed_correctness,
    videomme_extract_letter,
)


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
    ("The best answer is C.", "C"),  # answer prefix stripped
    ("The answer is (D)", "D"),
    ("A, but maybe C", "A"),  # several letters: the first one
    ("", ""),  # empty prediction
    ("I think it might be the second one, not sure at all really", ""),  # long, no letter
    ("E", ""),  # not one of A-D
    ("\u00c0 la B", "B"),  # accented capitals are not option letters
])
def test_videomme_letter_extraction(response, letter):
    assert videomme_extract_letter(response) == letter


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


def test_mean_stderr_is_the_standard_error_of_the_mean():
    assert mean_stderr([0.0, 1.0, 0.0, 1.0]) == pytest.approx(math.sqrt(1 / 3 / 4))
    assert math.isnan(mean_stderr([1.0]))
