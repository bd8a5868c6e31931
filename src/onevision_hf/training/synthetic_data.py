"""Generated pretraining data with known cluster structure, for the tiny end-to-end run and the tests.

Each of ``num_classes`` concepts is a prototype texture (a smooth random colour field times an oriented grating).
A sample mixes two prototypes (3:1) plus noise; its ``labels`` are the ``top_k`` prototypes nearest to it in
pixel space, nearest first: the pseudo-labels a pixel-space teacher with the prototypes as k-means centres
would give. Videos move the sample's texture with a concept-specific velocity and are encoded as H.264 with
B-frames (`synthetic_video.write_video`), so the codec-selection path sees real motion vectors.

Dataset columns (`datasets`, saved with ``save_to_disk``), as `pretrain_data` reads them:

* ``images``: ``image`` (PIL image), ``labels``;
* ``videos``: ``video`` (path of an .mp4 file next to the dataset), ``labels``;
* ``video-selections``: what `OneVisionVideoProcessor.select` chose on such videos, in the row format of
  ``onevision-hf precompute`` (``positions``, ``patches``, ``patch_size``, ``frame_indices``, ``method``, ...),
  plus ``labels``.
"""

from pathlib import Path

import datasets
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..synthetic_video import write_video
from .pretrain_config import SyntheticDataConfig


def concept_prototypes(num_classes: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """(num_classes, H, W, 3) float32 prototype textures in [0, 1]."""
    rng = np.random.default_rng([seed, num_classes])
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    prototypes = []
    for _ in range(num_classes):
        colours = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).resize((width, height),
                                                                                         Image.Resampling.BICUBIC)
        angle, period = rng.uniform(0, np.pi), rng.uniform(4.0, 12.0)
        grating = 0.5 + 0.5 * np.sin(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / period)
        prototypes.append(np.asarray(colours, dtype=np.float32) / 255 * (0.4 + 0.6 * grating[..., None]))
    return np.stack(prototypes)


def _mixed_sample(prototypes: np.ndarray, rng: np.random.Generator, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) float image mixing two concepts plus noise, and its top-k nearest prototypes."""
    first, second = rng.choice(len(prototypes), size=2, replace=False)
    image = 0.75 * prototypes[first] + 0.25 * prototypes[second]
    image = np.clip(image + rng.normal(0.0, 0.05, image.shape), 0.0, 1.0).astype(np.float32)
    distances = ((prototypes - image) ** 2).reshape(len(prototypes), -1).sum(axis=1)
    return image, np.argsort(distances, kind="stable")[:top_k].astype(np.int64)


def _concept_velocities(num_classes: int, seed: int) -> np.ndarray:
    """(num_classes, 2) pixels per frame (dy, dx) with which each concept's texture moves."""
    rng = np.random.default_rng([seed, num_classes, 1])
    return rng.integers(-3, 4, size=(num_classes, 2))


def _image_rows(spec: SyntheticDataConfig, num_classes: int) -> dict:
    prototypes = concept_prototypes(num_classes, spec.size, spec.seed)
    rng = np.random.default_rng([spec.seed, 2])
    images, labels = [], []
    for _ in range(spec.num_samples):
        image, top_k = _mixed_sample(prototypes, rng, spec.top_k)
        images.append(Image.fromarray((image * 255).round().astype(np.uint8)))
        labels.append(top_k.tolist())
    return {"image": images, "labels": labels}


def _video_rows(spec: SyntheticDataConfig, num_classes: int, video_dir: Path) -> dict:
    prototypes = concept_prototypes(num_classes, spec.size, spec.seed)
    velocities = _concept_velocities(num_classes, spec.seed)
    rng = np.random.default_rng([spec.seed, 3])
    video_dir.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for index in tqdm(range(spec.num_samples), desc="synthetic videos", leave=False):
        image, top_k = _mixed_sample(prototypes, rng, spec.top_k)
        dy, dx = velocities[top_k[0]]
        frames = np.stack([np.roll(image, (t * dy, t * dx), axis=(0, 1)) for t in range(spec.num_frames)])
        path = video_dir / f"video-{index:05d}.mp4"
        write_video(path, list((frames * 255).round().astype(np.uint8)), rate=10, options={"g": "8", "bf": "2"})
        paths.append(str(path))
        labels.append(top_k.tolist())
    return {"video": paths, "labels": labels}


def _selection_rows(video_rows: dict, video_processor: dict) -> list[dict]:
    """Selections of the videos in the format of `onevision-hf precompute` (`data.precompute`), plus labels."""
    from ..data.precompute import select_record, selection_parameters
    from ..processors.video_processing_onevision import OneVisionVideoProcessor

    processor = OneVisionVideoProcessor(**video_processor)
    parameters = selection_parameters(processor)
    return [{"path": path, "labels": labels, **select_record(processor, path), "selection": parameters}
            for path, labels in tqdm(list(zip(video_rows["video"], video_rows["labels"])),
                                     desc="precomputing selections", leave=False)]


def write_synthetic_dataset(spec: SyntheticDataConfig, num_classes: int, dataset_dir: str | Path,
                            video_processor: dict | None = None) -> datasets.Dataset:
    """Generate ``spec.num_samples`` rows of ``spec.kind`` and save them as a `datasets` dataset at
    ``dataset_dir`` (videos are written to ``dataset_dir``-videos/ next to it)."""
    dataset_dir = Path(dataset_dir)
    if spec.kind == "images":
        dataset = datasets.Dataset.from_dict(_image_rows(spec, num_classes))
    else:
        video_rows = _video_rows(spec, num_classes, dataset_dir.parent / f"{dataset_dir.name}-videos")
        if spec.kind == "videos":
            dataset = datasets.Dataset.from_dict(video_rows)
        else:
            from ..data.precompute import output_features

            features = output_features(datasets.Features({"path": datasets.Value("string"),
                                                          "labels": datasets.Sequence(datasets.Value("int64"))}))
            dataset = datasets.Dataset.from_list(_selection_rows(video_rows, video_processor or {}), features=features)
    dataset.save_to_disk(str(dataset_dir))
    return dataset
