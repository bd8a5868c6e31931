"""Throughput and storage of `onevision-hf precompute` on the bundled media and generated clips.

Reports, per video set and preset: videos/s per process, the same relative to a plain PyAV decode of the
same files (measured in the same run), and the dataset's bytes per video next to the source file size.

Usage: python benchmarks/precompute_throughput.py [--clips 8] [--num-proc 1] [--preset default]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import av
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="generated 96-frame 320x240 H.264 clips")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--preset", action="append", help="default and reference unless given")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="precompute-bench-"))
    try:
        media = sorted(bundled("media").glob("*.mp4"))
        clips = generated_clips(work, args.clips)
        rows = [measure(name, paths, work, preset, args.num_proc)
                for preset in (args.preset or ["default", "reference"])
                for name, paths in (("bundled media", media), ("generated clips", clips))]
    finally:
        shutil.rmtree(work)
    print(f"\n{args.num_proc} process(es)")
    print("| videos | preset | videos/s per process | time vs PyAV decode alone | stored per video "
          "| source per video |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
