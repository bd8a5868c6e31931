"""The patch cut after the top-K at several whole-frame fractions: seconds and CPU seconds, side by side.

A selection's last step computes the chosen patches' pixels (`video_selection._cut_patches`): a frame whose
patches' source windows cover at least `patch_pixels.WHOLE_FRAME_FRACTION` of its pixels is placed whole
(Pillow's resize), the others through the numpy passes of just those patches (`patch_pixels._scaled_patches`);
both give the same pixels. For every (video, preset), each fraction in ``--fractions`` runs in a fresh
subprocess, interleaved ``--repeats`` times; a child selects once to warm up, then times the cut of a second
selection (wall and CPU seconds of its threads) and the whole selection, and the script checks that every
fraction gave the same patches.

Usage: ``python benchmarks/patch_cut.py [--fractions 0.333,0.5,0.75,1] [--presets default,reference]
[--repeats 3] [VIDEO ...]`` (default: the bundled phone clip).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from onevision_hf.resources import EXAMPLE_VIDEO, bundled

BUNDLED = bundled(EXAMPLE_VIDEO)  # the bundled phone clip

CHILD = r"""
import json, sys, time
import numpy as np
import onevision_hf.processors.patch_pixels as patch_pixels
import onevision_hf.processors.video_selection as video_selection
from onevision_hf import OneVisionVideoProcessor
path, preset, fraction, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
patch_pixels.WHOLE_FRAME_FRACTION = fraction
cut = {}
cut_patches = video_selection._cut_patches
def timed(*arguments):
    start, cpu_start = time.perf_counter(), time.process_time()
    patches = cut_patches(*arguments)
    cut.update(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start)
    return patches
video_selection._cut_patches = timed
processor = OneVisionVideoProcessor(preset=preset)
processor.select(path)  # warm: the placement's pass order is verified once per geometry
start = time.perf_counter()
selection = processor.select(path)
seconds = time.perf_counter() - start
np.save(out, selection.patches)
print(json.dumps({"cut_seconds": cut["seconds"], "cut_cpu_seconds": cut["cpu_seconds"], "select_seconds": seconds}))
"""


def run_child(video: Path, preset: str, fraction: float, out: Path) -> dict:
    command = [sys.executable, "-c", CHILD, str(video), preset, repr(fraction), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, default=[BUNDLED])
    parser.add_argument("--fractions", default="0.333,0.5,0.75,1", help="comma-separated whole-frame fractions")
    parser.add_argument("--presets", default="default,reference", help="comma-separated video presets")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fractions = [float(value) for value in args.fractions.split(",")]
    presets = args.presets.split(",")
    print("| video | preset | whole-frame fraction | cut s (median) | cut CPU s | selection s | same patches |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for video in args.videos:
            for preset in presets:
                runs = {fraction: [] for fraction in fractions}
                outputs = {fraction: Path(scratch) / f"{index}.npy" for index, fraction in enumerate(fractions)}
                for _ in tqdm(range(args.repeats), desc=f"{video.name}, {preset}", leave=False):
                    for fraction in fractions:
                        runs[fraction].append(run_child(video, preset, fraction, outputs[fraction]))
                first = np.load(outputs[fractions[0]])
                for fraction in fractions:
                    same = np.array_equal(first, np.load(outputs[fraction]))
                    cut, cpu, select = (statistics.median(run[key] for run in runs[fraction])
                                        for key in ("cut_seconds", "cut_cpu_seconds", "select_seconds"))
                    print(f"| {video.name} | {preset} | {fraction:g} | {cut:.4f} | {cpu:.4f} | {select:.3f} | {same} |")


if __name__ == "__main__":
    main()
