"""Selection quality on synthetic H.264 videos with known motion: recall of the truly moving patches.

Scenes (made with PyAV, libx264 with B-frames): textured objects over a textured background, with the camera
still or panning, a near-static scene (one slow object), and a scene cut. Each method keeps the same number
of patches (12.5 % and 25 % of the dense grid of 64 frames, the first frame kept whole) and is scored by
the share of moving patches (after frame 0) it keeps:

* ``default``: the package's default preset (codec vectors);
* ``reference-energy``: the released recipe's energy (whole-pixel past vectors, no floors) on the same grid;
* ``pixel``: the default preset with pixel-domain block matching instead of codec vectors;
* ``frame-diff``: |Y_t - Y_(t-1)| summed per patch, same top-K (the classic baseline; no camera compensation);
* ``uniform``: whole frames, as many as the budget holds, spread uniformly over the sampled frames.

Usage: ``python benchmarks/selection_quality.py [--frames 128] [--out benchmarks/out]``
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors.patch_selection import patch_scores, resolve_budget, select_patches
from onevision_hf.processors.video_decoding import iter_frames
from onevision_hf.processors.video_presets import VIDEO_PRESETS
from onevision_hf.synthetic_video import moving_patches, moving_recall, render_scene, write_video

HEIGHT, WIDTH = 224, 280
BUDGETS = (0.125, 0.25)
SCENES = {
    "objects, still camera": {"num_objects": 2, "object_size": 40, "speed": 3.0},
    "objects, camera pan": {"num_objects": 2, "object_size": 40, "speed": 3.0, "pan": (1.0, 2.5)},
    "near-static (slow object)": {"num_objects": 1, "object_size": 40, "speed": 0.4},
    "objects + scene cut": {"num_objects": 2, "object_size": 40, "speed": 3.0, "cut_at": None},
}
REFERENCE_ENERGY = {key: VIDEO_PRESETS["reference"][key] for key in (
    "subpixel_vectors", "future_vectors", "camera_compensation", "motion_weight", "normalization_percentile",
    "motion_floor", "residual_floor", "intra_frame_energy")}


def frame_difference_scores(path, frame_indices, geometry) -> np.ndarray:
    """(T, gh, gw) sum of |Y_t - Y_(t-1)| per patch for the sampled frames (no motion compensation)."""
    wanted, scores, previous = set(frame_indices.tolist()), [], None
    for frame in iter_frames(path, export_motion_vectors=False):
        luma = frame.luma().astype(np.float32)
        if frame.index in wanted:
            difference = np.zeros_like(luma) if previous is None else np.abs(luma - previous)
            scores.append(patch_scores(difference, geometry))
        previous = luma
    return np.stack(scores)


def uniform_frames_mask(grid_size, budget: int) -> np.ndarray:
    """Whole frames, ``budget // per_frame`` of them including frame 0, spread uniformly."""
    frames, grid_h, grid_w = grid_size
    count = max(1, min(frames, budget // (grid_h * grid_w)))
    mask = np.zeros(grid_size, dtype=bool)
    mask[np.floor(np.linspace(0, frames - 1, count)).astype(int)] = True
    return mask


def evaluate(path, scene, budget: float) -> dict[str, float]:
    default = OneVisionVideoProcessor(budget=budget)
    results = {}
    selection = default.select(path)
    truth = moving_patches(scene, selection.frame_indices, selection.geometry)
    results["default"] = moving_recall(selection.patch_mask(), truth)
    for name, processor in (("reference-energy", OneVisionVideoProcessor(budget=budget, **REFERENCE_ENERGY)),
                            ("pixel", OneVisionVideoProcessor(budget=budget, motion_source="pixel"))):
        results[name] = moving_recall(processor.select(path).patch_mask(), truth)
    grid_t, grid_h, grid_w = selection.grid_size
    count = resolve_budget(budget, default.num_frames, grid_h, grid_w)
    content = selection.geometry.content_patch_mask()
    difference = frame_difference_scores(path, selection.frame_indices, selection.geometry)
    chosen = select_patches(difference, content, count, keep_first_frame=True)
    mask = np.zeros(selection.grid_size, dtype=bool)
    mask[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
    results["frame-diff"] = moving_recall(mask, truth)
    results["uniform"] = moving_recall(uniform_frames_mask(selection.grid_size, count), truth)
    results["moving share"] = float(truth[1:].mean())
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=128, help="frames per synthetic video")
    parser.add_argument("--seeds", type=int, default=2, help="videos per scene (results are averaged)")
    args = parser.parse_args()
    methods = ("default", "reference-energy", "pixel", "frame-diff", "uniform")
    table = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        jobs = [(name, seed) for name in SCENES for seed in range(args.seeds)]
        for name, seed in tqdm(jobs, desc="scenes"):
            options = dict(SCENES[name])
            if "cut_at" in options:
                options["cut_at"] = args.frames // 2
            scene = render_scene(args.frames, HEIGHT, WIDTH, seed=seed, **options)
            path = Path(directory) / f"scene-{seed}.mp4"
            write_video(path, scene.frames, codec="libx264", options={"bf": "3", "crf": "23"})
            for budget in BUDGETS:
                for key, value in evaluate(path, scene, budget).items():
                    table.setdefault((name, budget, key), []).append(value)
    print(f"\nRecall of truly moving patches (frames 1-63 of 64 sampled from {args.frames}, {HEIGHT}x{WIDTH}, "
          f"{args.seeds} videos per scene, {time.perf_counter() - start:.0f} s)\n")
    print("| scene | budget | moving share | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    for name in SCENES:
        for budget in BUDGETS:
            cells = [f"{np.mean(table[(name, budget, method)]):.3f}" for method in methods]
            share = np.mean(table[(name, budget, "moving share")])
            print(f"| {name} | {budget:.1%} | {share:.1%} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
