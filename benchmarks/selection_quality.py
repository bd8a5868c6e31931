"""Selection quality under real camera work: recall of the truly moving patches on synthetic videos.

Every scene (`SCENES`) is 48 frames of 352 x 640 at 30 fps: one or two textured squares (48 px) moving on
their own over a large textured background that a camera films (`synthetic_video.CameraMotion`: still,
pans, zoom, rotation, smoothed handheld shake, a scene cut); in the four flat scenes the background, the
square or both are one uniform colour instead. The ground truth is known per pixel: the
squares, plus the whole frame at the cut; camera motion alone is never "moving". Each scene is encoded with
libx264 (crf 23) at every keyframe interval of `GOPS` (``g`` = ``keyint_min``) and every B-structure of
`H264_B_FRAMES`, once each with libx265 and libvpx-vp9 (no exported vectors: the pixel path), and once in
each of `STREAM_VARIANTS`: other streams whose vectors FFmpeg exports (MPEG-4 part 2 and MPEG-2 with
B-frames, and x264's intra refresh, 16 references with 8 B-frames, MBAFF interlacing, several slices, the
baseline profile, 10-bit and 4:4:4 sampling, open GOPs, a low and a high quality).

Methods (16 frames sampled, first frame not forced, ``keep_first_frame=False``), each at the same patch
count K on its own patch grid, with its own ground truth on that grid:

* ``default``: ``OneVisionVideoProcessor()`` (codec vectors where the codec exports them);
* ``reference``: ``preset="reference"`` (16-px patches on a 576 x 576 square-pad canvas);
* ``block matching``: the default with ``motion_source="pixel"``;
* ``frame diff``: |Y_t - Y_(t-1)| summed per patch of the default's grid, same global top-K;
* ``uniform``: whole frames of the default's grid spread uniformly, as many as K holds (none when K is
  less than one frame).

Budgets: K = 2x the number of truly moving patches of the sampled frames after the first (on that method's
grid), and K = 12.5 % of the dense grid. Metric: share of those truly moving patches that are chosen
(``skip_first=True``). The first frame is not forced, but it is not counted either: it has no earlier frame,
so nothing in it can be seen to move (every preset keeps it through ``keep_first_frame`` instead); the
patches any method spends on it still count against K.

Usage: ``python benchmarks/selection_quality.py [--quick] [--scenes ...] [--gops 12,30] [--bframes 2B]
[--codecs h264,hevc,vp9,streams] [--workers 2] [--out cells.csv]``
"""

import argparse
import csv
import functools
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors.patch_selection import patch_scores, select_patches
from onevision_hf.processors.video_decoding import iter_frames, sample_frame_indices
from onevision_hf.synthetic_video import (
    CameraMotion,
    SyntheticScene,
    moving_patches,
    moving_recall,
    render_scene,
    write_video,
)

FRAMES, HEIGHT, WIDTH, RATE = 48, 352, 640, 30
SAMPLED = 16
DENSE_SHARE = 0.125
OBJECT_SIZE, OBJECT_SPEED = 48, 3.0
CUT_SAMPLE = SAMPLED // 2  # the scene cut falls on this sampled frame
SCENES: dict[str, dict] = {
    "still camera": {"camera": CameraMotion()},
    "slow pan (1 px/frame)": {"camera": CameraMotion(pan=(0.0, 1.0))},
    "fast pan (6 px/frame)": {"camera": CameraMotion(pan=(0.0, 6.0))},
    "diagonal pan (2 right, 1 down)": {"camera": CameraMotion(pan=(1.0, 2.0))},
    "zoom in (1 %/frame)": {"camera": CameraMotion(zoom=0.01)},
    "zoom out (1 %/frame)": {"camera": CameraMotion(zoom=-0.01)},
    "rotation (0.5 deg/frame)": {"camera": CameraMotion(rotation=0.5)},
    "handheld shake (3 px)": {"camera": CameraMotion(shake=3.0)},
    "two objects + pan": {"camera": CameraMotion(pan=(0.0, 3.0)), "num_objects": 2},
    "scene cut + pan": {"camera": CameraMotion(pan=(0.0, 2.0)), "cut": True},
    "near-static object (0.4 px/frame)": {"camera": CameraMotion(), "speed": 0.4},
    # flat content (a backdrop, a sky, a screen recording, an animation): any vector predicts a flat block
    "flat background (still camera)": {"camera": CameraMotion(), "flat_background": True},
    "flat background + pan (2 right, 1 down)": {"camera": CameraMotion(pan=(1.0, 2.0)), "flat_background": True},
    "flat object (still camera)": {"camera": CameraMotion(), "flat_objects": True},
    "flat object + flat background": {"camera": CameraMotion(), "flat_background": True, "flat_objects": True},
}
QUICK_SCENES = ("still camera", "diagonal pan (2 right, 1 down)", "zoom in (1 %/frame)")
GOPS = (12, 30, 250)
H264_B_FRAMES: dict[str, dict[str, str]] = {
    "0B": {"bf": "0"},
    "2B": {"bf": "2"},
    "3B pyramid": {"bf": "3", "b-pyramid": "normal"},
    "3B no pyramid": {"bf": "3", "x264-params": "b-pyramid=none"},
}
PIXEL_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {  # name: (encoder, suffix, options), keyframe every 30
    "hevc": ("libx265", ".mp4", {"crf": "23", "g": "30", "x265-params": "log-level=error"}),
    "vp9": ("libvpx-vp9", ".webm", {"crf": "32", "b": "0", "g": "30", "cpu-used": "5"}),
}
# name: (encoder, suffix, options, pixel format): the "streams" family, each encoded once
STREAM_VARIANTS: dict[str, tuple[str, str, dict[str, str], str]] = {
    "MPEG-4 part 2, 2 B": ("mpeg4", ".avi", {"q": "4", "g": "30", "bf": "2"}, "yuv420p"),
    "MPEG-2, 2 B": ("mpeg2video", ".mpg", {"q": "4", "g": "15", "bf": "2"}, "yuv420p"),
    "x264 intra refresh": ("libx264", ".mp4", {"crf": "23", "x264-params": "intra-refresh=1:keyint=30"},
                           "yuv420p"),
    "x264 16 refs, 8 B": ("libx264", ".mp4", {"crf": "23", "g": "60", "x264-params": "ref=16:bframes=8:b-adapt=2"},
                          "yuv420p"),
    "x264 interlaced": ("libx264", ".mp4", {"crf": "23", "g": "30", "x264-params": "interlaced=1:tff=1"}, "yuv420p"),
    "x264 4 slices": ("libx264", ".mp4", {"crf": "23", "g": "30", "slices": "4"}, "yuv420p"),
    "x264 baseline": ("libx264", ".mp4", {"crf": "23", "g": "30", "profile": "baseline"}, "yuv420p"),
    "x264 10-bit": ("libx264", ".mp4", {"crf": "23", "g": "30"}, "yuv420p10le"),
    "x264 4:4:4": ("libx264", ".mp4", {"crf": "23", "g": "30"}, "yuv444p"),
    "x264 open GOP": ("libx264", ".mp4", {"crf": "23", "g": "24", "x264-params": "open-gop=1:bframes=3"}, "yuv420p"),
    "x264 crf 40": ("libx264", ".mp4", {"crf": "40", "g": "30"}, "yuv420p"),
    "x264 crf 10": ("libx264", ".mp4", {"crf": "10", "g": "30"}, "yuv420p"),
}
STREAMS = "streams"
METHODS: dict[str, dict] = {
    "default": {},
    "reference": {"preset": "reference"},
    "block matching": {"motion_source": "pixel"},
}
ALL_METHODS = (*METHODS, "frame diff", "uniform")
BUDGETS = ("2x moving", "12.5%")



def render(scene_name: str) -> SyntheticScene:
    """The 48-frame scene ``scene_name`` (fixed seed per scene, so every encoding sees the same pixels)."""
    options = dict(SCENES[scene_name])
    cut_at = int(sample_frame_indices(FRAMES, SAMPLED)[CUT_SAMPLE]) if options.pop("cut", False) else None
    options.setdefault("speed", OBJECT_SPEED)
    return render_scene(FRAMES, HEIGHT, WIDTH, object_size=OBJECT_SIZE, cut_at=cut_at,
                        seed=list(SCENES).index(scene_name), **options)


_render_cached = functools.lru_cache(maxsize=2)(render)


def scene_folder(directory: str, scene_name: str) -> Path:
    """The folder of ``scene_name``'s encodes inside ``directory``."""
    return Path(directory) / scene_name.split(" (")[0].replace(" ", "-").replace("+", "and")


def encodings(gops, bframes, codecs) -> list[tuple[str, int, str]]:
    """(codec, keyframe interval, B-structure) of every encoding asked for."""
    chosen = [("h264", gop, name) for gop in gops for name in bframes] if "h264" in codecs else []
    chosen += [(codec, 30, "codec default") for codec in PIXEL_CODECS if codec in codecs]
    if STREAMS in codecs:
        chosen += [(STREAMS, 0, name) for name in STREAM_VARIANTS]
    return chosen


def encode(scene: SyntheticScene, codec: str, gop: int, bframes: str, directory: Path) -> Path:
    """Encode ``scene`` into ``directory``; the file's path (``bframes`` names the variant of `STREAMS`)."""
    pix_fmt = "yuv420p"
    if codec == "h264":
        encoder, suffix = "libx264", ".mp4"
        options = {"crf": "23", "g": str(gop), "keyint_min": str(gop), **H264_B_FRAMES[bframes]}
    elif codec == STREAMS:
        encoder, suffix, options, pix_fmt = STREAM_VARIANTS[bframes]
    else:
        encoder, suffix, options = PIXEL_CODECS[codec]
    name = "".join(char if char.isalnum() else "-" for char in f"{codec}-g{gop}-{bframes}")
    path = directory / f"{name}{suffix}"
    write_video(path, scene.frames, codec=encoder, rate=RATE, pix_fmt=pix_fmt, options=options)
    return path


def frame_difference_scores(path: Path, frame_indices: np.ndarray, geometry) -> np.ndarray:
    """(T, gh, gw) float32 sum of |Y_t - Y_(t-1)| per patch of the sampled frames (0 for frame 0)."""
    wanted, scores, previous = set(frame_indices.tolist()), [], None
    for frame in iter_frames(path, export_motion_vectors=False):
        luma = frame.luma().astype(np.float32)
        if frame.index in wanted:
            difference = np.zeros_like(luma) if previous is None else np.abs(luma - previous)
            scores.append(patch_scores(difference, geometry))
        previous = luma
    return np.stack(scores)


def top_k_mask(scores: np.ndarray, content: np.ndarray, budget: int) -> np.ndarray:
    """(T, gh, gw) bool: the global top-``budget`` content patches of a (T, gh, gw) score volume."""
    chosen = select_patches(scores, content, budget, keep_first_frame=False)
    mask = np.zeros(scores.shape, dtype=bool)
    mask[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
    return mask


def uniform_frames_mask(content: np.ndarray, frames: int, budget: int) -> np.ndarray:
    """(T, gh, gw) bool: the content of ``budget // per-frame content`` whole frames spread uniformly."""
    count = min(frames, budget // int(content.sum()))
    mask = np.zeros((frames, *content.shape), dtype=bool)
    if count:
        mask[np.floor(np.linspace(0, frames - 1, count)).astype(int)] = content
    return mask


def evaluate_clip(job: tuple[str, str, int, str, str]) -> list[dict]:
    """Every method at both budgets on one encoding of one scene; one CSV row (dict) per cell."""
    scene_name, codec, gop, bframes, directory = job
    scene = _render_cached(scene_name)
    path = encode(scene, codec, gop, bframes, scene_folder(directory, scene_name))
    cell = {"scene": scene_name, "codec": codec, "gop": gop, "bframes": bframes}
    rows, baseline = [], None
    for method, parameters in METHODS.items():
        started = time.perf_counter()
        processor = OneVisionVideoProcessor(**parameters, num_frames=SAMPLED, keep_first_frame=False,
                                            budget=DENSE_SHARE)
        dense = processor.select(path)
        truth = moving_patches(scene, dense.frame_indices, dense.geometry)  # (T, gh, gw) bool
        twice = processor.select(path, budget=2 * int(truth[1:].sum()))
        seconds = (time.perf_counter() - started) / 2
        for budget, selection in zip(BUDGETS, (twice, dense)):
            rows.append({**cell, "method": method, "budget": budget, **_scored(selection.patch_mask(), truth),
                         "motion": selection.method, "seconds": round(seconds, 3)})
        if method == "default":
            baseline = (dense, truth, [len(twice.positions), len(dense.positions)])
    dense, truth, counts = baseline
    content = dense.geometry.content_patch_mask()
    difference = frame_difference_scores(path, dense.frame_indices, dense.geometry)
    for budget, count in zip(BUDGETS, counts):
        for method, mask in (("frame diff", top_k_mask(difference, content, count)),
                             ("uniform", uniform_frames_mask(content, len(dense.frame_indices), count))):
            rows.append({**cell, "method": method, "budget": budget, **_scored(mask, truth), "motion": method,
                         "seconds": 0.0})
    path.unlink()
    return rows


def _scored(chosen: np.ndarray, truth: np.ndarray) -> dict:
    """CSV fields of one (T, gh, gw) bool selection against the truth: counts, recall, largest frame share."""
    per_frame = chosen.sum(axis=(1, 2))
    return {"patches": int(chosen.sum()), "moving": int(truth.sum()),
            "recall": moving_recall(chosen, truth, skip_first=True),
            "top_frame_share": round(float(per_frame.max() / max(1, per_frame.sum())), 4)}


def _worker_setup() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(jobs: list, workers: int) -> list[dict]:
    """`evaluate_clip` over ``jobs`` in ``workers`` spawned processes (in-process for 1), with a progress bar."""
    rows = []
    if workers <= 1:
        for job in tqdm(jobs, desc="clips"):
            rows.extend(evaluate_clip(job))
        return rows
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_setup) as pool:
        for clip_rows in tqdm(pool.imap_unordered(evaluate_clip, jobs), total=len(jobs), desc="clips"):
            rows.extend(clip_rows)
    return rows


def _cells(rows: list[dict], **where) -> list[dict]:
    return [row for row in rows if all(row[key] in value for key, value in where.items())]


def scene_table(rows: list[dict], codecs: tuple[str, ...], budget: str, scenes: list[str]) -> list[str]:
    """Markdown lines: per scene, each method's mean (min) recall over the encodings of ``codecs``."""
    lines = ["| scene | encodings | " + " | ".join(ALL_METHODS) + " |", "|---|---|" + "---|" * len(ALL_METHODS)]
    for scene in scenes:
        cells = []
        for method in ALL_METHODS:
            recalls = [row["recall"] for row in _cells(rows, scene=(scene,), codec=codecs, budget=(budget,),
                                                        method=(method,))]
            cells.append(f"{np.mean(recalls):.3f} ({min(recalls):.3f})" if recalls else "-")
        count = len(_cells(rows, scene=(scene,), codec=codecs, budget=(budget,), method=("default",)))
        lines.append(f"| {scene} | {count} | " + " | ".join(cells) + " |")
    return lines


def stream_table(rows: list[dict], budget: str) -> list[str]:
    """Markdown lines: per variant of `STREAMS`, each method's mean (min) recall over the scenes."""
    lines = ["| stream | scenes | " + " | ".join(ALL_METHODS) + " |", "|---|---|" + "---|" * len(ALL_METHODS)]
    for variant in STREAM_VARIANTS:
        cells = []
        for method in ALL_METHODS:
            recalls = [row["recall"] for row in _cells(rows, codec=(STREAMS,), bframes=(variant,),
                                                        budget=(budget,), method=(method,))]
            cells.append(f"{np.mean(recalls):.3f} ({min(recalls):.3f})" if recalls else "-")
        count = len(_cells(rows, codec=(STREAMS,), bframes=(variant,), budget=(budget,), method=("default",)))
        lines.append(f"| {variant} | {count} | " + " | ".join(cells) + " |")
    return lines


def report(rows: list[dict], scenes: list[str], seconds: float, workers: int) -> str:
    """The markdown report: per-scene tables, worst default cells, summary lines."""
    codec_groups = [(("h264",), "H.264 (codec vectors)"), (tuple(PIXEL_CODECS), "HEVC + VP9 (pixel path)"),
                    ((STREAMS,), "other streams (`STREAM_VARIANTS`)")]
    out = [f"Recall of the truly moving patches ({FRAMES} frames of {HEIGHT} x {WIDTH} at {RATE} fps, {SAMPLED} "
           f"sampled, first frame not forced and scored; {len(rows)} cells, {seconds:.0f} s on {workers} "
           "workers). Cells: mean (min) over the encodings.", ""]
    for codecs, label in codec_groups:
        if not _cells(rows, codec=codecs):
            continue
        for budget in BUDGETS:
            out += [f"**{label}, K = {budget}**", "", *scene_table(rows, codecs, budget, scenes), ""]
            if codecs == (STREAMS,):
                out += [f"**{label} by stream, K = {budget}**", "", *stream_table(rows, budget), ""]
    defaults = sorted(_cells(rows, method=("default",)), key=lambda row: row["recall"])
    out += ["Worst default cells:", "", "| scene | codec | keyframe every | B-frames | budget | default | "
            "block matching |", "|---|---|---|---|---|---|---|"]
    matching = {_key(row): row["recall"] for row in _cells(rows, method=("block matching",))}
    for row in defaults[:10]:
        out.append(f"| {row['scene']} | {row['codec']} | {row['gop']} | {row['bframes']} | {row['budget']} | "
                   f"{row['recall']:.3f} | {matching[_key(row)]:.3f} |")
    out.append("")
    for codecs, label in codec_groups:
        for budget in BUDGETS:
            recalls = [row["recall"] for row in _cells(defaults, codec=codecs, budget=(budget,))]
            if recalls:
                out.append(f"- default, {label}, K = {budget}: mean {np.mean(recalls):.3f}, worst "
                           f"{min(recalls):.3f} over {len(recalls)} cells")
    for budget in BUDGETS:
        shares = [row["top_frame_share"] for row in _cells(defaults, budget=(budget,))]
        out.append(f"- default, K = {budget}: share of K on the sampled frame that takes most, mean "
                   f"{np.mean(shares):.3f}, max {max(shares):.3f} (an even spread is {1 / SAMPLED:.3f})")
    for codec, label in (("h264", "H.264"), (STREAMS, "other-stream")):
        cells = _cells(defaults, codec=(codec,))
        trailing = sum(matching[_key(row)] - row["recall"] > 0.01 for row in cells)
        if cells:
            out.append(f"- {label} cells where default (codec vectors) trails block matching by > 0.01: "
                       f"{trailing} of {len(cells)}")
    return "\n".join(out)


def _key(row: dict) -> tuple:
    return row["scene"], row["codec"], row["gop"], row["bframes"], row["budget"]


def _choices(text: str | None, known, label: str, convert=str) -> list:
    if text is None:
        return list(known)
    chosen = [convert(item.strip()) for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown:
        raise SystemExit(f"unknown {label} {unknown}; choose from {list(known)}")
    return chosen


def _scene_names(text: str) -> list[str]:
    """The scenes named in comma-separated ``text``, each by the start of its name ("zoom in", "still")."""
    scenes = []
    for prefix in (item.strip() for item in text.split(",") if item.strip()):
        matches = [name for name in SCENES if name.startswith(prefix)]
        if len(matches) != 1:
            raise SystemExit(f"scene {prefix!r} matches {matches or 'nothing'}; choose from {list(SCENES)}")
        scenes.append(matches[0])
    return scenes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick_scenes = "; ".join(QUICK_SCENES).replace("%", "%%")  # argparse formats help with %
    parser.add_argument("--quick", action="store_true", help=f"scenes {quick_scenes}, keyframe every 12, 2 B-frames, "
                        "plus HEVC (about 1 min)")
    parser.add_argument("--scenes", help="comma-separated scenes, each by the start of its name")
    parser.add_argument("--gops", help=f"comma-separated H.264 keyframe intervals, from {GOPS}")
    parser.add_argument("--bframes", help=f"comma-separated H.264 B-structures, from {list(H264_B_FRAMES)}")
    parser.add_argument("--codecs", help=f"comma-separated, from h264, hevc, vp9, {STREAMS}")
    parser.add_argument("--workers", type=int, default=2, help="processes, one clip each at a time")
    parser.add_argument("--out", type=Path, help="CSV of every cell")
    args = parser.parse_args()
    scenes = _scene_names(args.scenes) if args.scenes else list(SCENES)
    gops = _choices(args.gops, GOPS, "keyframe intervals", int)
    bframes = _choices(args.bframes, H264_B_FRAMES, "B-structures")
    codecs = _choices(args.codecs, ("h264", *PIXEL_CODECS, STREAMS), "codecs")
    if args.quick:
        scenes = [name for name in QUICK_SCENES if name in scenes] or list(QUICK_SCENES)
        gops, bframes, codecs = [12], ["2B"], ["h264", "hevc"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="selection-quality-") as directory:
        for scene in scenes:
            scene_folder(directory, scene).mkdir()
        jobs = [(scene, *encoding, directory) for scene in scenes for encoding in encodings(gops, bframes, codecs)]
        rows = run_jobs(jobs, args.workers)
    order = {name: index for index, name in enumerate(SCENES)}
    rows.sort(key=lambda row: (order[row["scene"]], row["codec"], row["gop"], row["bframes"], row["method"],
                               row["budget"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("\n" + report(rows, scenes, time.perf_counter() - started, args.workers))


if __name__ == "__main__":
    main()
