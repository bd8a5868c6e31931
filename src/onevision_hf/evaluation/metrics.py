"""The published scoring rules of the evaluation tasks, one function per rule, free of any task plumbing.

Published numbers are lmms-eval's, so each function is lmms-eval 0.7.3's definition, line for line in effect (the
file and lines of the lmms-eval wheel are named in each docstring; ``tests/test_eval_metrics.py`` checks every
rule against a transcription of that code on a fuzz set of predictions). Where lmms-eval differs from the
benchmark's paper or original script, the docstring says so (see also ``benchmarks/README.md``, "Evaluation
tasks"). Task files (``evaluation/tasks/<task>_utils.py``) call these; `aggregate_mean` and `mean_stderr` turn
per-document scores into the reported number. Every value is a fraction in [0, 1]: lmms-eval prints Video-MME and
MVBench multiplied by 100 and every other task as a fraction.
"""

import math
import random
import re
import string

MMMU_STRIP_CHARACTERS = (",", ".", "!", "?", ";", ":", "'")
VQA_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                   "?", "!")
# lmms_eval/tasks/mvbench/utils.py, line 98: meant as "a period not between digits"; ``(?!<=\d)`` is a negative
# lookahead for the text "<=" and a digit, so in effect: a period not followed by a digit
MVBENCH_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
MVBENCH_MAX_PERIODS_STRIPPED = re.UNICODE  # line 109 passes re.UNICODE (32) as ``count``: at most 32 periods go
MCQ_STRIP_CHARACTERS = (",", ".", "!", "?", ";", ":", "'", '"')
MCQ_ANSWER_PHRASES = (  # lmms_eval/tasks/_task_utils/mcq_extract.py, lines 18-49
    "the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
    "best answer is", "the correct option is", "correct option is", "the best option is", "best option is",
    "the choice is", "choice is", "the correct choice is", "correct choice is", "i choose", "i select", "i pick",
    "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは",
)
MCQ_FORMAT_PRIORITY = {"start": 10, "end": 9, "phrase": 7, "parentheses": 6, "period": 5, "colon": 4,
                       "right_paren": 3, "space": 2, "fallback": 0}
OCRBENCH_QUESTION_TYPES = (  # lmms_eval/tasks/ocrbench/utils.py, lines 6-17
    "Regular Text Recognition", "Irregular Text Recognition", "Artistic Text Recognition", "Handwriting Recognition",
    "Digit String Recognition", "Non-Semantic Text Recognition", "Scene Text-centric VQA", "Doc-oriented VQA",
    "Key Information Extraction", "Handwritten Mathematical Expression Recognition",
)
OCRBENCH_FULL_SCORE = 1000  # the published "Final Score (Total 1000)"


def relaxed_correctness(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's relaxed accuracy (``lmms_eval/tasks/chartqa/utils.py``, lines 25-62, from Qwen-VL's
    ``evaluate_vqa.py``; Masry et al. 2022, sec. 5.1): when both parse as numbers (trailing ``%`` signs removed,
    then divided by 100) and the target is non-zero, correct within 5 % relative change; otherwise a
    case-insensitive exact string match."""

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
    """DocVQA's Average Normalised Levenshtein Similarity of one question, as lmms-eval computes it
    (``lmms_eval/api/metrics.py``, lines 298-321, from Qwen-VL's ``infographicsvqa_eval.py``): the edit distance
    between both sides lower-cased with whitespace collapsed, divided by the longer of the two *raw* strings'
    upper-cased lengths; similarity ``1 - distance / length`` against the closest answer, 0 below ``threshold``.

    The metric's definition (Biten et al. 2019) divides by the length of the compared (normalised) strings; the
    two differ when a side has surrounding or repeated whitespace, or characters whose upper case is longer
    (``"ß".upper() == "SS"``): lmms-eval's similarity is then higher."""
    if not answers:
        raise ValueError("ANLS needs at least one reference answer.")
    compared_prediction = " ".join(prediction.strip().lower().split())
    distances = []
    for answer in answers:
        compared_answer = " ".join(answer.strip().lower().split())
        length = max(len(answer.upper()), len(prediction.upper()))
        distances.append(0.0 if length == 0 else levenshtein_distance(compared_answer, compared_prediction) / length)
    similarity = 1.0 - min(distances)
    return similarity if similarity >= threshold else 0.0


def fold_fullwidth_ascii(text: str) -> str:
    """Fullwidth ASCII (U+FF01..U+FF5E) and the ideographic space -> ASCII, nothing else (OCRBench)."""
    return "".join(
        chr(ord(char) - 0xFEE0) if 0xFF01 <= ord(char) <= 0xFF5E else " " if char == "\u3000" else char
        for char in text
    )


def ocrbench_contains(prediction: str, answers: list[str], dataset: str = "") -> int:
    """OCRBench's score of one question (``lmms_eval/tasks/ocrbench/utils.py``, lines 47-79, after Liu et al.
    2024, ``OCRBench/scripts``): 1 when some answer is contained in the prediction. Handwritten maths
    (``dataset == "HME100k"``) compares with all whitespace removed; everything else lower-cased, fullwidth ASCII
    folded, newlines as spaces."""
    if dataset == "HME100k":
        def normalize(text: str) -> str:
            return text.strip().replace("\n", " ").replace(" ", "")
    else:
        def normalize(text: str) -> str:
            return fold_fullwidth_ascii(text).lower().strip().replace("\n", " ")
    prediction = normalize(prediction)
    return int(any(normalize(answer) in prediction for answer in answers))


def ocrbench_final_score(scores: list[dict]) -> float:
    """OCRBench's aggregate (``lmms_eval/tasks/ocrbench/utils.py``, lines 82-117): the published "Final Score"
    (correct answers, out of 1000) divided by 1000. That is the accuracy on the full 1000-question set; on a part
    of it (``--limit``, sample data) it is the number correct / 1000, as lmms-eval reports it. ``scores`` are
    ``{"question_type", "score"}`` records. (lmms-eval keeps the counts in a module-level dict, so a second
    aggregation in one process adds to the first; this function does not.)"""
    unknown = sorted({record["question_type"] for record in scores} - set(OCRBENCH_QUESTION_TYPES))
    if unknown:
        raise ValueError(f"OCRBench question types {unknown} are not among the published ones.")
    return sum(record["score"] for record in scores) / OCRBENCH_FULL_SCORE


def mcq_answer_letter(response: str, choices: str = "ABCD") -> str:
    """lmms-eval's multiple-choice letter extraction (``lmms_eval/tasks/_task_utils/mcq_extract.py``, lines
    65-157), which Video-MME scores with (``lmms_eval/tasks/videomme/utils.py``, lines 256-259): every occurrence
    of a letter as ``(X)``, ``X.``, ``X:``, ``X)``, ``X `` or after an answer phrase, or standing alone at the start
    or end, is a candidate; the highest-priority format wins, the last occurrence within it; with none of those,
    any occurrence; "" when there is none.

    Video-MME's own script (``eval_your_results.py``) strips answer prefixes and takes the first letter A-D, which
    picks a different letter for responses that mention several options."""
    if not response or not response.strip():
        return ""
    text = response.strip()
    for mark in MCQ_STRIP_CHARACTERS:
        text = text.strip(mark)
    text = f" {text} "
    candidates = []  # (letter, position, format)
    for pattern, kind in (("({})", "parentheses"), ("{}.", "period"), ("{}:", "colon"), ("{})", "right_paren"),
                          ("{} ", "space")):
        candidates += [(choice, text.rfind(pattern.format(choice)), kind)
                       for choice in choices if pattern.format(choice) in text]
    lowered = text.lower()
    for phrase in MCQ_ANSWER_PHRASES:
        index = lowered.find(phrase)
        if index != -1:
            after = index + len(phrase)
            candidates += [(choice, text.find(choice, after), "phrase") for choice in choices
                           if text.find(choice, after) != -1]
    stripped = text.strip()
    candidates += [(choice, 0, "start") for choice in choices
                   if stripped.startswith(choice) and (len(stripped) == 1 or not stripped[1].isalpha())]
    candidates += [(choice, len(text) - 1, "end") for choice in choices
                   if stripped.endswith(choice) and (len(stripped) == 1 or not stripped[-2].isalpha())]
    if not candidates:
        candidates = [(choice, text.rfind(choice), "fallback") for choice in choices if choice in text]
    if not candidates:
        return ""
    candidates.sort(key=lambda candidate: (MCQ_FORMAT_PRIORITY[candidate[2]], candidate[1]), reverse=True)
    return candidates[0][0]


def videomme_accuracy(records: list[dict]) -> float:
    """Video-MME's aggregate (``lmms_eval/tasks/videomme/utils.py``, lines 304-370, divided by 100): correct /
    answered over ``{"pred_answer", "answer"}`` records, the letters compared case-sensitively (the per-document
    ``score`` compares them case-insensitively); 0 for no records."""
    correct = sum(record["pred_answer"] == record["answer"] for record in records)
    return correct / len(records) if records else 0.0


def leading_option_letter(response: str) -> str:
    """AI2D's answer filter (``lmms_eval/tasks/ai2d/utils.py``, lines 52-79, ``MultiChoiceRegexFilter``): the
    letter of a response that starts with ``X.``, else the response unchanged (scored by `exact_match`)."""
    match = re.match(r"^\s*([A-Z])\.", response)
    return match.group(1) if match else response


def exact_match(prediction: str, target: str, ignore_case: bool = True, ignore_punctuation: bool = True) -> bool:
    """lmms-eval's ``exact_match`` of one pair (``lmms_eval/api/metrics.py``, lines 188-220, after HF
    ``evaluate``), with its ``ignore_case`` / ``ignore_punctuation`` options. It compares numpy string arrays,
    which ignore trailing NUL characters; so does this function."""
    if ignore_case:
        prediction, target = prediction.lower(), target.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        prediction, target = prediction.translate(table), target.translate(table)
    return prediction.rstrip("\x00") == target.rstrip("\x00")


def first_standalone_letter(response: str, letters: str = "ABCD") -> str:
    """PerceptionTest's extraction (``lmms_eval/tasks/perceptiontest/val/utils.py``, lines 91-107): the first
    option letter standing alone as a word; "" when there is none."""
    match = re.search(rf"\b([{letters}])\b", response.strip())
    return match.group(1) if match else ""


def mvbench_option(answer: str) -> str:
    """MVBench's normalisation of an answer or prediction (``lmms_eval/tasks/mvbench/utils.py``, lines 97-146,
    ``mcq_acc``, after the VQA punctuation rules): ``X. text`` -> ``X``; otherwise punctuation removed, lower-cased,
    then the first standalone letter A-E (upper-cased) or the normalised text itself."""
    match = re.match(r"^([A-E])\.\s*(.+)$", answer.strip(), re.IGNORECASE)
    if match:
        return match.group(1).upper()
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    original, separated = answer, re.search(r"(\d)(,)(\d)", answer) is not None
    for mark in VQA_PUNCTUATION:
        keep_together = mark + " " in original or " " + mark in original or separated
        answer = answer.replace(mark, "" if keep_together else " ")
    answer = MVBENCH_PERIOD_STRIP.sub("", answer, MVBENCH_MAX_PERIODS_STRIPPED)
    answer = answer.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = re.search(r"\b([A-E])\b", answer, re.IGNORECASE)
    return letter.group(1).upper() if letter else answer


def mvbench_accuracy(records: list[dict]) -> float:
    """MVBench's aggregate (``lmms_eval/tasks/mvbench/utils.py``, lines 175-189, divided by 100): the mean score
    over the documents with a non-empty prediction, 0 when there is none. Unanswered questions leave the
    denominator, where MVBench's paper counts every question."""
    answered = [record["score"] for record in records if record["pred_answer"] != ""]
    return sum(answered) / len(answered) if answered else 0.0


def mmmu_parse_choice(response: str, index_to_answer: dict[str, str], rng: random.Random) -> str:
    """The MMMU multiple-choice parser NExT-QA-MC is scored with (``lmms_eval/tasks/nextqa/utils.py``, lines
    81-139, from ``MMMU/eval/eval_utils.py``): ``(X)``, then ``X `` and ``X.``, then (for responses over five words)
    the option texts; the last mention wins among several; with no candidate, a random option drawn from ``rng``.
    lmms-eval draws that option from Python's unseeded global generator, so its NExT-QA score varies from run to
    run on such responses; seed ``rng`` for reproducible runs (the draw stays uniform)."""
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
    """The mean of per-document scores (lmms-eval's ``mean`` aggregation, ``lmms_eval/api/metrics.py``); NaN for no
    documents."""
    return sum(values) / len(values) if values else math.nan


def mean_stderr(values: list[float]) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n)); NaN below two documents."""
    if len(values) < 2:
        return math.nan
    mean = aggregate_mean(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1) / len(values))
