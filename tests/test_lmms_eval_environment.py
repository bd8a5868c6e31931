"""The README's one lmms-eval install command: it resolves, and the environment it builds imports and evaluates.

Three checks, from cheap to expensive:

- the README gives exactly `LMMS_EVAL_INSTALL` (always);
- ``pip install --dry-run --report`` of it resolves against the package index, to the pins that make lmms-eval
  work (``ONEVISION_HF_REGISTRY_TESTS=1``: it needs the index and takes 1-2 minutes, most of it pip reading
  the metadata of about 160 packages, so CI runs it when asked rather than on every run);
- the environment itself (``ONEVISION_HF_LMMS_EVAL_ENV=DIR``: built in DIR with that command when DIR does not
  exist, about 7 GB and 3 minutes here; an existing DIR is reused): lmms-eval's evaluator, torchvision beside
  transformers' image utilities and the plugin import, ``pip check`` is clean, and the lmms-eval tests
  (``tests/test_eval_lmms_plugin.py``: the plugin under lmms-eval's own task scoring, the metrics against
  lmms-eval's code, a ``python -m lmms_eval`` run equal to ``onevision-hf eval``) pass inside it.

``pip check`` alone proves nothing here: lmms-eval 0.7.3 with filelock 4 or a torchvision built for another torch
passes it and fails at import.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LMMS_EVAL_INSTALL = ('python3 -m venv .venv-lmms && .venv-lmms/bin/pip install -c constraints-lmms-eval.txt '
                     '-e ".[lmms-eval]"')
IMPORT_CHECK = """
import filelock, torchvision, lmms_eval.evaluator
from transformers.image_utils import load_image
from lmms_eval.models import get_model
import onevision_hf
assert get_model("onevision_llava").__name__ == "OneVisionLlavaLmms"
print(filelock.__version__, torchvision.__version__)
"""


def _requirement(name: str) -> Requirement:
    """The pin of ``name`` in the pyproject's lmms-eval extra, or in constraints-lmms-eval.txt."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints-lmms-eval.txt").read_text().splitlines()]
    pins = {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines if line}
    return pins[canonicalize_name(name)]


def test_the_readme_gives_the_tested_install_command():
    assert LMMS_EVAL_INSTALL in (ROOT / "README.md").read_text()


@pytest.mark.skipif(os.environ.get("ONEVISION_HF_REGISTRY_TESTS") != "1",
                    reason="reads the package index; set ONEVISION_HF_REGISTRY_TESTS=1")
def test_the_install_resolves_to_a_working_combination(tmp_path):
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                    "--report", str(report), "-c", "constraints-lmms-eval.txt", "-e", ".[lmms-eval]"],
                   cwd=ROOT, check=True)
    chosen = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    assert chosen["onevision-hf"] and chosen["lmms-eval"] == "0.7.3"
    assert int(chosen["filelock"].split(".")[0]) < 4  # lmms-eval 0.7.3 imports filelock._api
    assert int(chosen["av"].split(".")[0]) < 16  # lmms-eval's own pin
    for name in ("torch", "torchvision"):  # PyPI's torchvision is built against exactly one torch
        assert _requirement(name).specifier.contains(chosen[name]), name


@pytest.mark.skipif("ONEVISION_HF_LMMS_EVAL_ENV" not in os.environ,
                    reason="builds a 7 GB environment; set ONEVISION_HF_LMMS_EVAL_ENV=DIR")
def test_the_environment_imports_and_evaluates():
    env = Path(os.environ["ONEVISION_HF_LMMS_EVAL_ENV"]).resolve()
    if not env.exists():
        command = LMMS_EVAL_INSTALL.replace(".venv-lmms", str(env)).replace("python3", sys.executable, 1)
        subprocess.run(command, shell=True, cwd=ROOT, check=True)
    python = env / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "pytest>=8", "pytest-timeout>=2.3"], check=True)
    printed = subprocess.run([python, "-c", IMPORT_CHECK], cwd=env, capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr[-3000:]
    subprocess.run([python, "-m", "pip", "check"], check=True)
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_eval_lmms_plugin.py"],
                           cwd=ROOT, capture_output=True, text=True)
    assert tests.returncode == 0 and " skipped" not in tests.stdout.splitlines()[-1], tests.stdout[-5000:]
