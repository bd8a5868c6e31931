"""Pseudo-labels: k-means (faiss or scikit-learn) finds planted clusters; the command labels a dataset."""

import argparse
import importlib.util

import datasets
import numpy as np
import pytest

from onevision_hf import OneVisionInputError
from onevision_hf.commands import pseudo_labels as pseudo_labels_command
from onevision_hf.training import SampleReader, SyntheticDataConfig, fit_kmeans, nearest_centroids
from onevision_hf.training.synthetic_data import write_synthetic_dataset

from paths import TINY_ENCODER

BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                                        reason=f"{module} not installed"))
            for name, module in (("faiss", "faiss"), ("sklearn", "sklearn"))]


def planted_clusters(num_clusters=6, per_cluster=40, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, dim))
    membership = np.repeat(np.arange(num_clusters), per_cluster)
    return centres[membership] + 0.05 * rng.normal(size=(len(membership), dim)), membership


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmeans_recovers_planted_clusters(backend):
    features, membership = planted_clusters()
    centroids = fit_kmeans(features, 6, seed=0, backend=backend)
    assert centroids.shape == (6, 16)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    top1 = nearest_centroids(features, centroids, top_k=1)[:, 0]
    # each planted cluster maps to exactly one centroid, and distinct clusters to distinct centroids
    assert all(len(set(top1[membership == c])) == 1 for c in range(6))
    assert len(set(top1)) == 6


def test_top_k_labels_are_the_nearest_centroids_nearest_first():
    rng = np.random.default_rng(1)
    features, centroids = rng.normal(size=(50, 8)), rng.normal(size=(20, 8))
    labels = nearest_centroids(features, centroids, top_k=5, chunk=7)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    expected = np.argsort(-(unit(features) @ unit(centroids).T), axis=1)[:, :5]
    np.testing.assert_array_equal(labels, expected)


def test_bad_cluster_counts_raise_typed_errors():
    features, _ = planted_clusters()
    with pytest.raises(OneVisionInputError, match="num_clusters must lie in"):
        fit_kmeans(features, 10_000)
    with pytest.raises(OneVisionInputError, match="top_k must lie in"):
        nearest_centroids(features, features[:3], top_k=4)
    with pytest.raises(OneVisionInputError, match="backend"):
        fit_kmeans(features, 3, backend="cuml")


def test_command_labels_a_dataset_with_a_frozen_encoder(tmp_path):
    source = tmp_path / "images"
    write_synthetic_dataset(SyntheticDataConfig("images", 24, top_k=2, size=(28, 28)), 8, source)
    datasets.load_from_disk(str(source)).remove_columns("labels").save_to_disk(str(tmp_path / "unlabelled"))
    output = tmp_path / "labelled"
    parser = argparse.ArgumentParser()
    pseudo_labels_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["pseudo-labels", str(tmp_path / "unlabelled"), "--model", str(TINY_ENCODER),
                              "--num-clusters", "4", "--top-k", "3", "--image-resize", "shorter-crop:28",
                              "--output", str(output)])
    assert args.func(args) == 0

    labelled = datasets.load_from_disk(str(output))
    assert labelled.column_names == ["image", "labels"] and len(labelled) == 24
    labels = np.array(labelled["labels"])
    assert labels.shape == (24, 3) and labels.min() >= 0 and labels.max() < 4
    assert all(len(set(row)) == 3 for row in labels.tolist())
    assert np.load(tmp_path / "labelled-centroids.npy", allow_pickle=False).shape == (4, 64)
    reader = SampleReader(str(output), patch_size=14, image_resize="shorter-crop:28")
    assert reader.has_labels and reader.labels(0).tolist() == labels[0].tolist()
