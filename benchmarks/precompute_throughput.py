"""Throughput and storage of `onevision-hf precompute` on the bundled media and generated clips.

Reports, per video set and preset: videos/s per process, the same relative to a plain PyAV decode of the
same files (measured in the same run), and the dataset's bytes per video next to the source file size.

With ``--before DIR`` (another checkout, e.g. ``git worktree add --detach /tmp/before 0b87c5f``) every
(video set, preset) job also runs with ``DIR/src``, each in a fresh subprocess, alternating with this checkout
``--repeats`` times; the table then gives both and the speed-up (median over the rounds of before / after).

Usage: python benchmarks/precompute_throughput.py [--clips 8] [--num-proc 1] [--preset default]
[--before DIR [--repeats 3]]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from onevision_hf.data import PrecomputeJob, run_precompute
from onevision_hf.resources import bundled
from onevision_hf.synthetic_video import render_scene, write_video


def generated_clips(folder: Path, count: int) -> list[Path]:
    paths = []
    for index in tqdm(range(count), desc="generating clips"):
        scene = render_scene(96, 240, 320, num_objects=2, speed=3.0, pan=(0.0, 1.0 * (index % 2)), seed=index)
        paths.append(folder / f"clip-{index:03d}.mp4")
        write_video(paths[-1], scene.frames, codec="libx264", options={"bf": "2"})
    return paths


def decode_seconds(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                pass
    return time.perf_counter() - start


def measure(name: str, paths: list[Path], work: Path, preset: str, num_proc: int) -> str:
    manifest = work / f"{name}.csv"
    manifest.write_text("path\n" + "".join(f"{path}\n" for path in paths))
    output = work / f"{name}-{preset}"
    decode = decode_seconds(paths)
    start = time.perf_counter()
    report = run_precompute(PrecomputeJob(manifest=manifest, output=output, preset=preset, num_proc=num_proc,
                                          shard_size=16))
    seconds = time.perf_counter() - start
    assert not report.failures, report.failures
    stored = sum(f.stat().st_size for f in (output / "shards").glob("*.arrow")) / len(paths)
    source = sum(path.stat().st_size for path in paths) / len(paths)
    return (f"| {name} ({len(paths)} videos) | {preset} | {len(paths) / seconds / num_proc:.2f} | "
            f"{seconds / decode:.2f}x | {stored / 2**20:.2f} MB | {source / 2**20:.2f} MB |")


CHILD = r"""
import json, sys, time
from pathlib import Path
source, manifest, output, preset, num_proc = sys.argv[1:6]
if source:
    sys.path.insert(0, source)
from onevision_hf.data import PrecomputeJob, run_precompute
start = time.perf_counter()
report = run_precompute(PrecomputeJob(manifest=Path(manifest), output=Path(output), preset=preset,
                                      num_proc=int(num_proc), shard_size=16))
assert not report.failures, report.failures
print(json.dumps({"seconds": time.perf_counter() - start, "package": sys.modules["onevision_hf"].__file__}))
"""


def timed_child(source: Path | None, manifest: Path, output: Path, preset: str, num_proc: int) -> float:
    """Seconds of one precompute job in a fresh subprocess (imports excluded), with ``source`` first on the path."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-c", CHILD, str(source or ""), str(manifest), str(output), preset, str(num_proc)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def compare(name: str, paths: list[Path], work: Path, preset: str, num_proc: int, before: Path,
            repeats: int) -> str:
    """One row: this checkout against ``before``, alternating in fresh subprocesses, and the decode of each round."""
    manifest = work / f"{name}.csv"
    manifest.write_text("path\n" + "".join(f"{path}\n" for path in paths))
    seconds = {"after": [], "before": [], "decode": []}
    for _ in tqdm(range(repeats), desc=f"{name} {preset}: before/after rounds"):
        seconds["decode"].append(decode_seconds(paths))
        seconds["before"].append(timed_child(before, manifest, work / "out-before", preset, num_proc))
        seconds["after"].append(timed_child(None, manifest, work / "out-after", preset, num_proc))
    after, earlier, decode = (np.array(seconds[key]) for key in ("after", "before", "decode"))
    return (f"| {name} ({len(paths)} videos) | {preset} | {len(paths) / np.median(earlier) / num_proc:.2f} | "
            f"{len(paths) / np.median(after) / num_proc:.2f} | {np.median(earlier / after):.2f}x | "
            f"{np.median(earlier / decode):.2f}x | {np.median(after / decode):.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="generated 96-frame 320x240 H.264 clips")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--preset", action="append", help="default and reference unless given")
    parser.add_argument("--before", type=Path, help="another checkout to compare with (its src is imported)")
    parser.add_argument("--repeats", type=int, default=3, help="with --before: alternating rounds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="precompute-bench-"))
    try:
        media = sorted(bundled("media").glob("*.mp4"))
        clips = generated_clips(work, args.clips)
        jobs = [(name, paths, preset) for preset in (args.preset or ["default", "reference"])
                for name, paths in (("bundled media", media), ("generated clips", clips))]
        if args.before:
            rows = [compare(name, paths, work, preset, args.num_proc, args.before / "src", args.repeats)
                    for name, paths, preset in jobs]
        else:
            rows = [measure(name, paths, work, preset, args.num_proc) for name, paths, preset in jobs]
    finally:
        shutil.rmtree(work)
    print(f"\n{args.num_proc} process(es)")
    if args.before:
        print(f"| videos | preset | videos/s per process, before ({args.before}) | videos/s per process, this "
              "checkout | speed-up | before vs PyAV decode | this checkout vs PyAV decode |")
        print("|---|---|---|---|---|---|---|")
    else:
        print("| videos | preset | videos/s per process | time vs PyAV decode alone | stored per video "
              "| source per video |")
        print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
