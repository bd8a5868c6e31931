"""Processor cost against plain PyAV decoding of the same file, and peak memory, on 720p H.264 or given videos.

Without file arguments, generates (once, into ``--out``) a ``--minutes``-long 1280x720 30 fps H.264 file with
B-frames (HEVC with ``--codec libx265``, whose decoder exports no vectors: the pixel fallback's cost): a
textured background panning slowly with moving objects, rendered frame by frame (never held
whole); ``--minutes 0.5`` gives a short clip, where the 64 sampled frames weigh most against the decode.
With file arguments (e.g. the bundled ``assets/media/*.mp4``), measures those instead, re-encoded (once, into
``--out``) with ``--codec`` when one is given. Each file is measured
in fresh subprocesses, interleaved ``--repeats`` times so machine load hits every mode alike:

* ``decode``: PyAV alone decodes every frame (its defaults, nothing converted);
* ``select``: `OneVisionVideoProcessor` (default preset) selects the patches (one streaming decode with
  motion-vector export, energy of the 64 sampled frames, RGB of those frames only);
* ``process``: the full call, ``processor(videos=[path])`` -> packed, normalised tensors.

``--versus-load-video`` measures instead what a user compares with: PyAV's decode, transformers'
``load_video(path, num_frames=64, backend="pyav")`` (64 uniform RGB frames, what the video processors of
transformers read; it runs without torchvision), and ``select`` with the ``default`` and ``reference`` presets;
``--before DIR`` adds the same two presets from another checkout's ``src`` (e.g. ``git worktree add --detach
/tmp/before 0b87c5f``), interleaved in the same rounds. Ratios are medians over the rounds of each round's time
over its decode (and its ``load_video``); CPU seconds (``time.process_time``, every thread of the child) are
printed too, as they move less than wall time on a shared machine, and the minor page faults of the measured
call (memory the kernel had to hand the process, zero-filled: a first call in a process pays them).

Prints wall times and ratios to the decode of the same round (side by side; imports excluded), the ratio
of the best (least disturbed) times, and each subprocess's peak RSS (imports included: torch and
transformers alone take a few hundred MB).

Usage: ``python benchmarks/processor_overhead.py [--minutes 10] [--repeats 3] [--codec libx265]
[--versus-load-video [--before DIR]] [VIDEO ...]``
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
from tqdm.auto import tqdm

HEIGHT, WIDTH, RATE = 720, 1280, 30
CODEC_OPTIONS = {"libx264": {"preset": "veryfast", "bf": "3", "crf": "26"},
                 "libx265": {"preset": "veryfast", "crf": "28", "x265-params": "log-level=error"}}
CODEC_NAMES = {"libx264": "h264", "libx265": "hevc"}  # in the generated file's name

CHILD = r"""
import json, resource, sys, time
import av
mode, path = sys.argv[1], sys.argv[2]
source = sys.argv[3] if len(sys.argv) > 3 else None
if source:  # another checkout's package (the `--before` baseline)
    sys.path.insert(0, source)
preset = "reference" if mode.endswith("-reference") else "default"
if mode == "load_video":
    from transformers.video_utils import load_video
elif mode != "decode":  # imports (torch, transformers) are not part of processing a video
    from onevision_hf import OneVisionVideoProcessor
    processor = OneVisionVideoProcessor(preset=preset)
start, cpu_start = time.perf_counter(), time.process_time()
faults_start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
if mode == "decode":
    with av.open(path) as container:
        frames = sum(1 for _ in container.decode(container.streams.video[0]))
    detail = {"frames": frames}
elif mode == "load_video":
    video, _ = load_video(path, num_frames=64, backend="pyav")
    detail = {"frames": list(video.shape)}
elif mode.startswith("select"):
    selection = processor.select(path)
    detail = {"patches": len(selection.positions), "method": selection.method,
              "package": sys.modules["onevision_hf"].__file__}
else:
    batch = processor(videos=[path])
    detail = {"pixel_values": list(batch["pixel_values"].shape)}
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "minor_faults": usage.ru_minflt - faults_start, **detail}))
"""


def write_long_video(path: Path, minutes: float, codec: str = "libx264") -> None:
    """Render and encode frame by frame: memory stays at one frame plus the encoder's lookahead."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(HEIGHT // 8 + 40, WIDTH // 8 + 40, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(coarse, 8, 0), 8, 1)  # (H + 320, W + 320, 3) blocky texture
    sprite = rng.integers(64, 192, size=(96, 96, 3), dtype=np.uint8)
    count = int(minutes * 60 * RATE)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = CODEC_OPTIONS[codec]
        for index in tqdm(range(count), desc=f"writing {path.name}", unit="frame"):
            phase = index / count * 2 * np.pi
            oy, ox = int(160 + 150 * np.sin(3 * phase)), int(160 + 150 * np.cos(5 * phase))  # slow pan
            frame = background[oy:oy + HEIGHT, ox:ox + WIDTH].copy()
            for k in range(3):
                y = int((HEIGHT - 96) * (0.5 + 0.45 * np.sin(index * 0.02 * (k + 1) + k)))
                x = int((WIDTH - 96) * (0.5 + 0.45 * np.cos(index * 0.015 * (k + 2) + k)))
                frame[y:y + 96, x:x + 96] = sprite
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def reencode(path: Path, codec: str, out: Path) -> Path:
    """``path`` re-encoded with ``codec`` (same size and rate; display rotation dropped), cached in ``out``."""
    target = out / f"{path.stem}-{CODEC_NAMES[codec]}.mp4"
    if target.exists():
        return target
    with av.open(str(path)) as source, av.open(str(target), "w") as container:
        decoded = source.streams.video[0]
        stream = container.add_stream(codec, rate=decoded.average_rate)
        stream.width, stream.height, stream.pix_fmt = decoded.width, decoded.height, "yuv420p"
        stream.options = CODEC_OPTIONS[codec]
        for frame in tqdm(source.decode(decoded), desc=f"re-encoding {path.name}", unit="frame"):
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def run_child(mode: str, path: Path, source: Path | None = None) -> dict:
    command = [sys.executable, "-c", CHILD, mode, str(path)] + ([str(source)] if source else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_versus_load_video(path: Path, repeats: int, before: Path | None) -> None:
    """One file's table against PyAV decode and transformers' ``load_video``: fresh subprocesses, interleaved."""
    modes = [("decode", None), ("load_video", None), ("select", None), ("select-reference", None)]
    if before is not None:
        modes += [("select", before), ("select-reference", before)]
    runs = {mode: [] for mode in modes}
    for _ in tqdm(range(repeats), desc=f"interleaved runs on {path.name}"):
        for mode, source in modes:
            runs[(mode, source)].append(run_child(mode, path, source))
    seconds = {mode: np.array([run["seconds"] for run in runs[mode]]) for mode in modes}
    decode, load_video = seconds[("decode", None)], seconds[("load_video", None)]
    print(f"\n{path}: {path.stat().st_size / 1e6:.1f} MB, {runs[('decode', None)][-1]['frames']} frames, "
          f"{repeats} rounds")
    cpu = {mode: np.array([run["cpu_seconds"] for run in runs[mode]]) for mode in modes}
    print("| mode | median seconds | vs PyAV decode (median of rounds) | vs load_video (median of rounds) "
          "| CPU seconds (median, all threads) | CPU vs load_video's | minor page faults (median) "
          "| peak RSS MB (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, source in modes:
        values = seconds[(mode, source)]
        label = ("select default" if mode == "select" else mode.replace("-", " ")) + (" (before)" if source else "")
        peak = max(run["peak_rss_mb"] for run in runs[(mode, source)])
        faults = np.median([run["minor_faults"] for run in runs[(mode, source)]])
        print(f"| {label} | {np.median(values):.2f} | {np.median(values / decode):.2f}x | "
              f"{np.median(values / load_video):.2f}x | {np.median(cpu[(mode, source)]):.2f} | "
              f"{np.median(cpu[(mode, source)] / cpu[('load_video', None)]):.2f}x | {faults:,.0f} | {peak:.0f} |")


def measure(path: Path, repeats: int) -> None:
    """Print one file's table: every mode ``repeats`` times, interleaved, each in a fresh subprocess."""
    modes = ("decode", "select", "process")
    runs = {mode: [] for mode in modes}
    for _ in tqdm(range(repeats), desc=f"interleaved runs on {path.name}"):
        for mode in modes:
            runs[mode].append(run_child(mode, path))
    decode = np.array([run["seconds"] for run in runs["decode"]])
    print(f"\n{path}: {path.stat().st_size / 1e6:.1f} MB, {runs['decode'][-1]['frames']} frames")
    print("| mode | seconds per round | ratio to decode, per round | best / best decode | peak RSS MB (max) |")
    print("|---|---|---|---|---|")
    for mode in modes:
        seconds = np.array([run["seconds"] for run in runs[mode]])
        rounds = ", ".join(f"{value:.2f}" for value in seconds)
        ratios = ", ".join(f"{value:.2f}x" for value in seconds / decode)
        peak = max(run["peak_rss_mb"] for run in runs[mode])
        print(f"| {mode} | {rounds} | {ratios} | {seconds.min() / decode.min():.2f}x | {peak:.0f} |")
    print("details:", json.dumps({mode: runs[mode][-1] for mode in modes}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, help="videos to measure (default: the generated one)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the generated video")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved measurements per mode")
    parser.add_argument("--codec", choices=sorted(CODEC_OPTIONS),
                        help="encoder of the generated video (default libx264), or to re-encode the given videos "
                             "with (libx265: HEVC, which exports no vectors: the pixel fallback)")
    parser.add_argument("--versus-load-video", action="store_true",
                        help="decode, transformers' load_video (64 frames) and both presets side by side")
    parser.add_argument("--before", type=Path, help="with --versus-load-video: also time this checkout's src")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="where the video is cached")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    videos = args.videos
    if videos and args.codec:
        videos = [reencode(path, args.codec, args.out) for path in videos]
    elif not videos:
        codec = args.codec or "libx264"
        videos = [args.out / f"long-{args.minutes:g}min-720p-{CODEC_NAMES[codec]}.mp4"]
        if not videos[0].exists():
            write_long_video(videos[0], args.minutes, codec)
    for path in videos:
        if args.versus_load_video:
            measure_versus_load_video(path, args.repeats, args.before and args.before / "src")
        else:
            measure(path, args.repeats)


if __name__ == "__main__":
    main()
