"""Motion energy of a frame: how fast each cell moves relative to the camera.

Two camera models (`CAMERA_MODELS`):

* ``"median"`` (the released recipe): the frame's median vx and vy over the whole grid (cells without a
  vector counting as still) are the camera; each covered cell scores the length of its vector minus it;
* ``"affine"``: a robust affine camera (`global_motion.fit_camera_motion`: pans, tilts, zooms, rotations,
  shake) fitted once per frame to all vectors as velocities (per frame of distance), then refined for each
  reference frame on the cells pointing into it (`global_motion.refine_camera_motion`: a Tukey-biweight
  refit started at the frame's camera scaled to that reference, which converges to the background near it
  rather than to a large moving object, and kept only where it explains at least as many of those cells as
  the scaled camera does), since the camera moves differently over 1 and over 3 frames of a shaking hand and
  no velocity scaled by distance fits both; only where the reference's cells are enough
  (`MIN_GROUP_CELLS`) and spread over the frame (`MIN_GROUP_SPREAD` of its regions: a camera; a compact
  group may be mostly the moving object). A cell scores the length of its vector minus the camera's,
  divided by its reference distance: pixels per frame, comparable between references, lists and frames.
  The camera's displacement of every cell (`FrameWideFit.camera_field`) is also what the residual's
  camera prediction reads (`frame_energy`, ``residual_prediction``).

Cells covered by both lists score the mean of the two.
"""

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .codec_energy import MotionField
from .global_motion import AffineCamera, fit_camera_motion, refine_camera_motion

CAMERA_MODELS = ("median", "affine")
MIN_GROUP_CELLS = 64  # cells (of 4 x 4 pixels) a reference needs for a fit of its own
SPREAD_GRID = 4  # the frame split into SPREAD_GRID x SPREAD_GRID regions
MIN_GROUP_SPREAD = 0.25  # a reference's own fit needs its cells in this share of the regions (a camera, not an object)


def motion_magnitude(fields: Sequence[MotionField], height: int, width: int, camera_model: str | None,
                     frame_wide: "FrameWideFit | None" = None) -> np.ndarray:
    """(rows, cols) float32 camera-relative motion per cell (0 where no list has a vector); ``camera_model``
    None keeps the camera's motion in; ``frame_wide``: the fields' `FrameWideFit`, when the caller has one."""
    total = np.zeros(fields[0].dx.shape, np.float32)
    count = np.zeros(fields[0].dx.shape, np.int8)
    frame_wide = frame_wide or FrameWideFit(fields, height, width)
    for field in fields:
        if camera_model == "affine":
            speed = _affine_relative_speed(field, frame_wide)
        else:
            speed = _median_relative_length(field, camera_model == "median")
        total += np.where(field.covered, speed, 0)
        count += field.covered
    return np.divide(total, count, out=total, where=count > 1)


def _median_relative_length(field: MotionField, compensate: bool) -> np.ndarray:
    dx, dy = field.dx, field.dy
    if compensate:
        dx = dx - np.median(dx)
        dy = dy - np.median(dy)
    return np.hypot(dx, dy).astype(np.float32)


def _cell_centres(field: MotionField) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = field.dx.shape
    x = (np.arange(cols, dtype=np.float32) + 0.5) * field.cell
    y = (np.arange(rows, dtype=np.float32) + 0.5) * field.cell
    return np.broadcast_to(x, (rows, cols)), np.broadcast_to(y[:, None], (rows, cols))


class FrameWideFit:
    """The camera's motion in one frame: its velocity per frame of distance, fitted (once, when first asked) to
    every list's vectors divided by their distance, per field the camera's displacement of each of its cells
    into its reference (`camera_field`, computed once per field), and of the cells no field covers
    (`uncovered_camera_field`)."""

    def __init__(self, fields: Sequence[MotionField], height: int, width: int):
        self.fields, self.height, self.width = fields, height, width
        self._camera: AffineCamera | None = None
        self._camera_fields: dict[int, tuple[MotionField, MotionField]] = {}  # id(field) -> (field, camera field)
        # (id(field), distance) -> the camera refined on the field's cells into that reference
        self._reference_cameras: dict[tuple[int, int], AffineCamera] = {}

    def velocity(self) -> AffineCamera:
        if self._camera is None:
            points = [[], [], [], []]
            for field in self.fields:
                x, y = _cell_centres(field)
                covered = field.covered & (field.distances() != 0)
                d = field.distances()[covered].astype(np.float32)
                for values, column in zip(points, (x[covered], y[covered], field.dx[covered] / d,
                                                   field.dy[covered] / d)):
                    values.append(column)
            self._camera = fit_camera_motion(*(np.concatenate(values) for values in points), self.height,
                                             self.width)
        return self._camera

    def camera_field(self, field: MotionField) -> MotionField:
        """``field`` with each covered cell's vector replaced by the camera's displacement of the cell into the
        same reference: the frame's velocity times the distance, refined per reference where its cells allow
        (`refine_camera_motion`; only where they are enough, `MIN_GROUP_CELLS`, and spread over the frame,
        `MIN_GROUP_SPREAD`: a camera, not an object); 0 on cells without a vector."""
        cached = self._camera_fields.get(id(field))
        if cached is None:
            cached = self._camera_fields[id(field)] = (field, self._camera_displacements(field))
        return cached[1]

    def uncovered_camera_field(self, fields: Sequence[MotionField]) -> MotionField | None:
        """The camera's displacement of each cell that no field of ``fields`` covers (an intra block) into the
        nearest reference of the first field in use, the reference `revealed_cells` carries such a cell by, with
        the camera refined on that reference's own cells where `camera_field` refined one; None when every cell
        is covered or no field is in use. An encoder codes a block intra for many reasons besides new content:
        an intra refresh sweeping the frame, a cheaper code at a low bitrate; what the camera's motion predicts
        of such a block is not new."""
        in_use = _fields_in_use(fields)
        uncovered = ~np.logical_or.reduce([field.covered for field in fields])
        if not in_use or not uncovered.any():
            return None
        field = in_use[0]
        distance = _nearest_reference(field)
        self.camera_field(field)  # refines the field's cameras per reference
        camera = self._reference_cameras.get((id(field), distance)) or self.velocity().scaled(distance)
        x, y = (values[uncovered] for values in _cell_centres(field))
        dx, dy = np.zeros(field.dx.shape, np.float32), np.zeros(field.dx.shape, np.float32)
        dx[uncovered], dy[uncovered] = camera.displacement(x, y)
        return MotionField(dx, dy, uncovered, field.cell, np.where(uncovered, distance, 0).astype(np.int16))

    def _camera_displacements(self, field: MotionField) -> MotionField:
        covered = field.covered & (field.distances() != 0)
        camera_dx, camera_dy = np.zeros(field.dx.shape, np.float32), np.zeros(field.dx.shape, np.float32)
        if covered.any():
            x, y = (values[covered] for values in _cell_centres(field))
            dx, dy = field.dx[covered], field.dy[covered]
            distance = field.distances()[covered].astype(np.float32)
            velocity_dx, velocity_dy = self.velocity().displacement(x, y)  # per frame of distance
            own_dx, own_dy = velocity_dx * distance, velocity_dy * distance
            groups, sizes = np.unique(distance, return_counts=True)
            for d, size in zip(groups, sizes):
                group = distance == d
                if size < MIN_GROUP_CELLS or _spread(x[group], y[group], self.height, self.width) < MIN_GROUP_SPREAD:
                    continue
                camera = refine_camera_motion(x[group], y[group], dx[group], dy[group], self.velocity().scaled(d))
                self._reference_cameras[id(field), int(d)] = camera
                own_dx[group], own_dy[group] = camera.displacement(x[group], y[group])
            camera_dx[covered], camera_dy[covered] = own_dx, own_dy
        return replace(field, dx=camera_dx, dy=camera_dy)


def _affine_relative_speed(field: MotionField, frame_wide: FrameWideFit) -> np.ndarray:
    """(rows, cols) float32 |vector - camera| / |distance| for the covered cells of ``field`` (0 elsewhere)."""
    covered = field.covered & (field.distances() != 0)
    camera = frame_wide.camera_field(field)
    speed = np.zeros(field.dx.shape, np.float32)
    error = np.hypot(field.dx[covered] - camera.dx[covered], field.dy[covered] - camera.dy[covered])
    speed[covered] = error / np.abs(field.distances()[covered].astype(np.float32))
    return speed


def _spread(x: np.ndarray, y: np.ndarray, height: int, width: int) -> float:
    """The share of the frame's `SPREAD_GRID` x `SPREAD_GRID` regions holding one of the points (x, y)."""
    region = (np.minimum(y * SPREAD_GRID // height, SPREAD_GRID - 1) * SPREAD_GRID
              + np.minimum(x * SPREAD_GRID // width, SPREAD_GRID - 1)).astype(np.intp)
    occupied = np.zeros(SPREAD_GRID ** 2, bool)
    occupied[region] = True
    return np.count_nonzero(occupied) / SPREAD_GRID ** 2


def revealed_cells(fields: Sequence[MotionField], frame_wide: FrameWideFit, height: int, width: int,
                   coding_block: int = 1) -> np.ndarray:
    """(rows, cols) bool: cells showing what the camera brought into view, in none of the references the frame
    is predicted from: for each list that covers the cell (an uncovered cell: each list in use, at its nearest
    reference), the camera's motion carries the cell's centre out of the frame. An uncovered cell (an intra
    block) is also revealed where another cell of its ``coding_block`` x ``coding_block``-cell coding block
    is: the encoder coded the whole block intra because of the part that came into view."""
    x, y = _cell_centres(fields[0])
    revealed, covered = _carried_out(fields, frame_wide, x, y, (slice(None), slice(None)), height, width)
    if coding_block > 1 and covered is not None:
        revealed |= ~covered & _block_any(revealed, coding_block)
    return revealed


def revealed_pixels(fields: Sequence[MotionField], frame_wide: FrameWideFit, height: int, width: int) -> np.ndarray:
    """(height, width) bool: `revealed_cells`' test for every pixel's whole footprint instead of its cell's
    centre: the pixels the camera's motion carries even partly out of the frame (a pixel of a downsampled
    luma averages several video pixels; one of them new spoils its prediction). It finds the strip the camera
    brought into view where that is narrower than half a cell (a slow pan against a distant reference: a few
    pixels along a whole edge of the frame, which the cell test leaves in).

    Only the frame's border can be carried out: the test runs on the pixels within the camera's largest
    displacement (at a corner: it is affine) of an edge, the same test per pixel as on the whole frame."""
    revealed = np.zeros((height, width), bool)
    border = _border_width(fields, frame_wide, margin=0.5)
    if border is None:  # no list in use: nothing is carried anywhere
        return revealed
    pixel_y, pixel_x = _border_pixels(height, width, border)
    if len(pixel_y):
        cell = fields[0].cell
        x, y = pixel_x.astype(np.float32) + np.float32(0.5), pixel_y.astype(np.float32) + np.float32(0.5)
        revealed[pixel_y, pixel_x] = _carried_out(fields, frame_wide, x, y, (pixel_y // cell, pixel_x // cell),
                                                  height, width, margin=0.5)[0]
    return revealed


def _border_pixels(height: int, width: int, border: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) intp rows and columns of the pixels within ``border`` of an (height, width) frame's edge, in row-major
    order (`np.nonzero` of that mask's order, without building it)."""
    if 2 * border >= min(height, width):  # the border strips cover the frame
        rows, cols = np.indices((height, width)).reshape(2, -1)
        return rows, cols
    every_col = np.arange(width)
    edge_cols = np.concatenate((every_col[:border], every_col[width - border:]))
    middle = np.arange(border, height - border)
    rows = np.concatenate((np.repeat(np.arange(border), width), np.repeat(middle, len(edge_cols)),
                           np.repeat(np.arange(height - border, height), width)))
    cols = np.concatenate((np.tile(every_col, border), np.tile(edge_cols, len(middle)), np.tile(every_col, border)))
    return rows, cols


def _border_width(fields: Sequence[MotionField], frame_wide: FrameWideFit, margin: float) -> int | None:
    """Pixels from the frame's edge beyond which no camera displacement of the ``fields`` (at any of their
    reference distances) can carry a point to within ``margin`` of the edge, with a pixel to spare for
    rounding; None when no list is in use."""
    distances = [field.distances() for field in fields]
    used = [d[field.covered & (d != 0)] for field, d in zip(fields, distances)]
    used = [d for d in used if d.size]
    if not used:
        return None
    height, width = frame_wide.height, frame_wide.width
    corners_dx, corners_dy = frame_wide.velocity().displacement(np.array([0, width, 0, width], np.float32),
                                                                np.array([0, 0, height, height], np.float32))
    reach = float(np.abs(np.concatenate((corners_dx, corners_dy))).max()) * max(int(np.abs(d).max()) for d in used)
    return int(math.ceil(reach + margin)) + 1


def _carried_out(fields: Sequence[MotionField], frame_wide: FrameWideFit, x: np.ndarray, y: np.ndarray,
                 cell_of: tuple, height: int, width: int, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Whether the camera's motion carries each point (x, y) out of the (height, width) frame, or closer than
    ``margin`` to its edge, in every list that applies to it (that of its cell: ``cells[cell_of]`` reads a
    (rows, cols) per-cell array at the points), and the per-point coverage by any list in use (None when no
    list is)."""
    velocity_dx, velocity_dy = frame_wide.velocity().displacement(x, y)  # per frame of distance
    in_use = _fields_in_use(fields)
    covered = np.logical_or.reduce([field.covered for field in in_use])[cell_of] if in_use else None
    revealed = np.zeros(x.shape, bool)
    applied = np.zeros(x.shape, bool)
    for field in in_use:
        distance = field.distances().astype(np.float32)
        distance = np.where(field.covered & (distance != 0), distance, np.float32(_nearest_reference(field)))[cell_of]
        source_x, source_y = x + velocity_dx * distance, y + velocity_dy * distance
        if margin:  # a footprint reaching past the edge
            outside = ((source_x < margin) | (source_x > width - margin) | (source_y < margin)
                       | (source_y > height - margin))
        else:  # a point at or past the edge
            outside = (source_x < 0) | (source_x >= width) | (source_y < 0) | (source_y >= height)
        applies = field.covered[cell_of] | ~covered
        revealed = np.where(applies, np.where(applied, revealed & outside, outside), revealed)
        applied |= applies
    return revealed, covered


def _fields_in_use(fields: Sequence[MotionField]) -> list[MotionField]:
    """The fields with a vector into a known reference on some cell."""
    return [field for field in fields if (field.covered & (field.distances() != 0)).any()]


def _nearest_reference(field: MotionField) -> int:
    """The signed distance of the nearest reference a field in use points into: the one a cell it does not
    cover is carried by."""
    used = field.distances()[field.covered & (field.distances() != 0)]
    return int(used[np.argmin(np.abs(used))])


def _block_any(cells: np.ndarray, block: int) -> np.ndarray:
    """(rows, cols) bool: whether any cell of each cell's ``block`` x ``block`` block (aligned at 0) is set."""
    rows, cols = cells.shape
    padded = np.zeros((-(-rows // block) * block, -(-cols // block) * block), bool)
    padded[:rows, :cols] = cells
    blocks = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).any(axis=(1, 3))
    return np.repeat(np.repeat(blocks, block, 0), block, 1)[:rows, :cols]
