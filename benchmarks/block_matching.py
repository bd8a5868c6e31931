"""Block matching (the pixel path's motion, `processors/pixel_motion.py`): milliseconds per frame pair.

Times `block_matching_field` on consecutive frame pairs of a video (default: the bundled phone clip) in a
fresh subprocess. With ``--before DIR`` (another checkout, e.g. ``git worktree add --detach /tmp/head
98564db``), the same pairs also run with ``DIR/src``, the two interleaved ``--repeats`` times, and the script
checks that both give the same fields on every pair.

Usage: ``python benchmarks/block_matching.py [--pairs 20] [--repeats 3] [--before DIR] [VIDEO]``
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

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "media" / "beach-portrait-h264.mp4"

CHILD = r"""
import json, sys, time
import av, numpy as np
path, pairs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if len(sys.argv) > 4:
    sys.path.insert(0, sys.argv[4])
from onevision_hf.processors.pixel_motion import block_matching_field
lumas = []
with av.open(path) as container:
    for frame in container.decode(container.streams.video[0]):
        lumas.append(frame.to_ndarray(format="gray"))
        if len(lumas) > pairs:
            break
block_matching_field(lumas[1], lumas[0])  # warm
start = time.perf_counter()
fields = [block_matching_field(lumas[i], lumas[i - 1]) for i in range(1, len(lumas))]
seconds = time.perf_counter() - start
np.savez(out, **{f"dx{i}": f.dx for i, f in enumerate(fields)}, **{f"dy{i}": f.dy for i, f in enumerate(fields)})
print(json.dumps({"ms_per_pair": 1000 * seconds / len(fields), "pairs": len(fields),
                  "package": sys.modules["onevision_hf"].__file__}))
"""


def run_child(video: Path, pairs: int, out: Path, source: Path | None) -> dict:
    command = [sys.executable, "-c", CHILD, str(video), str(pairs), str(out)] + ([str(source)] if source else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_fields(first: Path, second: Path) -> bool:
    with np.load(first) as a, np.load(second) as b:
        return sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=BUNDLED)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose src is timed beside this one")
    args = parser.parse_args()
    checkouts = {"this checkout": None} | ({f"before ({args.before})": args.before / "src"} if args.before else {})
    times = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {name: Path(scratch) / f"{index}.npz" for index, name in enumerate(checkouts)}
        for _ in tqdm(range(args.repeats), desc="rounds"):
            for name, source in checkouts.items():
                times[name].append(run_child(args.video, args.pairs, outputs[name], source)["ms_per_pair"])
        identical = same_fields(*outputs.values()) if args.before else None
    print(f"\n{args.video.name}: {args.pairs} pairs, {args.repeats} rounds")
    print("| code | ms per frame pair (median) | rounds |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    if args.before:
        ratio = statistics.median(times[f"before ({args.before})"]) / statistics.median(times["this checkout"])
        print(f"\nspeed-up {ratio:.2f}x; fields identical on every pair: {identical}")


if __name__ == "__main__":
    main()
