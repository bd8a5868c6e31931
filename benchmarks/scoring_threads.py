"""Whether a second thread speeds up the scoring of sampled frames: the same work in one thread and in two.

Two measurements, each side by side in one run (two threads doing the same work; 1.00x would be perfect
parallelism, 2.00x none):

* a float32 multiply at several array sizes, ``--operations`` times per thread (numpy releases the GIL inside
  each operation; at small sizes the threads spend that time handing the GIL over);
* `frame_energy` of every sampled frame of a video (the default preset's energy maps, captured from one
  selection), once per thread.

Usage: ``python benchmarks/scoring_threads.py [--repeats 3] [VIDEO]`` (default: the bundled phone clip).
"""

import argparse
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import onevision_hf.processors.video_selection as video_selection
from onevision_hf import OneVisionVideoProcessor
from onevision_hf.resources import EXAMPLE_VIDEO, bundled

SIZES = (57_600, 230_400, 1_000_000)  # a 180 x 320 energy map, a 360 x 640 luma, a large array

BUNDLED = bundled(EXAMPLE_VIDEO)  # the bundled phone clip


def one_and_two_threads(work, repeats: int) -> tuple[float, float]:
    """Median wall seconds of ``work()`` alone, and of two threads each running ``work()`` at once."""
    alone, paired = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        alone.append(time.perf_counter() - start)
        threads = [threading.Thread(target=work) for _ in range(2)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        paired.append(time.perf_counter() - start)
    return statistics.median(alone), statistics.median(paired)


def multiply_work(size: int, operations: int):
    values = np.random.default_rng(0).random(size, dtype=np.float32)

    def work():
        out = np.empty_like(values)
        for _ in range(operations // size):
            np.multiply(values, values, out=out)
    return work


def energy_work(video: Path):
    """Every sampled frame's `frame_energy` call of one default selection of ``video``, replayed."""
    calls, original = [], video_selection.frame_energy

    def capture(*args):
        calls.append(args)
        return original(*args)

    video_selection.frame_energy = capture
    try:
        OneVisionVideoProcessor(preset="default").select(video)
    finally:
        video_selection.frame_energy = original

    def work():
        for args in calls:
            original(*args)
    return work, len(calls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=BUNDLED)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--operations", type=int, default=200_000_000, help="elements multiplied per thread")
    args = parser.parse_args()
    rows = []
    for size in tqdm(SIZES, desc="multiply", unit="size"):
        rows.append((f"float32 multiply, {size:,} elements", *one_and_two_threads(
            multiply_work(size, args.operations), args.repeats)))
    work, frames = energy_work(args.video)
    work()  # warm
    rows.append((f"frame_energy of {args.video.name}'s {frames} sampled frames", *one_and_two_threads(
        work, args.repeats)))
    print(f"\n{args.repeats} rounds, medians")
    print("| work | one thread, s | two threads at once, s | two / one |")
    print("|---|---|---|---|")
    for name, alone, paired in rows:
        print(f"| {name} | {alone:.3f} | {paired:.3f} | {paired / alone:.2f}x |")


if __name__ == "__main__":
    main()
