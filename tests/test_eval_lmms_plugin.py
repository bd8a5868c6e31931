"""The lmms-eval plugin, where lmms-eval is installed.

lmms-eval pulls a CUDA torch and ``av<16``, so it stays out of the default install and CI, and these tests skip.
On a GPU machine ``pip install -e ".[dev,lmms-eval]"`` in its own environment; on CPU, a side environment that
reuses this venv's packages and adds lmms-eval without its dependencies is enough (how these tests were run)::

    python -m venv /tmp/lmms && echo "$PWD/.venv/lib/python3.11/site-packages" > \
        /tmp/lmms/lib/python3.11/site-packages/zz_onevision.pth
    /tmp/lmms/bin/pip install --no-deps "lmms-eval==0.7.3" loguru pytz sacrebleu portalocker tabulate colorama \
        lxml tenacity pytablewriter DataProperty mbstrdecoder pathvalidate tabledata tcolorpy typepy chardet
    /tmp/lmms/bin/pip install --no-deps -e .   # registers the lmms_eval.models entry point
    /tmp/lmms/bin/python -m pytest tests/test_eval_lmms_plugin.py
"""

from importlib.metadata import entry_points

import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (pip install 'onevision-hf[lmms-eval]' in a "
                                        "separate environment: it pulls a CUDA torch and av<16)")

from lmms_eval.api.instance import Instance  # noqa: E402

from onevision_hf.evaluation.tasks import BUNDLED_DATA_ROOT, TASKS_DIR, load_task  # noqa: E402

from eval_helpers import make_quick_tiny_llava  # noqa: E402


@pytest.fixture(scope="module")
def lmm(tmp_path_factory):
    from lmms_eval.models import get_model

    directory = tmp_path_factory.mktemp("tiny-llava")
    make_quick_tiny_llava(directory)
    return get_model("onevision_llava").create_from_arg_string(f"pretrained={directory}", {"batch_size": 2})


def test_the_entry_point_registers_onevision_llava():
    from lmms_eval.models import get_model

    names = {entry.name for entry in entry_points(group="lmms_eval.models")}
    assert "onevision_llava" in names
    assert get_model("onevision_llava").__name__ == "OneVisionLlavaLmms"


def _instance(request_type, arguments, doc_id, task):
    return Instance(request_type=request_type, arguments=arguments, idx=0,
                    metadata={"task": task, "doc_id": doc_id, "repeats": 1})


def test_generate_until_answers_images_several_images_and_videos(lmm):
    chart, video = load_task("chartqa_local"), load_task("videomme_local")
    lmm.task_dict = {"chartqa_local": {"test": chart.docs}, "videomme_local": {"test": video.docs}}
    two_images = lambda doc: [doc["image"], doc["image"].rotate(90)]  # noqa: E731  (a multi-image document)
    video_path = lambda doc: [str(BUNDLED_DATA_ROOT / video.doc_to_visual(doc)[0])]  # noqa: E731
    kwargs = {"max_new_tokens": 4, "until": ["\n\n"]}
    requests = [
        _instance("generate_until", ("What is shown?", dict(kwargs), chart.doc_to_visual, 0, "chartqa_local", "test"),
                  0, "chartqa_local"),
        _instance("generate_until", ("Compare them.", dict(kwargs), two_images, 1, "chartqa_local", "test"), 1,
                  "chartqa_local"),
        _instance("generate_until", ("Describe.", dict(kwargs), video_path, 0, "videomme_local", "test"), 0,
                  "videomme_local"),
    ]
    answers = lmm.generate_until(requests)
    assert len(answers) == 3 and all(isinstance(answer, str) for answer in answers)


def test_loglikelihood_returns_a_log_probability_and_greediness(lmm):
    chart = load_task("chartqa_local")
    lmm.task_dict = {"chartqa_local": {"test": chart.docs}}
    request = _instance("loglikelihood", ("How many?", " 200", chart.doc_to_visual, 0, "chartqa_local", "test"), 0,
                        "chartqa_local")
    [(log_probability, is_greedy)] = lmm.loglikelihood([request])
    assert log_probability < 0 and isinstance(is_greedy, bool)


def test_bundled_tasks_are_found_through_include_path():
    from lmms_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(TASKS_DIR))
    assert {"chartqa_local", "videomme_local", "mvbench_action_count_local"} <= set(manager.all_tasks)
