"""A process's first selection against its second, by the block `processors/heap_thresholds.py` frees first.

glibc hands a process's freed memory back to the kernel until the process has freed one large block; a first
selection then pays page faults for its per-frame scratch that later ones do not. For each ``--blocks`` size
(MiB; 0: no block, glibc's defaults), a fresh subprocess sets `heap_thresholds.THRESHOLD_BLOCK_BYTES` and runs
two selections of the same video; sizes are interleaved ``--repeats`` times. Prints the median wall time and
minor page faults of each call.

Usage: ``python benchmarks/first_selection.py [--preset default] [--blocks 0,2,8,31] [--repeats 3] [VIDEO ...]``
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from tqdm.auto import tqdm

from onevision_hf.resources import EXAMPLE_VIDEO, bundled

BUNDLED = bundled(EXAMPLE_VIDEO)  # the bundled phone clip

CHILD = r"""
import json, resource, sys, time
from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors import heap_thresholds
path, preset, block_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
heap_thresholds.THRESHOLD_BLOCK_BYTES = block_mib * 2**20
processor = OneVisionVideoProcessor(preset=preset)
calls = []
for _ in range(2):
    faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    processor.select(path)
    calls.append({"seconds": time.perf_counter() - start,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults})
print(json.dumps(calls))
"""


def run_child(video: Path, preset: str, block_mib: int) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", CHILD, str(video), preset, str(block_mib)], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, default=[BUNDLED])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--blocks", default="0,2,8,31", help="comma-separated block sizes in MiB (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    blocks = [int(size) for size in args.blocks.split(",")]
    for video in args.videos:
        runs = {block: [] for block in blocks}
        for _ in tqdm(range(args.repeats), desc=f"rounds on {video.name}"):
            for block in blocks:
                runs[block].append(run_child(video, args.preset, block))
        print(f"\n{video.name}, preset {args.preset}: {args.repeats} rounds, each in fresh subprocesses")
        print("| block freed first | first selection s | second s | first selection's minor faults | second's |")
        print("|---|---|---|---|---|")
        for block, calls in runs.items():
            def median(index, key):
                return statistics.median(call[index][key] for call in calls)
            label = f"{block} MiB" if block else "none (glibc's defaults)"
            print(f"| {label} | {median(0, 'seconds'):.2f} | {median(1, 'seconds'):.2f} | "
                  f"{median(0, 'faults'):,.0f} | {median(1, 'faults'):,.0f} |")


if __name__ == "__main__":
    main()
