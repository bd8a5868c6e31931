"""Pseudo-labels for cluster discrimination: frozen-encoder features -> spherical k-means -> top-k centres.

1. `extract_features`: the pooled embedding of every row of a dataset (images, videos or precomputed
   selections, read as in pretraining by `pretrain_data.SampleReader`), L2-normalised; or features of any other
   teacher, computed elsewhere and passed as an (N, D) array;
2. `fit_kmeans`: k-means on the unit sphere (best of 3 restarts) with faiss when it is installed
   (``pip install faiss-cpu``; it scales to millions of centres), otherwise scikit-learn's `MiniBatchKMeans`;
3. `nearest_centroids`: the ``top_k`` centres of highest cosine per sample, nearest first;
4. `write_pseudo_labels`: the input dataset plus a ``labels`` column, saved with ``save_to_disk``.
"""

import importlib.util
from pathlib import Path

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import OneVisionInputError
from .pretrain_data import SampleReader, pack_samples

KMEANS_BACKENDS = ("auto", "faiss", "sklearn")


@torch.no_grad()
def extract_features(model, reader: SampleReader, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """(N, D) float32 L2-normalised ``pooler_output`` of every row of ``reader``, in row order."""
    model.eval()
    device = next(model.parameters()).device
    rng = np.random.default_rng(0)
    features = []
    for start in tqdm(range(0, len(reader), batch_size), desc="features", disable=not progress):
        samples = [reader.sample(index, rng) for index in range(start, min(start + batch_size, len(reader)))]
        inputs = {key: value.to(device) for key, value in pack_samples(samples).items()}
        pooled = model(**inputs).pooler_output.float()  # (b, D)
        features.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
    return np.concatenate(features)


def resolve_backend(backend: str = "auto") -> str:
    if backend not in KMEANS_BACKENDS:
        raise OneVisionInputError(f"k-means backend must be one of {KMEANS_BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "faiss" if importlib.util.find_spec("faiss") is not None else "sklearn"
    if importlib.util.find_spec(backend) is None:
        package = "faiss-cpu" if backend == "faiss" else "scikit-learn"
        raise OneVisionInputError(f"k-means backend {backend!r} is not installed: pip install {package}.")
    return backend


def _unit_rows(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def fit_kmeans(features: np.ndarray, num_clusters: int, iterations: int = 20, seed: int = 0,
               backend: str = "auto") -> np.ndarray:
    """(N, D) features -> (num_clusters, D) float32 unit-norm centroids (spherical k-means)."""
    features = _unit_rows(features)
    if features.ndim != 2 or not np.isfinite(features).all():
        raise OneVisionInputError(f"features must be a finite (N, D) array, got shape {features.shape}.")
    if not 1 <= num_clusters <= len(features):
        raise OneVisionInputError(f"num_clusters must lie in [1, {len(features)}] (one per sample at most), "
                                  f"got {num_clusters}.")
    if resolve_backend(backend) == "faiss":
        import faiss

        kmeans = faiss.Kmeans(features.shape[1], num_clusters, niter=iterations, nredo=3, seed=seed,
                              spherical=True, verbose=False)
        kmeans.train(features)
        centroids = kmeans.centroids
    else:
        from sklearn.cluster import MiniBatchKMeans

        kmeans = MiniBatchKMeans(n_clusters=num_clusters, max_iter=iterations, random_state=seed, n_init=3,
                                 batch_size=min(len(features), 4096))
        centroids = kmeans.fit(features).cluster_centers_
    return _unit_rows(centroids)


def nearest_centroids(features: np.ndarray, centroids: np.ndarray, top_k: int, chunk: int = 8192) -> np.ndarray:
    """(N, k) int64 ids of the ``top_k`` centroids of highest cosine with each feature, nearest first."""
    if not 1 <= top_k <= len(centroids):
        raise OneVisionInputError(f"top_k must lie in [1, {len(centroids)}] (the number of centroids), got {top_k}.")
    features, centroids = _unit_rows(features), _unit_rows(centroids)
    labels = []
    for start in range(0, len(features), chunk):
        similarity = features[start:start + chunk] @ centroids.T  # (n, C)
        top = np.argpartition(-similarity, top_k - 1, axis=1)[:, :top_k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        labels.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(labels).astype(np.int64)


def write_pseudo_labels(dataset_path: str | Path, labels: np.ndarray, output_path: str | Path) -> datasets.Dataset:
    """Save the dataset at ``dataset_path`` with its ``labels`` column set to ``labels`` (N, k) at ``output_path``."""
    dataset = datasets.load_from_disk(str(dataset_path))
    if len(dataset) != len(labels):
        raise OneVisionInputError(f"{len(labels)} label rows for a dataset of {len(dataset)} rows ({dataset_path}).")
    if "labels" in dataset.column_names:
        dataset = dataset.remove_columns("labels")
    dataset = dataset.add_column("labels", labels.tolist(),
                                 feature=datasets.Sequence(datasets.Value("int64")))
    dataset.save_to_disk(str(output_path))
    return dataset
