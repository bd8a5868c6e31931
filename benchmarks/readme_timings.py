"""Run every code block of README.md as written, from the repository root, and time it.

    .venv/bin/python benchmarks/readme_timings.py              # every block but installs and the model retrain
    .venv/bin/python benchmarks/readme_timings.py --retrain    # ... and the default model's retrain (~30 min)
    .venv/bin/python benchmarks/readme_timings.py --only 12    # one block (numbers as --list prints them)

``bash`` blocks run with ``bash -e``, ``python`` blocks with ``.venv/bin/python``. The ``runs/...`` folders a block
writes are removed first, so each block starts as on a fresh clone (``runs/`` is git-ignored). Blocks that create
a virtual environment are skipped (they install, which measures the network) unless ``--install``. Prints a
table of blocks, exit codes and wall times, the machine's load average before and after (the README's times are
only as good as the machine was quiet), the tiny pretraining's loss (mean of the first / last 30 steps) and the
evaluation summary; every block's output goes to ``benchmarks/out/readme/block-NN.log``.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "benchmarks" / "out" / "readme"
FENCE = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
OUTPUT_FOLDER = re.compile(r"\bruns/[\w.-]+")
CONFIG = re.compile(r"\bconfigs/[\w.-]+\.yaml")
OUTPUT_DIR_KEY = re.compile(r"^output_dir:\s*(\S+)", re.MULTILINE)


def readme_blocks() -> list[tuple[str, str]]:
    return FENCE.findall((ROOT / "README.md").read_text())


def kind_of(language: str, code: str) -> str:
    if "-m venv" in code:
        return "install"
    if "configs/default-model.yaml" in code:
        return "retrain"
    return language


def folders_written(code: str) -> set[str]:
    """The ``runs/...`` folders a block names, and those of the configs it runs (their ``output_dir`` unless the
    block passes ``--output-dir``, and their data folders)."""
    folders = set(OUTPUT_FOLDER.findall(code))
    for config in CONFIG.findall(code):
        text = (ROOT / config).read_text()
        folders |= set(OUTPUT_FOLDER.findall(text))
        if "--output-dir" in code:
            folders -= set(OUTPUT_DIR_KEY.findall(text))
    return folders


def run_block(index: int, language: str, code: str, folders: set[str]) -> tuple[int, float]:
    for folder in folders:
        path = ROOT / folder
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    command = ["bash", "-e", "-c", code] if language == "bash" else [str(ROOT / ".venv" / "bin" / "python"), "-c", code]
    LOGS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(LOGS / f"block-{index:02d}.log", "w") as log:
        returncode = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    return returncode, time.perf_counter() - start


def pretrain_loss(folder: Path) -> str:
    log = folder / "log.jsonl"
    if not log.is_file():
        return "-"
    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines() if '"loss"' in line]
    return f"{sum(losses[:30]) / 30:.1f} -> {sum(losses[-30:]) / 30:.1f} over {len(losses)} steps"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="also run the blocks that create environments")
    parser.add_argument("--retrain", action="store_true", help="also retrain the default model (~30 minutes)")
    parser.add_argument("--only", type=int, action="append", help="run only these block numbers")
    parser.add_argument("--list", action="store_true", help="list the blocks and exit")
    args = parser.parse_args()
    blocks = readme_blocks()
    if args.list:
        for index, (language, code) in enumerate(blocks):
            print(f"{index:2d} {kind_of(language, code):8s} {code.splitlines()[0][:100]}")
        return
    skipped = {"install"} - ({"install"} if args.install else set()) | ({"retrain"} - ({"retrain"} if args.retrain
                                                                                       else set()))
    chosen = [index for index, (language, code) in enumerate(blocks)
              if (args.only and index in args.only) or (not args.only and kind_of(language, code) not in skipped)]
    load_before = os.getloadavg()
    rows, cleared = [], set()
    for index in tqdm(chosen, desc="README blocks", unit="block"):
        language, code = blocks[index]
        folders = folders_written(code) - cleared  # shared data is cleared once, at its first use, as on a fresh clone
        cleared |= folders
        returncode, seconds = run_block(index, language, code, folders)
        rows.append((index, kind_of(language, code), returncode, seconds, code.splitlines()[0][:90]))
    load_after = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs; load average (1, 5, 15 min) before {load_before}, after {load_after}\n")
    print("| block | kind | exit | seconds | first line |\n|---|---|---|---|---|")
    for index, kind, returncode, seconds, first_line in rows:
        print(f"| {index} | {kind} | {returncode} | {seconds:.0f} | `{first_line}` |")
    print(f"\ntiny pretraining, one process: {pretrain_loss(ROOT / 'runs' / 'pretrain-tiny')}")
    print(f"tiny pretraining, DDP: {pretrain_loss(ROOT / 'runs' / 'pretrain-tiny-ddp')}")
    summary = ROOT / "runs" / "eval-out" / "summary.md"
    if summary.is_file():
        print(f"\nevaluation summary ({summary.relative_to(ROOT)}):\n{summary.read_text()}")


if __name__ == "__main__":
    main()
