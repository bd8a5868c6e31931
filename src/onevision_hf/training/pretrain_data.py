"""Mixed packed pretraining batches: images, codec-selected videos and uniformly sampled frames in one call.

Every sample becomes a `PatchSample` (uint8 patches and their (t, h, w) positions) by the kind of its row:

* ``image`` (path, bytes, PIL image or array): `image_loading` -> `geometry` (the head's ``image_resize``) ->
  `pack_upstream_inputs`, one frame at t = 0;
* ``positions`` + ``patches``: a video selection precomputed by ``onevision-hf precompute`` (rows with an
  ``error`` are skipped), read with `data.stored_selection`;
* ``video`` (path): `OneVisionVideoProcessor` with the head's ``video_processor`` parameters, either its codec
  selection or, for a ``1 - codec_fraction`` share of the samples, every patch of ``uniform_frames`` uniformly
  sampled frames (a budget of 1.0), both placed on the same temporal grid.

`PretrainBatches` maps a micro-step to this process's packed batch of every head. It is a pure function of
``(seed, micro-step, rank, world_size)``: head ``h`` walks a per-epoch permutation of its dataset in global
batches of ``batch_size * world_size`` and process ``r`` takes slice ``r`` of each, so resuming at a micro-step
replays exactly, and N processes of ``batch_size`` see the global batch one process of ``N * batch_size`` sees.
"""

from dataclasses import dataclass

import datasets
import numpy as np
import torch

from ..data.precompute import stored_selection
from ..errors import OneVisionInputError
from ..modeling.packing import cu_seqlens_from_lengths, pack_upstream_inputs
from ..processors.geometry import apply_geometry, plan_geometry
from ..processors.image_loading import load_image
from ..processors.normalization import normalize_patch_rows
from .pretrain_config import HeadConfig

SELECTION_COLUMNS = ("positions", "patches")


@dataclass
class PatchSample:
    patches: np.ndarray  # (K, C, p, p) uint8
    positions: np.ndarray  # (K, 3) int64 rows (t, h, w)


def image_sample(image, resize: str, patch_size: int) -> PatchSample:
    """An image (anything `load_image` reads) -> all its patches on the resize canvas, t = 0."""
    pixels = load_image(image)
    canvas = apply_geometry(pixels, plan_geometry(*pixels.shape[:2], resize, patch_size))  # (H, W, 3) uint8
    packed = pack_upstream_inputs(torch.from_numpy(canvas).permute(2, 0, 1)[None], patch_size)  # (1, 3, H, W)
    patches = packed.pixel_values.reshape(-1, 3, patch_size, patch_size)  # (L, 3, p, p)
    return PatchSample(patches.numpy(), packed.patch_positions.numpy().astype(np.int64))


class SampleReader:
    """Reads the rows of one `datasets` dataset (saved with ``save_to_disk``) as `PatchSample` (+ labels).

    ``image_resize`` places ``image`` rows; ``video_processor`` (`OneVisionVideoProcessor` parameters),
    ``codec_fraction`` and ``uniform_frames`` read ``video`` rows; ``name`` prefixes error messages.
    """

    def __init__(self, dataset: str, patch_size: int, image_resize: str = "shorter-crop:224",
                 video_processor: dict | None = None, codec_fraction: float = 1.0, uniform_frames: int = 8,
                 name: str = "dataset"):
        self.name, self.path, self.patch_size = name, dataset, patch_size
        self.image_resize, self.codec_fraction, self.uniform_frames = image_resize, codec_fraction, uniform_frames
        try:
            self.dataset = datasets.load_from_disk(dataset).with_format("numpy")
        except FileNotFoundError as error:
            raise OneVisionInputError(f"{name}: cannot load dataset {dataset!r} ({error}).") from None
        columns = set(self.dataset.column_names)
        if "error" in columns:  # `onevision-hf precompute` records videos that failed; they have no patches
            errors = self.dataset.with_format(None)["error"]
            self.dataset = self.dataset.select([i for i, error in enumerate(errors) if not error])
        self.has_labels = "labels" in columns
        if set(SELECTION_COLUMNS) <= columns:
            self.kind = "selection"
        elif "image" in columns:
            self.kind = "image"
        elif "video" in columns:
            self.kind = "video"
        else:
            raise OneVisionInputError(
                f"{name}: dataset {dataset!r} has columns {sorted(columns)}; expected 'image', 'video', or "
                "'positions' + 'patches' (a precomputed selection)."
            )
        # numpy formatting strips trailing NUL bytes from binary columns: read the stored patches unformatted
        self.rows = self.dataset.with_format(None) if self.kind == "selection" else self.dataset
        self.video_processor = None
        if self.kind == "video":
            from ..processors.video_processing_onevision import OneVisionVideoProcessor

            self.video_processor = OneVisionVideoProcessor(**{"patch_size": patch_size, **(video_processor or {})})
            if self.video_processor.patch_size != patch_size:
                raise OneVisionInputError(f"{name}: video_processor patch_size {self.video_processor.patch_size} "
                                          f"!= the encoder's {patch_size}.")

    @classmethod
    def for_head(cls, head: HeadConfig, patch_size: int) -> "SampleReader":
        reader = cls(head.dataset, patch_size, head.image_resize, head.video_processor, head.codec_fraction,
                     head.uniform_frames, name=f"head {head.name!r}")
        if not reader.has_labels:
            raise OneVisionInputError(f"head {head.name!r}: dataset {head.dataset!r} has no 'labels' column "
                                      "(write one with `onevision-hf pseudo-labels`).")
        return reader

    def __len__(self) -> int:
        return len(self.dataset)

    def labels(self, index: int) -> np.ndarray:
        return np.asarray(self.dataset.select_columns(["labels"])[int(index)]["labels"], dtype=np.int64)

    def sample(self, index: int, rng: np.random.Generator) -> PatchSample:
        """Row ``index`` as patches; ``rng`` decides codec selection vs uniform frames for ``video`` rows."""
        row = self.rows[int(index)]
        if self.kind == "image":
            return image_sample(row["image"], self.image_resize, self.patch_size)
        if self.kind == "selection":
            selection = stored_selection(row)
            if selection.patches.shape[1:] != (3, self.patch_size, self.patch_size):
                raise OneVisionInputError(f"{self.name}: row {index} has patches of shape {selection.patches.shape};"
                                          f" expected (K, 3, {self.patch_size}, {self.patch_size}).")
            return PatchSample(selection.patches, selection.positions)
        uniform = rng.random() >= self.codec_fraction
        overrides = {"num_frames": self.uniform_frames, "budget": 1.0} if uniform else {}
        selection = self.video_processor.select(str(row["video"]), **overrides)
        return PatchSample(selection.patches, selection.positions.astype(np.int64))


def pack_samples(samples: list[PatchSample]) -> dict[str, torch.Tensor]:
    """Samples -> the encoder's packed keyword arguments (CLIP-normalised rows)."""
    patches = np.concatenate([sample.patches for sample in samples])  # (N, C, p, p) uint8
    return {
        "pixel_values": normalize_patch_rows(patches),
        "patch_positions": torch.from_numpy(np.concatenate([sample.positions for sample in samples])),
        "cu_seqlens": cu_seqlens_from_lengths([len(sample.positions) for sample in samples]),
    }


class PretrainBatches(torch.utils.data.Dataset):
    """Micro-step -> dict with the packed inputs of all heads' samples (head 0's first), ``labels`` (one
    (b_h, K_h) int64 tensor per head) and ``head_sizes`` (b_h per head)."""

    def __init__(self, heads: list[HeadConfig], patch_size: int, num_micro_steps: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.heads = heads
        self.readers = [SampleReader.for_head(head, patch_size) for head in heads]
        self.num_micro_steps = num_micro_steps
        self.seed, self.rank, self.world_size = seed, rank, world_size
        for head, reader in zip(heads, self.readers):
            if len(reader) < head.batch_size * world_size:
                raise OneVisionInputError(
                    f"{reader.name}: dataset has {len(reader)} rows, fewer than one global batch "
                    f"({head.batch_size} x {world_size} processes)."
                )

    def __len__(self) -> int:
        return self.num_micro_steps

    def position(self, head_index: int, micro_step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) that ``micro_step`` reads from head ``head_index``."""
        global_batch = self.heads[head_index].batch_size * self.world_size
        batches_per_epoch = len(self.readers[head_index]) // global_batch
        return divmod(micro_step, batches_per_epoch)

    def data_position(self, micro_step: int) -> dict[str, dict[str, int]]:
        return {head.name: dict(zip(("epoch", "batch"), self.position(index, micro_step)))
                for index, head in enumerate(self.heads)}

    def _indices(self, head_index: int, micro_step: int) -> tuple[int, np.ndarray]:
        """This process's row indices of head ``head_index`` at ``micro_step``, and the epoch."""
        epoch, batch = self.position(head_index, micro_step)
        order = np.random.default_rng([self.seed, head_index, epoch]).permutation(len(self.readers[head_index]))
        size = self.heads[head_index].batch_size
        start = (batch * self.world_size + self.rank) * size
        return epoch, order[start:start + size]

    def __getitem__(self, micro_step: int) -> dict:
        samples, labels, head_sizes = [], [], []
        for head_index, reader in enumerate(self.readers):
            epoch, indices = self._indices(head_index, micro_step)
            head_labels = []
            for index in indices:
                rng = np.random.default_rng([self.seed, head_index, epoch, int(index)])
                samples.append(reader.sample(index, rng))
                head_labels.append(reader.labels(index))
            if len({len(row) for row in head_labels}) != 1:
                raise OneVisionInputError(f"{reader.name}: every row needs the same number of labels, "
                                          f"got {sorted({len(row) for row in head_labels})}.")
            labels.append(torch.from_numpy(np.stack(head_labels)))
            head_sizes.append(len(indices))
        return {**pack_samples(samples), "labels": labels, "head_sizes": head_sizes}
