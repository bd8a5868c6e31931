"""The published scoring rules of the evaluation tasks, one function per rule, free of any task plumbing.

Each function reproduces the definition the task's published results were computed with (the lmms-eval task
code, itself taken from the benchmark authors); the source is named in each docstring. Task files
(`evaluation/tasks/*/utils.py`) call these; `aggregate_mean` and `mean_stderr` turn per-document scores into the
reported number.
"""

import math
import random
import re
import string

VIDEOMME_ANSWER_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
MMMU_STRIP_CHARACTERS = (",", ".", "!", "?", ";", ":", "'")
VQA_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                   "?", "!")


def relaxed_correctness(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's relaxed accuracy (Masry et al. 2022, sec. 5.1; Qwen-VL ``evaluate_vqa.py``): when both parse as
    numbers (a trailing ``%`` divides by 100) and the target is non-zero, correct within 5 % relative change;
    otherwise a case-insensitive exact string match."""

    def to_float(text: str) -> float | None:
        try:
            return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            return None

    prediction_value, target_value = to_float(prediction), to_float(target)
    if prediction_value is not None and target_value:
        return abs(prediction_value - target_value) / abs(target_value) <= max_relative_change
    return prediction.lower() == target.lower()


def levenshtein_distance(first: str, second: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(first) * len(second)) time, O(min) memory."""
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for i, first_char in enumerate(first, start=1):
        current = [i]
        for j, second_char in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (first_char != second_char)))
        previous = current
    return previous[-1]


def anls(prediction: str, answers: list[str], threshold: float = 0.5) -> float:
    """DocVQA's Average Normalised Levenshtein Similarity of one question (Biten et al. 2019; the ICDAR
    ``infographicsvqa_eval.py``): both sides lower-cased with whitespace collapsed, similarity
    ``1 - distance / max(len)`` against the closest answer, and 0 when below ``threshold``."""
    if not answers:
        raise ValueError("ANLS needs at least one reference answer.")
    prediction = " ".join(prediction.strip().lower().split())
    distances = []
    for answer in answers:
        answer = " ".join(answer.strip().lower().split())
        length = max(len(answer), len(prediction))
        distances.append(0.0 if length == 0 else levenshtein_distance(answer, prediction) / length)
    similarity = 1.0 - min(distances)
    return similarity if similarity >= threshold else 0.0


def fold_fullwidth_ascii(text: str) -> str:
    """Fullwidth ASCII (U+FF01..U+FF5E) and the ideographic space -> ASCII, nothing else (OCRBench)."""
    return "".join(
        chr(ord(char) - 0xFEE0) if 0xFF01 <= ord(char) <= 0xFF5E else " " if char == "\u3000" else char
        for char in text
    )


def ocrbench_contains(prediction: str, answers: list[str], dataset: str = "") -> int:
    """OCRBench's score of one question (Liu et al. 2024, ``OCRBench/scripts``): 1 when some answer is contained
    in the prediction. Handwritten maths (``dataset == "HME100k"``) compares with all whitespace removed;
    everything else lower-cased, fullwidth ASCII folded, newlines as spaces."""
    if dataset == "HME100k":
        def normalize(text: str) -> str:
            return text.strip().replace("\n", " ").replace(" ", "")
    else:
        def normalize(text: str) -> str:
            return fold_fullwidth_ascii(text).lower().strip().replace("\n", " ")
    prediction = normalize(prediction)
    return int(any(normalize(answer) in prediction for answer in answers))


def videomme_extract_letter(response: str) -> str:
    """Video-MME's answer extraction (``Video-MME/evaluation/eval_your_results.py``): strip the answer prefixes,
    give up on long answers without an option letter, else the first of A-D; "" when there is none."""
    response = response.strip()
    for prefix in VIDEOMME_ANSWER_PREFIXES:
        response = response.replace(prefix, "")
    if len(response.split()) > 10 and not re.search("[ABCD]", response):
        return ""
    match = re.search("[ABCD]", response)
    return match[0] if match else ""


def leading_option_letter(response: str) -> str:
    """AI2D's answer filter (lmms-eval ``ai2d.MultiChoiceRegexFilter``): the letter of a response that starts
    with ``X.``, else the response unchanged (scored by `exact_match`)."""
    match = re.match(r"^\s*([A-Z])\.", response)
    return match.group(1) if match else response


def exact_match(prediction: str, target: str, ignore_case: bool = True, ignore_punctuation: bool = True) -> bool:
    """HF ``evaluate``'s ``exact_match`` of one pair, with its ``ignore_case`` / ``ignore_punctuation`` options."""
    if ignore_case:
        prediction, target = prediction.lower(), target.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        prediction, target = prediction.translate(table), target.translate(table)
    return prediction == target


def first_standalone_letter(response: str, letters: str = "ABCD") -> str:
    """PerceptionTest's extraction (lmms-eval ``perceptiontest``): the first option letter standing alone as a
    word; "" when there is none."""
    match = re.search(rf"\b([{letters}])\b", response.strip())
    return match.group(1) if match else ""


def mvbench_option(answer: str) -> str:
    """MVBench's normalisation of an answer or prediction (lmms-eval ``mvbench.mcq_acc``, after the VQA
    punctuation rules): ``X. text`` -> ``X``; otherwise punctuation removed, lower-cased, then the first
    standalone letter A-E (upper-cased) or the normalised text itself."""
    match = re.match(r"^([A-E])\.\s*(.+)$", answer.strip(), re.IGNORECASE)
    if match:
        return match.group(1).upper()
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    original, separated = answer, re.search(r"(\d)(,)(\d)", answer) is not None
    for mark in VQA_PUNCTUATION:
        keep_together = mark + " " in original or " " + mark in original or separated
        answer = answer.replace(mark, "" if keep_together else " ")
    answer = re.sub(r"(?!<=\d)(\.)(?!\d)", "", answer)
    answer = answer.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = re.search(r"\b([A-E])\b", answer, re.IGNORECASE)
    return letter.group(1).upper() if letter else answer


def mmmu_parse_choice(response: str, index_to_answer: dict[str, str], rng: random.Random) -> str:
    """The MMMU multiple-choice parser NExT-QA-MC is scored with (``MMMU/eval/eval_utils.py``): ``(X)``, then
    ``X `` and ``X.``, then (for responses over five words) the option texts; the last mention wins among several;
    with no candidate, a random option drawn from ``rng`` (the published rule; seed it for reproducible runs)."""
    choices = list(index_to_answer)
    for mark in MMMU_STRIP_CHARACTERS:
        response = response.strip(mark)
    response = f" {response} "
    candidates = [choice for choice in choices if f"({choice})" in response]
    bracketed = bool(candidates)
    candidates = candidates or [choice for choice in choices if f"{choice} " in response]
    candidates = candidates or [choice for choice in choices if f"{choice}." in response]
    by_content = False
    if not candidates and len(response.split()) > 5:
        candidates = [choice for choice, text in index_to_answer.items() if text.lower() in response.lower()]
        by_content = bool(candidates)
    if not candidates:
        return rng.choice(choices)
    if len(candidates) == 1:
        return candidates[0]
    if by_content:
        positions = [response.lower().rfind(index_to_answer[choice].lower()) for choice in candidates]
    elif bracketed:
        positions = [response.rfind(f"({choice})") for choice in candidates]
    else:
        positions = [response.rfind(f" {choice} ") for choice in candidates]
    return candidates[max(range(len(candidates)), key=positions.__getitem__)]


def aggregate_mean(values: list[float]) -> float:
    """The mean of per-document scores (lmms-eval's ``mean`` aggregation); NaN for no documents."""
    return sum(values) / len(values) if values else math.nan


def mean_stderr(values: list[float]) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n)); NaN below two documents."""
    if len(values) < 2:
        return math.nan
    mean = aggregate_mean(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1) / len(values))
