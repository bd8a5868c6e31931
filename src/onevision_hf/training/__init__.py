"""Training: cluster-discrimination pretraining of the encoder (`Pretrainer`, `ClusterDiscriminationLoss`,
pseudo-labels) and LLaVA fine-tuning."""

from .cluster_loss import ClusterDiscriminationLoss
from .pretrain_config import HeadConfig, PretrainConfig, SyntheticDataConfig
from .pretrain_data import PretrainBatches, SampleReader
from .pretrainer import Pretrainer
from .pseudo_labels import extract_features, fit_kmeans, nearest_centroids, write_pseudo_labels

__all__ = [
    "ClusterDiscriminationLoss",
    "HeadConfig",
    "PretrainBatches",
    "PretrainConfig",
    "Pretrainer",
    "SampleReader",
    "SyntheticDataConfig",
    "extract_features",
    "fit_kmeans",
    "nearest_centroids",
    "write_pseudo_labels",
]
