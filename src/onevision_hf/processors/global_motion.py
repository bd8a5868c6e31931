"""Robust camera-motion model of one frame: an affine map fitted to a field of displacements.

Pans, tilts, zooms, rotations and handheld shake move every background pixel by an affine function of its
position (to first order, for a scene far from the camera); independently moving objects are outliers to it.
`fit_camera_motion` fits ``d(x, y) = A @ (x, y, 1)`` to the displacements of a frame's cells:

1. least-median-of-squares: deterministic minimal samples (three cells, never collinear), plus the
   translation-only hypothesis (the median vector), scored by the median squared residual over the cells;
   it tolerates up to half the cells moving on their own;
2. Tukey-biweight iteratively reweighted least squares from the best hypothesis, its scale from the median
   absolute residual, so the final fit uses every background cell and ignores the objects.

Translation is the special case ``A = [[1, 0, tx], [0, 1, ty]]`` minus the identity: a pure pan fits exactly.
Coordinates are normalised to the frame's centre and half-diagonal for a well-conditioned fit.
"""

import functools
from dataclasses import dataclass

import numpy as np

HYPOTHESES = 12  # minimal samples of the least-median-of-squares stage
MAX_FIT_POINTS = 256  # cells the fit uses at most (an even subsample of larger fields)
MAX_SCORED_POINTS = 128  # cells the hypotheses are scored on (an even subsample)
IRLS_ITERATIONS = 3
TUKEY_C = 4.685  # biweight tuning constant, in robust standard deviations
MIN_SCALE = 0.25  # pixels: residuals below this are treated as exact (sub-pixel vector noise)
MIN_POINTS = 6  # fewer cells: the model falls back to the median translation


@dataclass(frozen=True)
class AffineCamera:
    """``displacement(x, y) = A @ (xn, yn, 1)`` with xn, yn the normalised coordinates; A is (2, 3) float64."""

    matrix: np.ndarray  # (2, 3): rows dx, dy; columns xn, yn, 1
    center: tuple[float, float]  # (x, y) of the frame's centre, pixels
    scale: float  # half-diagonal, pixels

    def scaled(self, factor: float) -> "AffineCamera":
        """The camera moving ``factor`` times as far (a velocity over ``factor`` frames)."""
        return AffineCamera(self.matrix * factor, self.center, self.scale)

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) float32 the camera moves points (x, y) (pixels, any equal shapes): each row of the matrix
        applied elementwise in float64 (no BLAS: the same value on every machine, and no (n, 3) design)."""
        xn = (np.asarray(x, np.float64) - self.center[0]) / self.scale
        yn = (np.asarray(y, np.float64) - self.center[1]) / self.scale
        (xx, xy, x1), (yx, yy, y1) = self.matrix
        return (xn * xx + yn * xy + x1).astype(np.float32), (xn * yx + yn * yy + y1).astype(np.float32)


def _design(x: np.ndarray, y: np.ndarray, center: tuple[float, float], scale: float) -> np.ndarray:
    """(..., 3) float64 rows (xn, yn, 1)."""
    xn = (np.asarray(x, np.float64) - center[0]) / scale
    yn = (np.asarray(y, np.float64) - center[1]) / scale
    return np.stack((xn, yn, np.ones_like(xn)), axis=-1)


def translation(dx: float, dy: float, height: int, width: int) -> AffineCamera:
    """A pure translation (the model when too few cells carry a vector)."""
    matrix = np.array([[0.0, 0.0, dx], [0.0, 0.0, dy]])
    return AffineCamera(matrix, (width / 2, height / 2), max(1.0, np.hypot(width, height) / 2))


def fit_camera_motion(x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, height: int,
                      width: int) -> AffineCamera:
    """Robust affine fit of (n,) displacements ``dx, dy`` at (n,) points ``x, y`` of an (height, width) frame."""
    x, y, dx, dy = _fit_points(x, y, dx, dy)
    if len(x) < MIN_POINTS:
        return translation(*_median_vector(dx, dy), height, width)
    base = translation(0.0, 0.0, height, width)
    design = _design(x, y, base.center, base.scale)  # (n, 3)
    target = np.stack((dx, dy), axis=1)  # (n, 2)
    matrix = _biweight_refit(design, target, _least_median_hypothesis(design, target))
    return AffineCamera(matrix, base.center, base.scale)


def refine_camera_motion(x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                         start: AffineCamera) -> AffineCamera:
    """The Tukey-biweight refit alone, started at the camera ``start`` instead of a least-median hypothesis: a
    camera known roughly (the frame's) refined on a group of its cells, converging to the displacements near
    ``start`` (the background, while it is most of the group) instead of whichever of a few random minimal
    samples fits best, which on a small group with a large object is often the object. The refit is kept only
    where it explains at least as many of the group's cells to within `MIN_SCALE` as ``start`` does (a
    consensus test at the vectors' precision): where the group is half an object or vectors that agree on
    nothing, the biweight's scale grows with them and the refit drifts between background and object,
    explaining fewer cells than the frame's camera."""
    x, y, dx, dy = _fit_points(x, y, dx, dy)
    if len(x) < MIN_POINTS:
        return start
    design = _design(x, y, start.center, start.scale)
    target = np.stack((dx, dy), axis=1)
    matrix = _biweight_refit(design, target, start.matrix)
    if _consensus(design, target, matrix) < _consensus(design, target, start.matrix):
        return start
    return AffineCamera(matrix, start.center, start.scale)


def _consensus(design: np.ndarray, target: np.ndarray, matrix: np.ndarray) -> int:
    """How many rows of ``target`` the (2, 3) ``matrix`` predicts to within `MIN_SCALE`."""
    residual = np.hypot(*(target - design @ matrix.T).T)
    return int(np.count_nonzero(residual <= MIN_SCALE))


def _biweight_refit(design: np.ndarray, target: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(2, 3) `IRLS_ITERATIONS` Tukey-biweight reweighted least-squares steps from ``matrix``, the scale from
    each step's median absolute residual (at least `MIN_SCALE`)."""
    for _ in range(IRLS_ITERATIONS):
        residual = np.hypot(*(target - design @ matrix.T).T)
        sigma = max(1.4826 * _lower_median(residual), MIN_SCALE)
        weight = np.clip(1 - (residual / (TUKEY_C * sigma)) ** 2, 0, None) ** 2
        if np.count_nonzero(weight) < MIN_POINTS:
            break
        matrix = _weighted_solve(design, target, weight)
    return matrix


def _fit_points(x, y, dx, dy) -> tuple[np.ndarray, ...]:
    """The float64 (n,) points and displacements a fit uses: at most `MAX_FIT_POINTS`, an even subsample."""
    x, y, dx, dy = (np.asarray(values).reshape(-1) for values in (x, y, dx, dy))
    if len(x) > MAX_FIT_POINTS:
        keep = np.linspace(0, len(x) - 1, MAX_FIT_POINTS).astype(np.intp)
        x, y, dx, dy = x[keep], y[keep], dx[keep], dy[keep]
    return tuple(values.astype(np.float64) for values in (x, y, dx, dy))


def _median_vector(dx: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    return (float(np.median(dx)), float(np.median(dy))) if len(dx) else (0.0, 0.0)


def _least_median_hypothesis(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) the hypothesis with the least median squared residual: the median translation or an exact affine
    map through three sampled points (samples drawn with a fixed seed: the same field gives the same fit)."""
    translation_only = np.zeros((1, 2, 3))
    translation_only[0, :, 2] = np.median(target, axis=0)
    triples = _minimal_samples(len(design))
    points = design[triples]  # (h, 3, 3)
    solvable = np.abs(np.linalg.det(points)) > 1e-6  # not collinear, no repeated point
    affine = np.linalg.solve(points[solvable], target[triples[solvable]]).transpose(0, 2, 1)  # (h', 2, 3)
    stacked = np.concatenate((translation_only, affine))  # (m, 2, 3)
    scored = np.linspace(0, len(design) - 1, min(len(design), MAX_SCORED_POINTS)).astype(np.intp)
    predicted = design[scored] @ stacked.transpose(0, 2, 1)  # (m, s, 2)
    cost = _lower_median(((predicted - target[scored]) ** 2).sum(axis=-1))
    return stacked[int(np.argmin(cost))]


@functools.lru_cache(maxsize=MAX_FIT_POINTS + 1)
def _minimal_samples(count: int) -> np.ndarray:
    """(HYPOTHESES, 3) indices of the least-median stage's minimal samples among ``count`` points, drawn with a
    fixed seed (the same for every field of that size; read-only: shared between calls)."""
    triples = np.random.default_rng(0).integers(0, count, size=(HYPOTHESES, 3))
    triples.flags.writeable = False
    return triples


def _lower_median(values: np.ndarray) -> np.ndarray:
    """The lower median along the last axis (one partition; what LMedS and MAD scales need, without
    `np.median`'s overhead)."""
    middle = (values.shape[-1] - 1) // 2
    return np.partition(values, middle, axis=-1)[..., middle]


def _weighted_solve(design: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(2, 3) weighted least squares of target on design (normal equations: 3 unknowns, well conditioned on
    normalised coordinates; a singular system keeps the translation part only)."""
    weighted = design * weight[:, None]
    normal = weighted.T @ design  # (3, 3)
    moments = weighted.T @ target  # (3, 2)
    try:
        return np.linalg.solve(normal, moments).T
    except np.linalg.LinAlgError:
        matrix = np.zeros((2, 3))
        matrix[:, 2] = moments[2] / max(normal[2, 2], 1e-12)
        return matrix
