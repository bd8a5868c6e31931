"""Per-frame kernels of the selection, side by side with another checkout: milliseconds per call.

``--kernel block-matching`` (the default) times `pixel_motion.block_matching_field` on consecutive frame pairs
(the pixel path's motion); ``--kernel energy-luma`` times `frame_energy.downsampled_luma` (the luma at the
energy's resolution, ``--factor`` 2 or 4) on the same frames; ``--kernel percentile`` times
`codec_energy.exact_percentile` (the 95th, the energy's normalisation) of each pair's absolute difference
``|Y_t - Y_(t-1)|`` as float32, at the luma downsampled by ``--factor`` (1: full resolution; a residual's values:
integers, a run of zeros); ``--kernel prediction`` times `codec_energy.compensated_prediction` (a motion-compensated
prediction, the residual's gathers and bilinear taps) of each frame from the one before by the pair's block
matching field (computed before the timing). Each runs on the first ``--pairs`` + 1 frames of a video (default:
the bundled phone clip) in a fresh subprocess. With ``--before DIR`` (another checkout, e.g.
``git worktree add --detach /tmp/head 98564db``), the same calls also run with ``DIR/src``, the two interleaved
``--repeats`` times, and the script checks that both give the same arrays on every call.

Usage: ``python benchmarks/frame_kernels.py [--kernel block-matching|energy-luma|percentile|prediction]
[--factor 2] [--pairs 20]
[--repeats 3] [--before DIR] [VIDEO]``
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
KERNELS = ("block-matching", "energy-luma", "percentile", "prediction")

CHILD = r"""
import json, sys, time
import av, numpy as np
kernel, path, pairs, factor, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if len(sys.argv) > 6:
    sys.path.insert(0, sys.argv[6])
from onevision_hf.processors.pixel_motion import block_matching_field
try:  # a selection raises glibc's heap thresholds before its first frame; the kernels run as they do there
    from onevision_hf.processors.heap_thresholds import raise_heap_thresholds
    raise_heap_thresholds()
except ImportError:  # a checkout from before stop 27
    pass
if kernel == "block-matching":
    def prepare(lumas, i):
        return lumas[i], lumas[i - 1]
    def call(luma, previous):
        field = block_matching_field(luma, previous)
        return {"dx": field.dx, "dy": field.dy}
elif kernel == "energy-luma":
    from onevision_hf.processors.frame_energy import downsampled_luma
    def prepare(lumas, i):
        return (lumas[i],)
    def call(luma):
        return {"luma": downsampled_luma(luma, factor)}
elif kernel == "percentile":
    from onevision_hf.processors.codec_energy import exact_percentile
    from onevision_hf.processors.frame_energy import downsampled_luma
    def prepare(lumas, i):
        current, previous = (downsampled_luma(luma, factor).astype(np.float32) for luma in (lumas[i], lumas[i - 1]))
        return (np.abs(current - previous),)
    def call(difference):
        return {"value": np.array(exact_percentile(difference, 95.0))}
else:
    from onevision_hf.processors.codec_energy import compensated_prediction
    def prepare(lumas, i):
        return lumas[i - 1], block_matching_field(lumas[i], lumas[i - 1])
    def call(reference, field):
        return {"prediction": compensated_prediction(reference, field)}
lumas = []
with av.open(path) as container:
    for frame in container.decode(container.streams.video[0]):
        lumas.append(frame.to_ndarray(format="gray"))
        if len(lumas) > pairs:
            break
inputs = [prepare(lumas, i) for i in range(1, len(lumas))]
call(*inputs[0])  # warm
start = time.perf_counter()
results = [call(*arguments) for arguments in inputs]
seconds = time.perf_counter() - start
np.savez(out, **{f"{name}{i}": array for i, result in enumerate(results) for name, array in result.items()})
print(json.dumps({"ms_per_call": 1000 * seconds / len(results), "calls": len(results),
                  "package": sys.modules["onevision_hf"].__file__}))
"""


def run_child(kernel: str, video: Path, pairs: int, factor: int, out: Path, source: Path | None) -> dict:
    command = [sys.executable, "-c", CHILD, kernel, str(video), str(pairs), str(factor), str(out)]
    result = subprocess.run(command + ([str(source)] if source else []), capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_arrays(first: Path, second: Path) -> bool:
    with np.load(first) as a, np.load(second) as b:
        return sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=BUNDLED)
    parser.add_argument("--kernel", choices=KERNELS, default="block-matching")
    parser.add_argument("--factor", type=int, default=2,
                        help="energy-luma: the luma downsampling (2 or 4); percentile: 1, 2 or 4")
    parser.add_argument("--pairs", type=int, default=20, help="calls per round (frame pairs for block matching)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose src is timed beside this one")
    args = parser.parse_args()
    checkouts = {"this checkout": None} | ({f"before ({args.before})": args.before / "src"} if args.before else {})
    times = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {name: Path(scratch) / f"{index}.npz" for index, name in enumerate(checkouts)}
        for _ in tqdm(range(args.repeats), desc="rounds"):
            for name, source in checkouts.items():
                run = run_child(args.kernel, args.video, args.pairs, args.factor, outputs[name], source)
                times[name].append(run["ms_per_call"])
        identical = same_arrays(*outputs.values()) if args.before else None
    detail = f", factor {args.factor}" if args.kernel in ("energy-luma", "percentile") else ""
    print(f"\n{args.video.name}, {args.kernel}{detail}: {args.pairs} calls, {args.repeats} rounds")
    print("| code | ms per call (median) | rounds |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    if args.before:
        ratio = statistics.median(times[f"before ({args.before})"]) / statistics.median(times["this checkout"])
        print(f"\nspeed-up {ratio:.2f}x; identical on every call: {identical}")


if __name__ == "__main__":
    main()
