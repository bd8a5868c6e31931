"""One sampled frame's fused energy map: where the codec had to spend bits (motion, new content).

`EnergyRecipe` holds every knob of the fusion; `frame_energy` turns a frame's luma, its motion fields (codec
vectors per list, or block matching) and the reference lumas they point into into an (H, W) map in [0, 1]:
``motion_weight * motion + (1 - motion_weight) * residual``, each term normalised per frame. Three rules of
the default preset refine it: a cell's residual is the lesser of its vector's and the camera's prediction
(``residual_prediction="vectors-or-camera"``: what a block translation leaves of a rotation, a zoom or a
shake is the camera's; each counts only what no sub-sample prediction explains,
``residual_measure="sampling-insensitive"``), a cell of a predicted frame with no vector in any list (an
intra block) scores its residual alone (``vectorless_cells="residual"``: the codec found no reference to
predict it from, which is no evidence that it stands still), and a cell or pixel the camera brought into view scores 0
(``revealed_content="ignore"``: it is new to the codec because the frame moved, not because anything in it
did; `motion_energy.revealed_cells`, `motion_energy.revealed_pixels`), and so does the motion of a flat region the
camera's motion predicts that reaches the frame's border (``unobservable_motion="ignore"``, `unobservable_cells`:
any vector predicts a flat cell, and an encoder gives such cells its neighbours' vector, so a moving object's
vector spreads over a flat background). Before any of it, a B-frame block's
exported vector of a list the block does not use (FFmpeg's export writes the stored (0, 0) of an unused list
for every partition of a macroblock that uses the list somewhere) is dropped (``unused_list_vectors="drop"``:
its motion and its prediction are of unrelated pixels).

The budget rule (``frame_background="subtract"``): a frame's energy keeps only what stands out of the frame
itself. What is high everywhere in a frame (a compensation that failed, the quality jump of an I-frame, the
noise of a textured scene) is not where the content is, so the frame's background level, the median of its
16 x 16-pixel block means, is taken out of every block (`subtract_background`); a frame whose objects move on
a still background loses nothing (its median is ~0). A scene cut is new content everywhere and is exempt:
a frame whose coarse appearance no longer correlates with the previous frame's (`is_scene_cut`) scores 1
everywhere, as a kept first frame does. ``"keep"`` (the released recipe) ranks the normalised energy as it is.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .codec_energy import MotionField, ReferencePlanes, compensated_residual, highpass_energy, normalize_energy
from .motion_energy import FrameWideFit, motion_magnitude, revealed_cells, revealed_pixels
from .tile_sums import tile_sums

INTRA_FRAME_POLICIES = ("highpass", "zero", "pixel")
ENERGY_RESOLUTIONS = ("full", "patch")
ENERGY_DOWNSCALES = (1, 2, 4)  # the luma downsamplings the energy runs at (`energy_downscale`)
MIN_SAMPLES_PER_PATCH = 7  # energy samples across a patch that the "patch" resolution keeps at least
FRAME_BACKGROUND_RULES = ("subtract", "keep")
VECTORLESS_CELL_RULES = ("fused", "residual")
REVEALED_CONTENT_RULES = ("keep", "ignore")
UNUSED_LIST_RULES = ("keep", "drop")
RESIDUAL_PREDICTIONS = ("vectors", "vectors-or-camera")
UNOBSERVABLE_MOTION_RULES = ("keep", "ignore")
FLAT_TEXTURE = 2.0  # mean |high-pass| (luma levels) of a cell at most which its content is flat
CAMERA_PREDICTED = 1.0  # mean residual (luma levels) of the camera's prediction at most which it predicts the cell
CODING_BLOCK = 16  # video pixels per side of an H.264 macroblock, the unit an encoder codes intra
BACKGROUND_BLOCK = 16  # pixels: the blocks whose median energy is a frame's background level
CUT_THUMBNAIL = 32  # pixels averaged per thumbnail pixel for the scene-cut test
CUT_CORRELATION = 0.5  # thumbnails correlating less than this with the previous frame's: a scene cut ...
CUT_CHANGE = 0.5  # ... where most thumbnail pixels changed by this share of the thumbnails' typical deviation,
CUT_MIN_CHANGE = 1.0  # and by at least this many luma levels (a 32 x 32 mean's noise is far below it)


@dataclass(frozen=True)
class EnergyRecipe:
    """How a frame's energy is computed (the video processor's config fills it).

    Attributes:
        subpixel_vectors: use ``motion / motion_scale`` instead of the exporter's whole-pixel ``src - dst``.
        future_vectors: the motion term uses future-list (B-frame) vectors too (the released recipe: past only);
            the residual always predicts each block from every list the codec used, as the decoder does.
        camera_compensation: remove the camera's motion before taking magnitudes.
        camera_model: how the camera's motion is estimated: ``"median"`` (median vector, the released recipe) or
            ``"affine"`` (robust affine fit per reference frame: pans, zooms, rotations, shake).
        motion_weight: weight of the motion term; the residual term gets ``1 - motion_weight``.
        normalization_percentile: per-frame percentile each term is divided by.
        motion_floor: lower bound (pixels) of the motion divisor; a high floor keeps near-static frames quiet.
        residual_floor: lower bound (luma levels) of the residual divisor.
        intra_frame_energy: what an intra-coded (I) frame scores, having no vectors: ``"highpass"`` (texture,
            the released recipe's residual of an I-frame), ``"zero"`` (the encoder's pretraining recipe) or
            ``"pixel"`` (block matching against the previous decoded frame).
        frame_background: the budget rule: ``"subtract"`` each frame's background level (scene cuts exempt) or
            ``"keep"`` it (the released recipe).
        energy_resolution: ``"full"``: energy on every luma pixel (the released recipe); ``"patch"``: on the luma
            averaged over 2 x 2 or 4 x 4 tiles where a patch still spans at least `MIN_SAMPLES_PER_PATCH`
            samples per side (the scores are sums over patches; `energy_downscale`, `downsampled_luma`).
        vectorless_cells: what a cell of a predicted frame that no list gives a vector (an intra block: the
            codec found nothing to predict it from) scores: ``"fused"``, its residual weighted like every
            cell's, with no motion (the released recipe), or ``"residual"``, its residual alone (a missing vector
            is no evidence of stillness).
        unused_list_vectors: ``"drop"`` the exported vectors of a list a B-frame block is not predicted from
            (`reference_frames.unused_list_vectors`: FFmpeg exports a (0, 0) vector of every list the macroblock
            uses for each of its partitions) or ``"keep"`` every exported vector (the released recipe read them).
        residual_prediction: ``"vectors"``: a cell's residual is that of the prediction by its vector (the
            released recipe's proxy of the decoder's residual); ``"vectors-or-camera"``: the lesser, per cell, of
            that and the residual of the prediction by the camera's motion (`FrameWideFit.camera_field`; with
            the ``"affine"`` camera model, else the vectors alone): what neither the codec's vector nor the
            camera explains. A block translation cannot follow a rotation, a zoom or the sub-block
            variations of a shaking camera; the residual it leaves on the background is the camera's. A cell
            no list covers (an intra block) gets the camera's prediction from the nearest reference too
            (`FrameWideFit.uncovered_camera_field`): an intra refresh or a cheaper intra code is not new content.
        revealed_content: ``"ignore"`` cells and pixels the camera brought into view
            (`motion_energy.revealed_cells`, `motion_energy.revealed_pixels`: the camera's motion carries
            them out of every reference they are predicted from; new to the codec, not moving) or ``"keep"``
            them (the released recipe).
        residual_measure: ``"difference"``, |Y - prediction| (the released recipe), or ``"sampling-insensitive"``:
            how far Y lies outside the bounds of what a sub-sample prediction may be
            (`codec_energy.compensated_residual`), for the vectors' and the camera's prediction alike: at the
            energy's resolution a whole-pixel copy can be a sub-sample shift, whose interpolation blurs a
            texture the codec copied exactly.
        unobservable_motion: ``"ignore"`` the motion of cells whose vector nothing can confirm (`unobservable_cells`:
            flat content the camera's motion predicts, connected to the frame's border: a flat background whose
            blocks took a moving object's vector; the flat inside of a moving object, enclosed by its edges,
            keeps its vectors) or ``"keep"`` it (the released recipe). It compares with the camera's prediction:
            only with the ``"affine"`` camera model (the video processor refuses it with another).
    """

    subpixel_vectors: bool = True
    future_vectors: bool = True
    camera_compensation: bool = True
    camera_model: str = "affine"
    motion_weight: float = 0.5
    normalization_percentile: float = 95.0
    motion_floor: float = 1e-6
    residual_floor: float = 1.0
    intra_frame_energy: str = "pixel"
    frame_background: str = "subtract"
    energy_resolution: str = "patch"
    vectorless_cells: str = "residual"
    unused_list_vectors: str = "drop"
    residual_prediction: str = "vectors-or-camera"
    revealed_content: str = "ignore"
    residual_measure: str = "sampling-insensitive"
    unobservable_motion: str = "ignore"


def energy_downscale(recipe: EnergyRecipe, source_height: int, scaled_height: int, patch_size: int) -> int:
    """The luma downsampling (1, 2 or 4) the energy is computed at: with ``"patch"``, the largest that leaves a
    patch (``patch_size`` canvas pixels, ``source_height / scaled_height`` video pixels each) at least
    `MIN_SAMPLES_PER_PATCH` samples wide."""
    if recipe.energy_resolution == "full":
        return 1
    footprint = patch_size * source_height / max(scaled_height, 1)  # video pixels per patch side
    return next(factor for factor in ENERGY_DOWNSCALES[::-1]
                if factor == 1 or footprint / factor >= MIN_SAMPLES_PER_PATCH)


def downsampled_luma(luma: np.ndarray, factor: int) -> np.ndarray:
    """(ceil(H / factor), ceil(W / factor)) uint8 means of ``factor x factor`` tiles (edges replicated), rounded to
    nearest: the luma at the energy's resolution (``factor`` 1, 2 or 4). A mean, not a decimation: every second
    pixel of a fine texture aliases, and a half-pixel shift of the aliased image no longer predicts it.

    Pillow's box reduction computes it: ``(sum + factor**2 / 2) >> log2(factor**2)`` for these factors, exact
    (``tests/test_video_energy.py`` pins it against the mean), in one C pass that releases the GIL: 1.3x faster
    than the numpy strided adds it replaced on a 360 x 640 luma, 1.8x on a 720p one with ``factor`` 4
    (`benchmarks/frame_kernels.py --kernel energy-luma`). Read-only, as the decoder's own planes are."""
    if factor not in ENERGY_DOWNSCALES:
        raise ValueError(f"the energy's luma downsampling is one of {ENERGY_DOWNSCALES}, got {factor}.")
    if factor == 1:
        return luma
    height, width = luma.shape
    rows, cols = -(-height // factor), -(-width // factor)
    if (rows * factor, cols * factor) != (height, width):  # Pillow would average a partial tile's own pixels
        luma = np.pad(luma, ((0, rows * factor - height), (0, cols * factor - width)), mode="edge")
    return np.asarray(Image.fromarray(luma).reduce(factor))


def frame_energy(luma: np.ndarray, fields: Sequence[MotionField], references: Mapping[int, np.ndarray],
                 recipe: EnergyRecipe, downscale: int = 1) -> np.ndarray:
    """(H, W) float32 fused energy in [0, 1] of a frame under its motion ``fields`` (one per prediction list),
    ``references`` the lumas by signed distance the fields' cells point into (distance 1, the previous
    frame, is also what the scene-cut test compares with). ``downscale``: the luma's downsampling
    (`downsampled_luma`); motion is measured in video pixels whatever it is, as ``motion_floor`` says."""
    height, width = luma.shape
    if recipe.frame_background == "subtract" and is_scene_cut(luma, references.get(1)):
        return np.ones((height, width), np.float32)
    camera_model = recipe.camera_model if recipe.camera_compensation else None
    motion_fields = fields if recipe.future_vectors else fields[:1]  # codec fields: past list first
    frame_wide = FrameWideFit(motion_fields, height, width) if recipe.motion_weight > 0 else None
    planes = ReferencePlanes.for_fields(fields, references)  # the camera's fields point into the same ones
    camera_residual = None  # the camera's prediction's residual, where a rule reads it
    if frame_wide is not None and camera_model == "affine" and (
            recipe.unobservable_motion == "ignore"
            or recipe.residual_prediction == "vectors-or-camera" and recipe.motion_weight < 1):
        camera_residual = _camera_residual(luma, fields, planes, frame_wide, recipe.residual_measure)
    residual = None
    if recipe.motion_weight < 1:
        residual = _residual_energy(luma, fields, planes, recipe, camera_residual)
    residual_weight = np.float32(1 - recipe.motion_weight)
    if recipe.motion_weight > 0:
        motion = motion_magnitude(motion_fields, height, width, camera_model, frame_wide)  # (rows, cols), energy px
        motion *= np.float32(downscale)  # video pixels
        if recipe.unobservable_motion == "ignore" and camera_residual is not None:
            motion[unobservable_cells(luma, camera_residual, fields[0])] = 0
        motion = normalize_energy(motion, recipe.normalization_percentile, recipe.motion_floor)
        fused = fields[0].to_pixels(recipe.motion_weight * motion, height, width)  # weighted per cell, repeated
        if recipe.vectorless_cells == "residual":  # no vector is no evidence of stillness
            covered = np.logical_or.reduce([field.covered for field in fields])
            residual_weight = fields[0].to_pixels(np.where(covered, residual_weight, np.float32(1)), height, width)
    else:
        fused = np.zeros((height, width), np.float32)
    if residual is not None:
        residual *= residual_weight
        fused += residual
    if recipe.revealed_content == "ignore" and recipe.motion_weight > 0:
        coding_block = max(1, CODING_BLOCK // (fields[0].cell * downscale))  # cells per macroblock side
        revealed = fields[0].to_pixels(revealed_cells(motion_fields, frame_wide, height, width, coding_block),
                                       height, width)
        fused[revealed | revealed_pixels(motion_fields, frame_wide, height, width)] = 0
    if recipe.frame_background == "subtract":
        fused = subtract_background(fused)
    return fused


def _camera_residual(luma: np.ndarray, fields: Sequence[MotionField], planes: ReferencePlanes,
                     frame_wide: FrameWideFit, measure: str) -> np.ndarray:
    """(H, W) float32 residual (``measure``) of the camera's prediction of every cell a field covers
    (`FrameWideFit.camera_field`) and of the intra blocks (`FrameWideFit.uncovered_camera_field`); +inf where
    the camera predicts nothing."""
    camera_fields = [frame_wide.camera_field(field) for field in fields]
    uncovered = frame_wide.uncovered_camera_field(fields)  # intra blocks: the camera's prediction too
    camera_fields += [uncovered] if uncovered is not None else []
    return compensated_residual(luma, camera_fields, planes, unpredicted_highpass=False, measure=measure)


def _residual_energy(luma: np.ndarray, fields: Sequence[MotionField], planes: ReferencePlanes,
                     recipe: EnergyRecipe, camera_residual: np.ndarray | None) -> np.ndarray:
    """(H, W) float32 normalised residual term of `frame_energy`: per cell the lesser of the vectors' and the
    camera's prediction where ``residual_prediction`` compares them (and the camera's is known)."""
    residual = compensated_residual(luma, fields, planes, measure=recipe.residual_measure)
    if recipe.residual_prediction == "vectors-or-camera" and camera_residual is not None:
        camera_lower = fields[0].to_pixels(lower_cells(camera_residual, residual, fields[0]), *luma.shape)
        residual = np.where(camera_lower, camera_residual, residual)
    return normalize_energy(residual, recipe.normalization_percentile, recipe.residual_floor)


def unobservable_cells(luma: np.ndarray, camera_residual: np.ndarray, field: MotionField) -> np.ndarray:
    """(rows, cols) bool on ``field``'s grid: the cells whose motion nothing confirms. A cell whose content is flat
    (mean high-pass energy at most `FLAT_TEXTURE` levels) and which the camera's motion predicts (mean residual at
    most `CAMERA_PREDICTED`) is predicted by any vector: an encoder gives such blocks the vector its neighbours predict
    (x264's skip blocks), so a moving object's vector spreads over a flat background. Of those cells, the ones
    connected (4-neighbours) to the frame's border through others are unobservable; an enclosed flat region is
    the inside of something whose edges moved (a flat object), and keeps its vectors."""
    area = np.float32(field.cell ** 2)
    flat = _cell_sums(highpass_energy(luma), field) <= FLAT_TEXTURE * area
    predicted = _cell_sums(camera_residual, field) <= CAMERA_PREDICTED * area
    regions, _ = ndimage.label(flat & predicted)  # 4-connected regions of such cells, numbered from 1
    reaching = np.unique(np.concatenate((regions[0], regions[-1], regions[:, 0], regions[:, -1])))
    return np.isin(regions, reaching[reaching > 0])


def lower_cells(values: np.ndarray, than: np.ndarray, field: MotionField) -> np.ndarray:
    """(rows, cols) bool on ``field``'s cell grid (which may overhang the maps): the cells over which ``values``
    sums lower than ``than`` (two (H, W) maps, zero-padded)."""
    return _cell_sums(values, field) < _cell_sums(than, field)


def _cell_sums(values: np.ndarray, field: MotionField) -> np.ndarray:
    """(rows, cols) float32 sums of an (H, W) map over the cells of ``field``'s grid (zero-padded)."""
    height, width = values.shape
    cell, (rows, cols) = field.cell, field.dx.shape
    if (rows * cell, cols * cell) != (height, width):
        padded = np.zeros((rows * cell, cols * cell), np.float32)
        padded[:height, :width] = values
        values = padded
    return tile_sums(values, cell, np.float32)


def subtract_background(energy: np.ndarray) -> np.ndarray:
    """(H, W) float32 energy with the frame's background level taken out, block by block: each 16 x 16 block is
    scaled so its mean becomes ``max(mean - background, 0)``, background the median of the block means (a block
    of noise at the background level goes to 0; an object's block, far above it, keeps its shape)."""
    height, width = energy.shape
    rows, cols = -(-height // BACKGROUND_BLOCK), -(-width // BACKGROUND_BLOCK)
    padded = np.pad(energy, ((0, rows * BACKGROUND_BLOCK - height), (0, cols * BACKGROUND_BLOCK - width)),
                    mode="edge")
    means = _block_means(padded, BACKGROUND_BLOCK)  # (rows, cols)
    background = np.float32(np.median(means))
    if background <= 0:
        return energy
    gain = np.divide(np.maximum(means - background, 0), means, out=np.zeros_like(means), where=means > 0)
    energy *= np.repeat(np.repeat(gain, BACKGROUND_BLOCK, 0), BACKGROUND_BLOCK, 1)[:height, :width]
    return energy


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    """(H // block, W // block) float32 means of the whole ``block x block`` tiles."""
    rows, cols = values.shape[0] // block, values.shape[1] // block
    tiles = values[:rows * block, :cols * block].reshape(rows, block, cols, block)
    return tiles.mean(axis=(1, 3), dtype=np.float32)


def is_scene_cut(luma: np.ndarray, previous: np.ndarray | None) -> bool:
    """Whether ``luma`` shows another scene than ``previous`` (the frame before it): their 32 x 32-averaged
    thumbnails correlate less than `CUT_CORRELATION` (a flat thumbnail correlates with nothing: a cut only when
    the other one is not flat too), and the change is everywhere: beyond the change of the mean (a fade), the
    median thumbnail pixel moved by at least `CUT_CHANGE` times the thumbnails' median deviation from their mean
    (two unrelated scenes: about 1.4 times; a scale-free test, whatever the luma's resolution) and by at least
    `CUT_MIN_CHANGE` levels (where nearly every thumbnail pixel is the mean, the deviation is noise). On a flat
    background the thumbnails' only variance is a small object's; it moving into the next thumbnail pixel
    decorrelates them but leaves most thumbnail pixels as they were (a scene cut there took a sampled frame's
    whole budget: recall 0)."""
    if previous is None or previous.shape != luma.shape:
        return False
    current = _block_means(luma.astype(np.float32), CUT_THUMBNAIL).reshape(-1)
    before = _block_means(previous.astype(np.float32), CUT_THUMBNAIL).reshape(-1)
    if current.size < 4:
        return False
    current -= current.mean()
    before -= before.mean()
    norm = float(np.sqrt((current ** 2).sum() * (before ** 2).sum()))
    if norm < 1e-6 * current.size:  # a flat thumbnail: a fade to or from black, not a cut to other content
        return False
    if float((current * before).sum()) / norm >= CUT_CORRELATION:
        return False
    deviation = (np.median(np.abs(current)) + np.median(np.abs(before))) / 2
    return float(np.median(np.abs(current - before))) >= max(CUT_CHANGE * float(deviation), CUT_MIN_CHANGE)
