"""lmms-eval 0.7.3's scoring code, transcribed statement by statement (the wheel ``lmms_eval-0.7.3-py3-none-any``;
each function names its file and lines), so the package's metrics can be checked against it without lmms-eval
installed. Where lmms-eval is installed, ``tests/test_eval_lmms_plugin.py`` checks these against the originals.

Kept deliberately close to the original, quirks included: numpy string arrays in ``exact_match_hf_evaluate``, the
``re.UNICODE`` passed as a ``count`` in MVBench's period stripping, the case-sensitive comparison in Video-MME's
aggregate. The only change: the MMMU parser's random fallback takes a ``random.Random`` instead of the module-level
``random.choice``.
"""

import re
import string

import numpy as np


# lmms_eval/api/metrics.py, lines 188-220
def exact_match_hf_evaluate(predictions, references, regexes_to_ignore=None, ignore_case=False,
                            ignore_punctuation=False, ignore_numbers=False):
    if regexes_to_ignore is not None:
        for s in regexes_to_ignore:
            predictions = np.array([re.sub(s, "", x) for x in predictions])
            references = np.array([re.sub(s, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        repl_table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    if ignore_numbers:
        repl_table = string.digits.maketrans("", "", string.digits)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    score_list = predictions == references
    return {"exact_match": np.mean(score_list)}


# lmms_eval/tasks/ai2d/utils.py, lines 60-79 (MultiChoiceRegexFilter.apply, one response), then the generate_until
# scoring of lmms_eval/api/task.py, line 1674 (strip) and the ai2d.yaml metric kwargs (ignore_case, ignore_punctuation)
def ai2d_score(response, target):
    match = re.compile(r"^\s*([A-Z])\.").match(response)
    filtered = match.group(1) if match else response
    return exact_match_hf_evaluate(predictions=[filtered.strip()], references=[target], ignore_case=True,
                                   ignore_punctuation=True)["exact_match"]


# lmms_eval/tasks/chartqa/utils.py, lines 25-62
def relaxed_correctness(prediction, target, max_relative_change=0.05):
    def _to_float(text):
        try:
            if text.endswith("%"):
                return float(text.rstrip("%")) / 100.0
            else:
                return float(text)
        except ValueError:
            return None

    prediction_float = _to_float(prediction)
    target_float = _to_float(target)
    if prediction_float is not None and target_float:
        relative_change = abs(prediction_float - target_float) / abs(target_float)
        return relative_change <= max_relative_change
    else:
        return prediction.lower() == target.lower()


# lmms_eval/api/metrics.py, lines 276-289
def levenshtein_distance(s1, s2):
    if len(s1) > len(s2):
        s1, s2 = s2, s1
    distances = range(len(s1) + 1)
    for i2, c2 in enumerate(s2):
        distances_ = [i2 + 1]
        for i1, c1 in enumerate(s1):
            if c1 == c2:
                distances_.append(distances[i1])
            else:
                distances_.append(1 + min((distances[i1], distances[i1 + 1], distances_[-1])))
        distances = distances_
    return distances[-1]


# lmms_eval/api/metrics.py, lines 298-321
def anls(references, predictions, thresh_hold=0.5):
    values = []
    pred = predictions[0] if isinstance(predictions[0], str) else predictions[0][0]
    for answer in references:
        gt_answer = " ".join(answer.strip().lower().split())
        det_answer = " ".join(pred.strip().lower().split())
        dist = levenshtein_distance(gt_answer, det_answer)
        length = max(len(answer.upper()), len(pred.upper()))
        values.append(0.0 if length == 0 else float(dist) / float(length))
    question_result = 1 - min(values)
    if question_result < thresh_hold:
        question_result = 0
    return {"anls": question_result}


# lmms_eval/tasks/ocrbench/utils.py, lines 20-31
def _fold_fullwidth_ascii(text):
    folded = []
    for char in text:
        codepoint = ord(char)
        if 0xFF01 <= codepoint <= 0xFF5E:
            folded.append(chr(codepoint - 0xFEE0))
        elif codepoint == 0x3000:
            folded.append(" ")
        else:
            folded.append(char)
    return "".join(folded)


# lmms_eval/tasks/ocrbench/utils.py, lines 47-79 (the score only)
def ocrbench_score(pred, gt_ans, dataset_name):
    pred = pred.strip()
    score = 0
    if dataset_name == "HME100k":
        if type(gt_ans) is list:
            for j in range(len(gt_ans)):
                answer = gt_ans[j].strip().replace("\n", " ").replace(" ", "")
                predict = pred.strip().replace("\n", " ").replace(" ", "")
                if answer in predict:
                    score = 1
        else:
            answer = gt_ans.strip().replace("\n", " ").replace(" ", "")
            predict = pred.strip().replace("\n", " ").replace(" ", "")
            if answer in predict:
                score = 1
    else:
        if type(gt_ans) is list:
            for j in range(len(gt_ans)):
                answer = _fold_fullwidth_ascii(gt_ans[j]).lower().strip().replace("\n", " ")
                predict = _fold_fullwidth_ascii(pred).lower().strip().replace("\n", " ")
                if answer in predict:
                    score = 1
        else:
            answer = _fold_fullwidth_ascii(gt_ans).lower().strip().replace("\n", " ")
            predict = _fold_fullwidth_ascii(pred).lower().strip().replace("\n", " ")
            if answer in predict:
                score = 1
    return score


# lmms_eval/tasks/ocrbench/utils.py, lines 82-117, without the report file and on a fresh count
def ocrbench_aggregate_accuracy(results):
    totals = dict.fromkeys(OCRBENCH_TYPES, 0)
    for result in results:
        totals[result["question_type"]] += result["score"]
    recognition_score = sum(totals[name] for name in OCRBENCH_TYPES[:6])
    final_score = recognition_score + sum(totals[name] for name in OCRBENCH_TYPES[6:])
    return final_score / 1000


OCRBENCH_TYPES = ["Regular Text Recognition", "Irregular Text Recognition", "Artistic Text Recognition",
                  "Handwriting Recognition", "Digit String Recognition", "Non-Semantic Text Recognition",
                  "Scene Text-centric VQA", "Doc-oriented VQA", "Key Information Extraction",
                  "Handwritten Mathematical Expression Recognition"]

# lmms_eval/tasks/_task_utils/mcq_extract.py, lines 16-62
_DEFAULT_CHOICES = ["A", "B", "C", "D", "E", "F", "G", "H"]
_ANSWER_PHRASES = ["the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
                   "best answer is", "the correct option is", "correct option is", "the best option is",
                   "best option is", "the choice is", "choice is", "the correct choice is", "correct choice is",
                   "i choose", "i select", "i pick", "my answer is", "my choice is", "옵션", "정답은", "답은", "답:",
                   "答案是", "答案为", "选", "答えは"]
_FORMAT_PRIORITY = {"start": 10, "end": 9, "phrase": 7, "parentheses": 6, "period": 5, "colon": 4,
                    "right_paren": 3, "space": 2, "fallback": 0}


# lmms_eval/tasks/_task_utils/mcq_extract.py, lines 65-157
def extract_mcq_answer(response, choices=None):
    if not response or not response.strip():
        return ""
    all_choices = choices or _DEFAULT_CHOICES
    text = response.strip()
    for char in [",", ".", "!", "?", ";", ":", "'", '"']:
        text = text.strip(char)
    text = " " + text + " "
    candidates = []
    for ch in all_choices:
        if f"({ch})" in text:
            candidates.append((ch, text.rfind(f"({ch})"), "parentheses"))
    for ch in all_choices:
        if f"{ch}." in text:
            candidates.append((ch, text.rfind(f"{ch}."), "period"))
    for ch in all_choices:
        if f"{ch}:" in text:
            candidates.append((ch, text.rfind(f"{ch}:"), "colon"))
    for ch in all_choices:
        if f"{ch})" in text:
            candidates.append((ch, text.rfind(f"{ch})"), "right_paren"))
    for ch in all_choices:
        if f"{ch} " in text:
            candidates.append((ch, text.rfind(f"{ch} "), "space"))
    text_lower = text.lower()
    for phrase in _ANSWER_PHRASES:
        idx = text_lower.find(phrase)
        if idx != -1:
            after = idx + len(phrase)
            for ch in all_choices:
                ch_pos = text.find(ch, after)
                if ch_pos != -1:
                    candidates.append((ch, ch_pos, "phrase"))
    stripped = text.strip()
    for ch in all_choices:
        if stripped.startswith(ch) and (len(stripped) == 1 or not stripped[1].isalpha()):
            candidates.append((ch, 0, "start"))
    for ch in all_choices:
        if stripped.endswith(ch) and (len(stripped) == 1 or not stripped[-2].isalpha()):
            candidates.append((ch, len(text) - 1, "end"))
    if not candidates:
        for ch in all_choices:
            if ch in text:
                candidates.append((ch, text.rfind(ch), "fallback"))
    if not candidates:
        return ""
    candidates.sort(key=lambda x: (_FORMAT_PRIORITY.get(x[2], 0), x[1]), reverse=True)
    return candidates[0][0]


# lmms_eval/tasks/videomme/utils.py, lines 256-259 and 279-288 (the score), 320-327 and 365-370 (the aggregate)
def videomme_score(pred, gt_ans):
    pred_ans = extract_mcq_answer(pred, choices=["A", "B", "C", "D"])
    return pred_ans, 1.0 if pred_ans.lower() == gt_ans.lower() else 0.0


def videomme_aggregate(results):
    total_correct = sum(result["pred_answer"] == result["answer"] for result in results)
    total_answered = len(results)
    return 100 * total_correct / total_answered if total_answered > 0 else 0


# lmms_eval/tasks/mvbench/utils.py, lines 97-146
def mcq_acc(answer, pred):
    periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")  # noqa: N806  (the original's names)
    commaStrip = re.compile(r"(\d)(\,)(\d)")  # noqa: N806
    punct = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]

    def processPunctuation(inText):  # noqa: N802, N803
        outText = inText  # noqa: N806
        for p in punct:
            if (p + " " in inText or " " + p in inText) or (re.search(commaStrip, inText) is not None):
                outText = outText.replace(p, "")  # noqa: N806
            else:
                outText = outText.replace(p, " ")  # noqa: N806
        outText = periodStrip.sub("", outText, re.UNICODE)  # noqa: N806
        return outText

    def process(answer):
        option_regex = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
        match = option_regex.match(answer.strip())
        if match:
            return match.group(1).upper()
        else:
            answer = answer.replace("\n", " ")
            answer = answer.replace("\t", " ")
            answer = answer.strip()
            answer = processPunctuation(answer)
            answer = answer.strip("'")
            answer = answer.strip('"')
            answer = answer.strip(")")
            answer = answer.strip("(")
            answer = answer.strip().lower()
            letter_match = re.search(r"\b([A-E])\b", answer, re.IGNORECASE)
            if letter_match:
                return letter_match.group(1).upper()
            return answer

    pred = process(pred)
    answer = process(answer)
    if pred == answer:
        score = 1
    else:
        score = 0
    return score


# lmms_eval/tasks/mvbench/utils.py, lines 175-189
def mvbench_aggregate_results(results):
    total_answered = 0
    total_correct = 0
    for result in results:
        if result["pred_answer"] != "":
            total_answered += 1
            total_correct += result["score"]
    return 100 * total_correct / total_answered if total_answered > 0 else 0


# lmms_eval/tasks/perceptiontest/val/utils.py, lines 91-107
def perceptiontest_correct(result, answer_id):
    pred = result.strip()
    match = re.search(r"\b([A-D])\b", pred)
    if match:
        pred = match.group(1)
        pred = pred.upper()
    else:
        pred = ""
    pred_to_index = {"A": 0, "B": 1, "C": 2, "D": 3}
    index = pred_to_index.get(pred, -1)
    return 1 if index == int(answer_id) else 0


# lmms_eval/tasks/nextqa/utils.py, lines 81-139 (``random.choice`` -> ``rng.choice``)
def parse_multi_choice_response(response, all_choices, index2ans, rng):
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    index_ans = True
    ans_with_brack = False
    candidates = []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if len(candidates) == 0:
        for choice in all_choices:
            if f"{choice} " in response:
                candidates.append(choice)
    if len(candidates) == 0:
        for choice in all_choices:
            if f"{choice}." in response:
                candidates.append(choice)
    if len(candidates) == 0 and len(response.split()) > 5:
        for index, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if len(candidates) == 0:
        pred_index = rng.choice(all_choices)
    elif len(candidates) > 1:
        start_indexes = []
        if index_ans:
            if ans_with_brack:
                for can in candidates:
                    index = response.rfind(f"({can})")
                    start_indexes.append(index)
            else:
                for can in candidates:
                    index = response.rfind(f" {can} ")
                    start_indexes.append(index)
        else:
            for can in candidates:
                index = response.lower().rfind(index2ans[can].lower())
                start_indexes.append(index)
        pred_index = candidates[np.argmax(start_indexes)]
    else:
        pred_index = candidates[0]
    return pred_index
