"""One streaming pass over a video -> `VideoSelection`: which patches of which frames the encoder reads.

The pass holds only what it still needs: the decoded frames a sampled frame's vectors may point into (up to
16 earlier ones and, for a B-frame, the later ones up to the next I/P frame: `ReferenceWindow`), and, for
each sampled frame, its decoded planes (bounded; see `_ScoredFrames`) and its patch scores. After the pass,
one global top-K picks the patches and only their pixels are computed, as uint8 and exactly as the whole
placed frame would hold them (`patch_pixels`; normalisation is the processor's last step, so a dataset
precompute can store selections as they are). The same recipe on the same input gives the same selection.

Scoring a sampled frame (its references, motion fields, energy and patch scores) runs on worker threads (the
cores the decoders leave, at least one: `MAX_SCORING_THREADS`) while the decoders go on: PyAV, swscale, numpy
and Pillow release the GIL, so the decoding and the scoring share the cores. Scores are collected in
sampling order (the result does not depend on timing), and at most `MAX_FRAMES_IN_FLIGHT` sampled frames are
being scored at a time, so memory stays bounded.
"""

import functools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from ..errors import OneVisionInputError, OneVisionVideoError
from .codec_energy import CODEC_CELL, MotionField, codec_motion_fields
from .decode_segments import available_cores, decode_segment_count, iter_segment, plan_decode, plannable
from .frame_energy import EnergyRecipe, downsampled_luma, energy_downscale, frame_energy
from .geometry import FrameGeometry, ResizeSpec, apply_geometry
from .heap_thresholds import raise_heap_thresholds
from .patch_pixels import place_patches
from .patch_selection import (
    SELECTION_UNITS,
    patch_scores,
    plan_video_geometry,
    resolve_budget,
    select_patches,
    temporal_positions,
)
from .pixel_motion import block_matching_field
from .reference_frames import ReferenceFrames, ReferenceWindow, identify_references, unused_list_vectors
from .video_decoding import (
    ArrayFrame,
    DecodedFrame,
    SegmentMismatch,
    VideoStreamInfo,
    iter_frames,
    probe_stream,
    sample_frame_indices,
    upright,
)

METHOD_CODEC = "codec-mv"
METHOD_PIXEL = "pixel-block-matching"
MOTION_SOURCES = ("auto", "pixel")
MAX_FRAMES_IN_FLIGHT = 4  # sampled frames being scored at a time
# workers scoring sampled frames (numpy and Pillow release the GIL): the cores the decoders leave, at least one,
# at most this many. More threads than cores cost and do not help: they take turns at the GIL (on 2 cores with
# one decoder, a second worker made the bundled clip's selection slower and its CPU time higher)
MAX_SCORING_THREADS = 4
DEFERRED_FRAME_BYTES = 256 * 2**20  # decoded planes kept for `_finish` (64 yuv420 frames of 1080p: 199 MB)
PATCH_CUT_THREADS = 2  # `_finish` converts and resamples frames in parallel (Pillow and swscale release the GIL)
# numpy's BLAS (OpenBLAS) runs one thread per call: the matrices here are small, and OpenBLAS's idle threads spin
# on the cores the decoder and the scoring threads need (`benchmarks/README.md`, "Final code")
BLAS_THREADS = 1


@dataclass(frozen=True)
class SelectionRecipe:
    """Everything that decides a selection (the video processor's config builds it)."""

    num_frames: int = 64
    patch_size: int = 14
    resize: str = "native"
    min_pixels: int | None = None
    max_pixels: int | None = None
    budget: float | int = 0.125  # patch count, or fraction of the dense grid of num_frames frames
    keep_first_frame: bool = True
    first_frame_padding: bool = False  # the kept first frame includes its padding patches (released recipe)
    selection_unit: int = 1  # 2: select whole 2 x 2-patch blocks
    rope_temporal_size: int | None = 64
    motion_source: str = "auto"  # "auto": codec vectors when the codec exports them; "pixel": block matching
    energy: EnergyRecipe = field(default_factory=EnergyRecipe)

    def __post_init__(self):
        if self.num_frames < 1:
            raise OneVisionInputError(f"num_frames must be >= 1, got {self.num_frames}.")
        if self.patch_size < 1:
            raise OneVisionInputError(f"patch_size must be >= 1, got {self.patch_size}.")
        if self.rope_temporal_size is not None and self.num_frames > self.rope_temporal_size:
            raise OneVisionInputError(
                f"num_frames ({self.num_frames}) exceeds rope_temporal_size ({self.rope_temporal_size}): sampled "
                "frames would share temporal positions."
            )
        if self.selection_unit not in SELECTION_UNITS:
            raise OneVisionInputError(
                f"selection_unit must be 1 or 2 (patches per unit side), got {self.selection_unit}."
            )
        ResizeSpec.parse(self.resize)
        resolve_budget(self.budget, self.num_frames, 1, 1)
        if self.keep_first_frame and isinstance(self.budget, float) and self.budget * self.num_frames < 1:
            raise OneVisionInputError(
                f"budget {self.budget} of {self.num_frames} frames is less than the first frame kept whole; "
                "raise the budget or turn keep_first_frame off."
            )
        if self.motion_source not in MOTION_SOURCES:
            raise OneVisionInputError(f"motion_source must be one of {MOTION_SOURCES}, got {self.motion_source!r}.")


@dataclass
class VideoSelection:
    """The patches chosen from one video, before normalisation.

    Attributes:
        frame_indices: (T,) int64 decoded-frame index of each sampled frame.
        temporal_positions: (T,) int64 position of each sampled frame on the encoder's temporal grid.
        positions: (K, 3) int64 rows (t, h, w), t on the temporal grid, sorted; the encoder's ``patch_positions``.
        patches: (K, C, p, p) uint8 pixels of those patches, cut from the placed (resized/padded) frames.
        method: the motion estimate that ran: ``"codec-mv"`` or ``"pixel-block-matching"``.
        fallback_reason: why the codec vectors were not used (None when they were).
        geometry: how every frame was placed on the canvas (grid size, padding, scale).
        scores: (T, grid_h, grid_w) float32 patch scores the selection ranked.
        source_frame_count: frames in the video (decoded count).
        frames: (T, H, W, 3) uint8 placed frames, only when asked for (`select_video(keep_frames=True)`).
        source_fps: the video's frame rate (the container's; for decoded frames what the caller said), or None.
    """

    frame_indices: np.ndarray
    temporal_positions: np.ndarray
    positions: np.ndarray
    patches: np.ndarray
    method: str
    fallback_reason: str | None
    geometry: FrameGeometry
    scores: np.ndarray
    source_frame_count: int
    frames: np.ndarray | None = None
    source_fps: float | None = None

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """(T, grid_h, grid_w): the dense grid the selection is a subset of."""
        return (len(self.frame_indices), *self.geometry.grid_size)

    @property
    def sample_indices(self) -> np.ndarray:
        """(K,) int64 index into the sampled frames of each chosen patch."""
        return np.searchsorted(self.temporal_positions, self.positions[:, 0]).astype(np.int64)

    def patch_mask(self) -> np.ndarray:
        """(T, grid_h, grid_w) bool: True for the chosen patches."""
        mask = np.zeros(self.grid_size, dtype=bool)
        mask[self.sample_indices, self.positions[:, 1], self.positions[:, 2]] = True
        return mask


@dataclass(frozen=True)
class FrameMotion:
    """What a sampled frame is scored with, at the energy's resolution (`downsampled_luma` by ``downscale``).

    ``fields`` None: no motion is known (the frame scores by its intra policy); ``[]``: the video's first frame
    under the ``"pixel"`` policy (nothing to compare it with: it scores 0, and enters through
    ``keep_first_frame``). ``references``: the reference lumas by signed distance the fields point into."""

    luma: np.ndarray
    fields: list[MotionField] | None
    references: dict[int, np.ndarray]
    downscale: int


@dataclass(frozen=True)
class _DeferredFrame:
    """A sampled frame whose pixels are placed only once the top-K says which of its patches are kept."""

    frame: DecodedFrame | ArrayFrame
    quarter_turns: int

    def upright_rgb(self) -> np.ndarray:
        """(H0, W0, 3) uint8 RGB, upright (a rotated view when the frame carries display rotation)."""
        return upright(self.frame.rgb(), self.quarter_turns)

    def placed(self, geometry: FrameGeometry) -> np.ndarray:
        """(H, W, 3) uint8 the whole frame placed on the canvas (`apply_geometry`)."""
        return apply_geometry(np.ascontiguousarray(self.upright_rgb()), geometry)


class _ScoredFrames:
    """Accumulates the sampled frames: their pixels (placed, or deferred) and patch scores, in sampling order.

    `plan` fixes the canvas and the energy's resolution from the first sampled frame; `energy_scores` (any
    thread) scores a frame; `store` (any thread) puts its pixels and scores in its sampling slot. A frame's pixels are
    kept as decoded (a `_DeferredFrame`: the decoder's own planes, yuv420 holds 1.5 bytes a pixel) while the
    deferred frames hold at most `DEFERRED_FRAME_BYTES`; past that, and for a frame whose size differs from the
    first one, they are placed on the canvas at once (an (H, W, 3) uint8 array), as the full path does.
    `_finish` then converts and resamples only what the chosen patches need.
    """

    def __init__(self, recipe: SelectionRecipe, count: int):
        self.recipe = recipe
        self.geometry: FrameGeometry | None = None
        self.downscale = 1  # luma downsampling of the energy (`energy_downscale`)
        self.energy_size: tuple[int, int] | None = None  # upright energy map of the planned frame size
        self.pixels: list[np.ndarray | _DeferredFrame | None] = [None] * count  # by sampling position
        self.scores: list[np.ndarray | None] = [None] * count
        self.deferred_bytes = 0
        self.planned = threading.Event()
        self._lock = threading.Lock()

    @property
    def complete(self) -> bool:
        return all(scores is not None for scores in self.scores)

    def plan(self, frame: DecodedFrame | ArrayFrame) -> None:
        """Fix the canvas geometry, the energy's downsampling and its map size by ``frame`` (the first one)."""
        if self.planned.is_set():
            return
        height, width = _upright_size(frame.luma().shape, frame.rotation())
        self.geometry, self.downscale, self.energy_size = _energy_plan(self.recipe, height, width)
        self.planned.set()

    def energy_scores(self, frame: DecodedFrame | ArrayFrame, motion: FrameMotion) -> np.ndarray:
        """(grid_h, grid_w) float32 patch scores of one sampled frame (after `plan`; safe on any thread)."""
        energy_recipe = self.recipe.energy
        if motion.fields == [] or (motion.fields is None and energy_recipe.intra_frame_energy == "zero"):
            energy = np.zeros(motion.luma.shape, np.float32)
        else:  # no motion: an intra frame, scored by its texture (the residual of intra coding)
            fields = motion.fields or [MotionField.empty(*motion.luma.shape, cell=CODEC_CELL)]
            energy = frame_energy(motion.luma, fields, motion.references, energy_recipe, motion.downscale)
        energy = upright(energy, frame.rotation())
        if energy.shape != self.energy_size:  # resolution change mid-stream: rescale to the first
            energy = apply_geometry(energy, _rescale_geometry(energy.shape, self.energy_size), "bilinear")
        energy_geometry = replace(self.geometry, source_size=self.energy_size)
        return patch_scores(np.ascontiguousarray(energy), energy_geometry)

    def store(self, position: int, frame: DecodedFrame | ArrayFrame, scores: np.ndarray) -> None:
        """Store sampled frame ``position``'s pixels (deferred while the budget allows) and scores (any thread;
        deferred or placed, the patches cut from them are the same)."""
        quarter_turns = frame.rotation()
        size = _upright_size(frame.luma().shape, quarter_turns)
        with self._lock:
            defer = size == self.geometry.source_size and self.deferred_bytes + frame.nbytes <= DEFERRED_FRAME_BYTES
            self.deferred_bytes += frame.nbytes if defer else 0
        if size != self.geometry.source_size:  # resolution change mid-stream: rescale to the first
            rescale = _rescale_geometry(size, self.geometry.source_size)
            rgb = apply_geometry(np.ascontiguousarray(upright(frame.rgb(), quarter_turns)), rescale)
            self.pixels[position] = apply_geometry(rgb, self.geometry)
        elif defer:
            self.pixels[position] = _DeferredFrame(frame, quarter_turns)
        else:
            self.pixels[position] = _DeferredFrame(frame, quarter_turns).placed(self.geometry)
        self.scores[position] = scores

    def canvas(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 sampled frame ``index`` placed on the canvas."""
        pixels = self.pixels[index]
        return pixels.placed(self.geometry) if isinstance(pixels, _DeferredFrame) else pixels

    def patches(self, index: int, cells: np.ndarray) -> np.ndarray:
        """(n, p, p, 3) uint8 pixels of sampled frame ``index``'s patches at ``cells`` ((n, 2) int64 (h, w))."""
        pixels = self.pixels[index]
        if isinstance(pixels, _DeferredFrame):
            return place_patches(pixels.upright_rgb(), self.geometry, cells)
        p = self.geometry.patch_size
        grid = pixels.reshape(pixels.shape[0] // p, p, pixels.shape[1] // p, p, 3)
        return grid[cells[:, 0], :, cells[:, 1]]  # advanced indices lead


def _upright_size(coded_size: tuple[int, int], quarter_turns: int) -> tuple[int, int]:
    height, width = coded_size
    return (width, height) if quarter_turns % 2 else (height, width)


def _rescale_geometry(source_size: tuple[int, int], target_size: tuple[int, int]) -> FrameGeometry:
    return FrameGeometry(source_size, target_size, (0, 0), target_size, 1)


def _score_stream(segments: Sequence[Iterator[DecodedFrame | ArrayFrame]], wanted: np.ndarray,
                  recipe: SelectionRecipe, use_codec: bool, progress: bool, name: str) -> tuple[_ScoredFrames, int]:
    """Walk the frames once, scoring the wanted ones on the workers; returns the scored frames and the frames
    seen. ``segments``: the video in consecutive runs of frames (`decode_segments`), each walked by its own
    thread (the first by this one) beside the shared scoring workers; a failure in any stops them all."""
    raise_heap_thresholds()  # a first selection in a process keeps its scratch memory between frames
    scored = _ScoredFrames(recipe, len(wanted))
    bar = tqdm(total=len(wanted), desc=f"selecting {name}", unit="frame", disable=not progress, leave=False)
    stop = threading.Event()
    scorers = max(1, min(MAX_SCORING_THREADS, available_cores() - len(segments)))
    with ThreadPoolExecutor(max_workers=scorers, thread_name_prefix="onevision-score") as workers, \
            ThreadPoolExecutor(max_workers=max(1, len(segments) - 1), thread_name_prefix="onevision-decode") as walkers:
        walk = functools.partial(_score_segment, wanted=wanted, recipe=recipe, use_codec=use_codec, scored=scored,
                                 workers=workers, bar=bar, stop=stop, first=False)
        later = [walkers.submit(walk, frames) for frames in segments[1:]]
        try:
            seen = walk(segments[0], first=True)
            for segment in later:
                seen = max(seen, segment.result())  # raises what the segment raised
        finally:
            stop.set()  # on an error, the other segments stop at their next frame
            bar.close()
    return scored, seen


def _score_segment(frames: Iterator[DecodedFrame | ArrayFrame], wanted: np.ndarray, recipe: SelectionRecipe,
                   use_codec: bool, scored: _ScoredFrames, workers: ThreadPoolExecutor, bar, stop: threading.Event,
                   first: bool) -> int:
    """Walk one run of frames, submitting its wanted ones to ``workers``; returns the frames seen (last index + 1).

    A sampled B-frame is scored once the later frames it may reference have been decoded (`ReferenceWindow`);
    at most `MAX_FRAMES_IN_FLIGHT` of this run's frames are being scored at a time. Only the ``first`` run
    plans the canvas (from the first sampled frame); the others wait for it."""
    positions = {int(index): position for position, index in enumerate(wanted)}
    last_wanted = int(wanted[-1])
    window = ReferenceWindow(future_references=use_codec)
    seen = 0
    in_flight: deque[tuple[int, DecodedFrame | ArrayFrame, Future]] = deque()

    def score(frame, nearby):
        return scored.energy_scores(frame, frame_motion(frame, nearby, recipe, use_codec, scored.downscale))

    def collect_oldest():
        position, frame, future = in_flight.popleft()
        scored.store(position, frame, future.result())  # raises what scoring raised
        bar.update()

    def submit(ready):
        for frame, nearby in ready:
            if first:
                scored.plan(frame)
            while not scored.planned.wait(0.05):
                if stop.is_set():
                    return
            in_flight.append((positions[frame.index], frame, workers.submit(score, frame, nearby)))
            if len(in_flight) > MAX_FRAMES_IN_FLIGHT:
                collect_oldest()

    try:
        for frame in frames:
            if stop.is_set():
                break
            seen = frame.index + 1
            window.push(frame, frame.index in positions)
            submit(window.ready())
            if frame.index >= last_wanted and not window.waiting:
                break
        submit(window.flush())
        while in_flight and not stop.is_set():
            collect_oldest()
    finally:  # frames not yet started are dropped
        for _, _, pending in in_flight:
            pending.cancel()
        if hasattr(frames, "close"):
            frames.close()  # a decoder's generator closes its container now, on any thread
    return seen


def frame_motion(frame, nearby: dict, recipe: SelectionRecipe, use_codec: bool, downscale: int) -> FrameMotion:
    """The `FrameMotion` a sampled frame is scored with; ``nearby``: the decoded frames around it by signed
    distance (`ReferenceWindow`).

    Codec mode: a predicted frame's exported vectors, each against the nearby decoded frame it points into
    (`identify_references`, at full resolution); an I-frame has none and is measured by block matching against
    the previous frame only under the ``"pixel"`` intra policy, as is, under that policy, a B-frame whose
    exported vectors are all (0, 0) (`_motionless_b_frame`). Pixel mode: block matching against the previous
    frame, always (on the full-resolution lumas: the matcher builds its own pyramid, down to sub-pixel steps;
    run at the energy's resolution instead, its sub-pixel step is too coarse to follow a slow pan, measured:
    recall 0.40 instead of 1.00 on the diagonal pan through HEVC). The first frame of a video has no previous
    frame: ``[]`` under block matching.
    """
    def downsampled(other) -> np.ndarray:
        return _energy_luma(other, downscale)

    previous = nearby.get(1)
    luma = downsampled(frame)
    measure_pixels = not use_codec or recipe.energy.intra_frame_energy == "pixel"
    if use_codec and not frame.is_intra:
        vectors = frame.motion_vectors()
        if vectors is not None and not (measure_pixels and _motionless_b_frame(frame, vectors)):
            references = ReferenceFrames({d: other.luma() for d, other in nearby.items() if other.is_reference})
            subpixel = recipe.energy.subpixel_vectors
            distances = identify_references(vectors, frame.luma(), references, subpixel)
            if recipe.energy.unused_list_vectors == "drop":
                kept = ~unused_list_vectors(vectors, frame.luma(), references, distances, subpixel)
                vectors, distances = vectors[kept], distances[kept]
            fields = codec_motion_fields(vectors, *luma.shape, distances, subpixel=subpixel, use_future=True,
                                         downscale=downscale)
            used = {int(d) for d in np.unique(distances) if d != 0} | ({1} & set(nearby))  # 1: the cut test
            return FrameMotion(luma, fields, {d: downsampled(nearby[d]) for d in used}, downscale)
    references = {} if previous is None else {1: downsampled(previous)}
    if previous is None and measure_pixels:  # the video's first frame: no motion to measure
        return FrameMotion(luma, [], references, downscale)
    if not measure_pixels:
        return FrameMotion(luma, None, references, downscale)
    field = block_matching_field(frame.luma(), previous.luma()).downscaled(downscale)  # its own pyramid
    return FrameMotion(luma, [field], references, downscale)


def _motionless_b_frame(frame, vectors: np.ndarray) -> bool:
    """Whether ``frame`` is a B-frame whose exported vectors are all (0, 0). FFmpeg's MPEG-4 part 2 decoder
    exports nothing else for B-frames (it keeps no vectors of a picture nothing is predicted from: a diagonal
    pan's B-frames, every true vector non-zero, export 0 on every block), so such a frame is measured as an
    I-frame is, by block matching against the previous frame; a B-frame of another codec whose content stands
    still gets the same still field from block matching."""
    return not frame.is_anchor and not (vectors["motion_x"].any() or vectors["motion_y"].any())


def _energy_luma(frame, downscale: int) -> np.ndarray:
    """``frame``'s luma at the energy's resolution (`downsampled_luma`), computed once for all the sampled
    frames that read it (a reference frame serves up to two; on any thread: a race computes it twice, alike)."""
    key = ("energy luma", downscale)
    luma = frame.derived.get(key)
    if luma is None:
        luma = frame.derived[key] = downsampled_luma(frame.luma(), downscale)
    return luma


# Chooses the decoded-frame indices to select from: (frame_count, fps or None) -> sorted (T,) int64 indices.
FrameSampler = Callable[[int, float | None], np.ndarray]


def _wanted_frames(frame_count: int, fps: float | None, recipe: SelectionRecipe,
                   frame_sampler: FrameSampler | None) -> np.ndarray:
    if frame_sampler is None:
        return sample_frame_indices(frame_count, recipe.num_frames)
    return np.asarray(frame_sampler(frame_count, fps), dtype=np.int64)


def _finish(scored: _ScoredFrames, frame_indices: np.ndarray, recipe: SelectionRecipe, method: str,
            fallback_reason: str | None, source_frame_count: int, keep_frames: bool,
            source_fps: float | None = None) -> VideoSelection:
    geometry = scored.geometry
    scores = np.stack(scored.scores)  # (T, gh, gw)
    grid_h, grid_w = geometry.grid_size
    budget = resolve_budget(recipe.budget, recipe.num_frames, grid_h, grid_w)
    chosen = select_patches(scores, geometry.content_patch_mask(), budget, recipe.keep_first_frame,
                            recipe.first_frame_padding, recipe.selection_unit)  # (K, 3) rows (i, h, w)
    times = temporal_positions(len(frame_indices), recipe.rope_temporal_size)
    patches = _cut_patches(scored, chosen)  # (K, p, p, 3)
    patches = np.ascontiguousarray(patches.transpose(0, 3, 1, 2))  # (K, 3, p, p)
    canvases = np.stack([scored.canvas(index) for index in range(len(frame_indices))]) if keep_frames else None
    positions = np.stack((times[chosen[:, 0]], chosen[:, 1], chosen[:, 2]), axis=1).astype(np.int64)
    return VideoSelection(frame_indices, times, positions, patches, method, fallback_reason, geometry, scores,
                          source_frame_count, canvases, source_fps)


def _cut_patches(scored: _ScoredFrames, chosen: np.ndarray) -> np.ndarray:
    """(K, p, p, 3) uint8 pixels of the ``chosen`` (K, 3) rows (i, h, w), sorted by i; frames with no chosen
    patch are never converted, the others in parallel (`PATCH_CUT_THREADS`)."""
    bounds = np.searchsorted(chosen[:, 0], np.arange(len(scored.scores) + 1))
    used = [index for index in range(len(scored.scores)) if bounds[index + 1] > bounds[index]]

    def cut(index: int) -> np.ndarray:
        return scored.patches(index, chosen[bounds[index]:bounds[index + 1], 1:])

    with ThreadPoolExecutor(max_workers=PATCH_CUT_THREADS, thread_name_prefix="onevision-cut") as pool:
        pieces = list(pool.map(cut, used))
    p = scored.geometry.patch_size
    return np.concatenate(pieces) if pieces else np.zeros((0, p, p, 3), np.uint8)


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """The native thread pools loaded in this process, found once (a search walks every loaded library, a few
    ms in a process that imported torch; numpy's BLAS is loaded with numpy, before any selection)."""
    return ThreadpoolController()


def _with_blas_threads(select):
    """Run a selection with numpy's BLAS limited to `BLAS_THREADS` (restored afterwards)."""
    @functools.wraps(select)
    def limited(*args, **kwargs):
        with _thread_pools().limit(limits=BLAS_THREADS, user_api="blas"):
            return select(*args, **kwargs)
    return limited


@_with_blas_threads
def select_video(video, recipe: SelectionRecipe, progress: bool = False, keep_frames: bool = False,
                 frame_sampler: FrameSampler | None = None) -> VideoSelection:
    """Select patches from a video file (path, bytes or binary file object) in one streaming decode.

    ``frame_sampler`` replaces the recipe's uniform sampling of ``num_frames`` frames (the video processor's
    ``fps`` / ``num_frames`` / ``do_sample_frames`` arguments); a fractional budget stays a fraction of the dense
    grid of ``num_frames`` frames, whatever frames are read."""
    info = probe_stream(video)
    use_codec = recipe.motion_source == "auto" and info.exports_motion_vectors
    fallback_reason = None
    if not use_codec:
        fallback_reason = (f"motion_source={recipe.motion_source!r}" if recipe.motion_source != "auto" else
                           f"the {info.codec} decoder exports no motion vectors")
    frame_count = info.frame_count
    for attempt in range(2):  # a second pass only when the header's frame count was wrong
        wanted = _wanted_frames(frame_count, info.fps, recipe, frame_sampler)
        scored, seen = _decode_and_score(video, info, wanted, recipe, use_codec, progress, planned=attempt == 0)
        if scored.complete:
            break
        frame_count = seen
    else:
        raise OneVisionVideoError(f"{info.name}: frames stopped decoding at {seen} of {info.frame_count}.")
    method = METHOD_CODEC if use_codec else METHOD_PIXEL
    return _finish(scored, wanted, recipe, method, fallback_reason, frame_count, keep_frames, info.fps)


def _energy_plan(recipe: SelectionRecipe, height: int, width: int) -> tuple[FrameGeometry, int, tuple[int, int]]:
    """A (height, width) frame's canvas geometry, its energy's luma downsampling and the energy map's size."""
    geometry = plan_video_geometry(height, width, recipe.resize, recipe.patch_size, recipe.selection_unit,
                                   recipe.min_pixels, recipe.max_pixels)
    downscale = energy_downscale(recipe.energy, height, geometry.scaled_size[0], recipe.patch_size)
    return geometry, downscale, (-(-height // downscale), -(-width // downscale))


def _energy_pixels(recipe: SelectionRecipe, height: int, width: int) -> int:
    """Pixels of a (height, width) frame's energy map under ``recipe``: what scoring it costs."""
    rows, cols = _energy_plan(recipe, height, width)[2]
    return rows * cols


def _decode_and_score(video, info: VideoStreamInfo, wanted: np.ndarray, recipe: SelectionRecipe, use_codec: bool,
                      progress: bool, planned: bool) -> tuple[_ScoredFrames, int]:
    """`_score_stream` over the decoded video: by a `DecodePlan` (only the pictures the selection reads, in
    IDR-cut segments, one decoder each; the same frames as one decode) where ``planned`` and the file allow
    it, else every frame in one decode."""
    plan = None
    if planned and plannable(video, info.codec):
        plan = plan_decode(video, wanted, decode_segment_count(), info.frame_count,
                           functools.partial(_energy_pixels, recipe))
    if plan is not None:
        try:
            return _score_stream([iter_segment(video, plan, segment, use_codec) for segment in plan.segments],
                                 wanted, recipe, use_codec, progress, info.name)
        except SegmentMismatch:
            pass  # a file the plan misread: decoded whole below
    return _score_stream([iter_frames(video, use_codec)], wanted, recipe, use_codec, progress, info.name)


@_with_blas_threads
def select_frames(frames: Iterable[np.ndarray], recipe: SelectionRecipe, progress: bool = False,
                  keep_frames: bool = False, frame_sampler: FrameSampler | None = None,
                  fps: float | None = None) -> VideoSelection:
    """Select patches from already-decoded (H, W, 3) uint8 RGB frames (pixel-domain motion); ``fps`` is the
    frame rate the caller knows them to have (for ``frame_sampler``)."""
    frames = list(frames)
    if not frames:
        raise OneVisionInputError("the video has no frames.")
    arrays = []
    for index, frame in enumerate(frames):
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise OneVisionInputError(
                f"decoded frame {index} must be an (H, W, 3) uint8 RGB array, got shape {array.shape} "
                f"dtype {array.dtype}."
            )
        arrays.append(ArrayFrame(index, array))
    wanted = _wanted_frames(len(arrays), fps, recipe, frame_sampler)
    scored, _ = _score_stream([iter(arrays)], wanted, recipe, False, progress, "frames")
    return _finish(scored, wanted, recipe, METHOD_PIXEL, "decoded frames carry no motion vectors", len(arrays),
                   keep_frames, fps)
