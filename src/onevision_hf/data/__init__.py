"""Dataset-scale data preparation: manifests and precomputed codec selections."""

from .manifest import read_manifest
from .precompute import PrecomputeJob, PrecomputeReport, StoredSelection, run_precompute, stored_selection

__all__ = ["PrecomputeJob", "PrecomputeReport", "StoredSelection", "read_manifest", "run_precompute",
           "stored_selection"]
