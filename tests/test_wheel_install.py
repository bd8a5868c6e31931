"""A regular (non-editable) wheel, installed in a fresh environment and run from another folder, offline.

The environment reuses this one's installed dependencies (a ``.pth`` line adds their site-packages; an editable
install's own ``.pth`` there is not processed), so nothing is downloaded and torch is not installed twice; the
package itself comes only from the wheel. Every bundled resource (example video, default model, tiny encoder and
tokenizer, evaluation tasks and their data) must come from the installed package.
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from paths import MEDIA

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = """
import sys
from pathlib import Path
import onevision_hf, onevision_hf_cli
assert Path(onevision_hf.__file__).is_relative_to(sys.prefix), onevision_hf.__file__
assert Path(onevision_hf_cli.__file__).is_relative_to(sys.prefix), onevision_hf_cli.__file__
from onevision_hf.cli import main
video = "clip.mp4"
steps = [
    ["demo", "--output-dir", "out/demo"],
    ["select", video, "--num-frames", "8", "--output", "out/sel.npz"],
    ["encode", video, "--num-frames", "8", "--output", "out/features.safetensors"],
    ["make-tiny-llava", "out/tiny"],
    ["generate", "--model", "out/tiny", "--video", video, "--prompt", "What happens?", "--max-new-tokens", "4",
     "--num-frames", "8", "--max-pixels", "50176"],
    ["eval", "--model", "out/tiny", "--tasks", "chartqa_local,videomme_local", "--limit", "1", "--output", "out/eval"],
]
for step in steps:
    code = main(step)
    assert code == 0, (step, code)
    print("ok", step[0], flush=True)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh environment with the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a clean copy: a stale build/ folder in the checkout would leak into the wheel
    shutil.copytree(ROOT / "src", source / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "assets", source / "assets")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
                    str(root / "dist"), str(source)], check=True)
    [wheel] = (root / "dist").glob("onevision_hf-*.whl")
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site_packages = Path(subprocess.run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "--quiet", str(wheel)], check=True)
    return env / "bin"


def test_the_wheel_carries_the_bundled_resources_and_not_the_test_fixtures(installed):
    package = Path(subprocess.run([installed / "python", "-c", "import onevision_hf.resources as r; print(r.ASSETS)"],
                                  capture_output=True, text=True, check=True).stdout.strip()).parent
    assert (package / "assets" / "default-model" / "model.safetensors").is_file()
    assert (package / "assets" / "tiny-llm" / "tokenizer.json").is_file()
    assert (package / "evaluation" / "tasks" / "videomme" / "data" / "vm-001.mp4").is_file()
    assert not (package / "assets" / "reference-selection").exists()
    assert not list((package / "assets" / "reference-encoder").rglob("case_*"))


def test_the_installed_commands_run_offline_from_another_folder(installed, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(MEDIA / "carphone-176x144-h264.mp4", work / "clip.mp4")
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf-home"),
               "PATH": f"{installed}:/usr/bin:/bin"}
    help_text = subprocess.run([installed / "onevision-hf", "--help"], cwd=work, env=offline,
                               capture_output=True, text=True, check=True).stdout
    assert "make-tiny-llava" in help_text
    run = subprocess.run([installed / "python", "-c", COMMANDS], cwd=work, env=offline, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("ok ") == 6
    assert (work / "out" / "demo" / "selection.png").is_file()
    assert (work / "out" / "eval" / "results.json").is_file()
    assert sorted(path.name for path in work.iterdir()) == ["clip.mp4", "out"]  # nothing strays into the folder
