"""The pieces of camera-robust energy (issue 11): the robust camera fit, which frame each vector points into,
the reference window over the stream, and the budget rule (frame background, scene cuts)."""

import numpy as np
import pytest

from onevision_hf import OneVisionVideoProcessor
from onevision_hf.processors.codec_energy import MotionField, codec_motion_fields, compensated_residual
from onevision_hf.processors.frame_energy import (
    EnergyRecipe,
    downsampled_luma,
    frame_energy,
    is_scene_cut,
    subtract_background,
    unobservable_cells,
)
from onevision_hf.processors.global_motion import AffineCamera, fit_camera_motion, refine_camera_motion, translation
from onevision_hf.processors.motion_energy import FrameWideFit, motion_magnitude, revealed_cells, revealed_pixels
from onevision_hf.processors.reference_frames import (
    FUTURE_WINDOW,
    PAST_WINDOW,
    ReferenceFrames,
    ReferenceWindow,
    identify_references,
    unused_list_vectors,
)
from onevision_hf.processors.video_decoding import ArrayFrame
from onevision_hf.synthetic_video import CameraMotion, render_scene

VECTOR_DTYPE = np.dtype([("source", "<i4"), ("w", "u1"), ("h", "u1"), ("src_x", "<i2"), ("src_y", "<i2"),
                         ("dst_x", "<i2"), ("dst_y", "<i2"), ("flags", "<u8"), ("motion_x", "<i4"),
                         ("motion_y", "<i4"), ("motion_scale", "<u2")])  # FFmpeg's AVMotionVector, as PyAV exports it


def _vectors(dst_x, dst_y, dx, dy, source=-1, size=16):
    """Exported-vector records of ``size``-px blocks centred at (dst_x, dst_y), displaced by whole (dx, dy)."""
    dst_x, dst_y, dx, dy = np.broadcast_arrays(*(np.asarray(v, np.int64) for v in (dst_x, dst_y, dx, dy)))
    vectors = np.zeros(dst_x.size, VECTOR_DTYPE)
    vectors["source"], vectors["w"], vectors["h"] = source, size, size
    vectors["dst_x"], vectors["dst_y"] = dst_x.ravel(), dst_y.ravel()
    vectors["src_x"], vectors["src_y"] = (dst_x + dx).ravel(), (dst_y + dy).ravel()
    vectors["motion_x"], vectors["motion_y"], vectors["motion_scale"] = 4 * dx.ravel(), 4 * dy.ravel(), 4
    return vectors


def _texture(rng, height, width):
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1)).astype(np.uint8)
    return np.repeat(np.repeat(coarse, 4, 0), 4, 1)[:height, :width]


def test_camera_fit_recovers_zoom_rotation_and_pan_despite_moving_cells():
    rng = np.random.default_rng(0)
    height, width = 360, 640
    x, y = rng.uniform(0, width, 3000), rng.uniform(0, height, 3000)
    angle, zoom, pan = np.deg2rad(0.5), 1.01, (3.0, -2.0)
    cx, cy = width / 2, height / 2
    # where each point came from: rotated and scaled about the centre, then panned
    src_x = cx + zoom * (np.cos(angle) * (x - cx) - np.sin(angle) * (y - cy)) + pan[0]
    src_y = cy + zoom * (np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy)) + pan[1]
    dx, dy = src_x - x, src_y - y
    moving = rng.random(3000) < 0.4  # 40 % of the cells move on their own
    dx[moving] += rng.uniform(-12, 12, moving.sum())
    dy[moving] += rng.uniform(-12, 12, moving.sum())
    camera = fit_camera_motion(x, y, dx, dy, height, width)
    fitted_dx, fitted_dy = camera.displacement(x[~moving], y[~moving])
    # a hundredth of a pixel: outliers that happen to land within the biweight's reach pull a little
    np.testing.assert_allclose(fitted_dx, (src_x - x)[~moving], atol=1e-2)
    np.testing.assert_allclose(fitted_dy, (src_y - y)[~moving], atol=1e-2)


def test_camera_fit_of_a_pure_pan_is_that_translation_and_few_cells_fall_back_to_the_median():
    x, y = np.meshgrid(np.arange(8, 640, 16.0), np.arange(8, 360, 16.0))
    camera = fit_camera_motion(x, y, np.full(x.shape, 2.0), np.full(x.shape, -1.0), 360, 640)
    dx, dy = camera.displacement(np.array([0.0, 639.0]), np.array([0.0, 359.0]))
    np.testing.assert_allclose(dx, 2.0, atol=1e-6)
    np.testing.assert_allclose(dy, -1.0, atol=1e-6)
    few = fit_camera_motion(np.arange(3.0), np.arange(3.0), np.array([1.0, 5.0, 1.5]), np.zeros(3), 360, 640)
    np.testing.assert_allclose(few.displacement(np.array([100.0]), np.array([50.0]))[0], 1.5)


def test_refining_the_frames_camera_on_one_reference_ignores_its_objects():
    rng = np.random.default_rng(9)
    height, width = 360, 640
    x, y = rng.uniform(0, width, 400), rng.uniform(0, height, 400)
    dx = 2.0 + 0.004 * (x - width / 2)  # this reference's camera: a pan with a slight zoom
    dy = -1.0 + 0.004 * (y - height / 2)
    moving = np.arange(400) < 180  # 45 % of the reference's cells are one object moving 5 px on its own
    dx[moving] += 5.0
    base = translation(0.0, 0.0, height, width)  # normalised coordinates: (x - centre) / half-diagonal
    zoom = 0.004 * base.scale
    rough = AffineCamera(np.array([[zoom, 0.0, 1.8], [0.0, zoom, -0.85]]), base.center, base.scale)  # 0.2 px off
    refined = refine_camera_motion(x, y, dx, dy, rough)
    fitted_dx, fitted_dy = refined.displacement(x[~moving], y[~moving])
    np.testing.assert_allclose(fitted_dx, dx[~moving], atol=1e-3)
    np.testing.assert_allclose(fitted_dy, dy[~moving], atol=1e-3)
    few = refine_camera_motion(x[:4], y[:4], dx[:4], dy[:4], rough)
    assert few is rough  # too few cells to refine: the frame's camera


def test_a_refit_that_explains_fewer_cells_than_the_frames_camera_is_not_taken():
    rng = np.random.default_rng(4)
    height, width = 360, 640
    x, y = rng.uniform(0, width, 300), rng.uniform(0, height, 300)
    background = np.arange(300) < 120  # 40 % of the reference's cells move with the frame's camera exactly
    dx = np.where(background, 2.0, rng.uniform(1.0, 6.0, 300))  # the rest: vectors that agree on nothing
    dy = np.where(background, -1.0, rng.uniform(-4.0, 3.0, 300))
    start = translation(2.0, -1.0, 360, 640)
    assert refine_camera_motion(x, y, dx, dy, start) is start
    camera = ~background & (np.arange(300) < 240)  # now 40 % more move 0.2 px off the frame's camera (shake)
    dx[background | camera], dy[background | camera] = 2.2, -0.8
    refined = refine_camera_motion(x, y, dx, dy, start)  # explains those 80 % exactly, the start none
    np.testing.assert_allclose(refined.displacement(x[camera], y[camera])[0], 2.2, atol=0.02)  # within 0.25


def test_each_vector_is_matched_to_the_frame_it_points_into():
    rng = np.random.default_rng(1)
    height, width = 128, 192
    world = _texture(rng, height + 64, width + 64)

    def view(t):  # the camera pans 2 px right per frame: frame t shows the world from x = 2t
        return np.ascontiguousarray(world[16:16 + height, 2 * t:2 * t + width])

    current = 10
    references = ReferenceFrames({d: view(current - d) for d in (1, 2, 3, -1, -2)})
    xs, ys = np.meshgrid(np.arange(24, width - 24, 16), np.arange(24, height - 24, 16))
    # a point of frame t sits 2d px further right in frame t - d (d < 0: the later frames)
    cases = [(1, -1), (3, -1), (2, -1), (-1, 1), (-2, 1)]
    vectors = np.concatenate([_vectors(xs, ys, 2 * d, 0, source=source) for d, source in cases])
    truth = np.concatenate([np.full(xs.size, d) for d, _ in cases])
    distances = identify_references(vectors, view(current), references, subpixel=True)
    np.testing.assert_array_equal(distances, truth)


def test_samples_displaced_past_the_edge_do_not_decide_the_reference():
    rng = np.random.default_rng(10)
    height, width = 96, 128
    world = 128 + _texture(rng, height, width + 64) // 2

    def view(t):  # the camera pans 3 px right per frame
        return np.ascontiguousarray(world[:, 3 * t:3 * t + width])

    current = view(10)
    references = ReferenceFrames({d: view(10 - d) for d in (1, 2, 3)})
    for luma in references.lumas.values():
        luma[:, -1] = 0  # what clamping reads past the edge: far from every block's pixels
    xs, ys = np.meshgrid(np.arange(16, 96, 8), np.arange(8, height - 8, 8))
    inner = _vectors(xs, ys, 6, 0, size=8)  # most blocks point 2 frames back: the dominant reference
    # blocks at the right edge found 9 px further right 3 frames back: 3 of their 4 sample columns land past
    # the edge, where every candidate reads the same clamped pixels
    edge = _vectors(np.full(ys.shape[0], width - 8), ys[:, 0], 9, 0, size=8)
    distances = identify_references(np.concatenate([inner, edge]), current, references, subpixel=True)
    assert (distances[:len(inner)] == 2).all()
    np.testing.assert_array_equal(distances[len(inner):], 3)


def test_a_reference_few_blocks_use_still_competes():
    rng = np.random.default_rng(5)
    height, width = 128, 192
    world = _texture(rng, height + 64, width + 64)

    def view(t):
        return np.ascontiguousarray(world[16:16 + height, 2 * t:2 * t + width])

    current = 20
    references = ReferenceFrames({d: view(current - d) for d in range(1, 9)})
    xs, ys = np.meshgrid(np.arange(12, width - 24, 8), np.arange(12, height - 24, 8))  # 8-px blocks
    far = np.zeros(xs.shape, bool)
    far[:, 2:4] = True  # 2 of 20 block columns (about 4 % of the blocks, like a zoomed P-frame's) point 8 back
    distance = np.where(far, 8, 4)
    vectors = _vectors(xs, ys, 2 * distance, 0, size=8)
    distances = identify_references(vectors, view(current), references, subpixel=True)
    np.testing.assert_array_equal(distances, distance.ravel())  # not pruned by the probe


def test_the_zero_vector_of_a_list_a_block_does_not_use_is_found():
    # FFmpeg exports a (0, 0) vector of every list the macroblock uses for each of its partitions, also for a
    # partition predicted from the other list alone
    rng = np.random.default_rng(6)
    height, width = 128, 192
    world = _texture(rng, height + 64, width + 64)

    def view(t):  # the camera pans 2 px right per frame
        return np.ascontiguousarray(world[16:16 + height, 2 * t:2 * t + width])

    current = view(10)
    references = ReferenceFrames({1: view(9), -1: view(11)})
    xs, ys = np.meshgrid(np.arange(24, width - 24, 16), np.arange(24, height - 24, 16))
    thirds = np.array_split(np.arange(xs.size), 3)
    columns = [np.ravel(v) for v in (xs, ys)]
    future_only, bi, past_only = ([c[part] for c in columns] for part in thirds)
    vectors = np.concatenate([
        _vectors(*future_only, 0, 0, source=-1), _vectors(*future_only, -2, 0, source=1),  # past list unused
        _vectors(*bi, 2, 0, source=-1), _vectors(*bi, -2, 0, source=1),  # bi-predicted
        _vectors(*past_only, 2, 0, source=-1), _vectors(*past_only, 0, 0, source=1),  # future list unused
    ])
    distances = identify_references(vectors, current, references, subpixel=True)
    unused = unused_list_vectors(vectors, current, references, distances, subpixel=True)
    sizes = [len(part) for part in thirds]
    truth = np.concatenate([np.ones(sizes[0], bool), np.zeros(sizes[0] + 2 * sizes[1], bool),
                            np.zeros(sizes[2], bool), np.ones(sizes[2], bool)])
    np.testing.assert_array_equal(unused, truth)


def test_a_true_zero_vector_is_kept():
    rng = np.random.default_rng(7)
    still = _texture(rng, 96, 128)
    elsewhere = _texture(rng, 96, 128)
    references = ReferenceFrames({1: still.copy(), -1: elsewhere})
    xs, ys = np.meshgrid(np.arange(8, 128, 16), np.arange(8, 96, 16))
    # a still block: its past (0, 0) predicts it exactly, the future vector points at unrelated pixels
    vectors = np.concatenate([_vectors(xs, ys, 0, 0, source=-1), _vectors(xs, ys, 4, 0, source=1)])
    distances = identify_references(vectors, still, references, subpixel=True)
    assert not unused_list_vectors(vectors, still, references, distances, subpixel=True).any()
    both_zero = np.concatenate([_vectors(xs, ys, 0, 0, source=-1), _vectors(xs, ys, 0, 0, source=1)])
    references = ReferenceFrames({1: still.copy(), -1: still.copy()})
    distances = identify_references(both_zero, still, references, subpixel=True)
    assert not unused_list_vectors(both_zero, still, references, distances, subpixel=True).any()


def test_ties_in_a_still_scene_go_to_the_dominant_reference():
    rng = np.random.default_rng(2)
    still = _texture(rng, 96, 128)
    flat = np.full((96, 128), 90, np.uint8)
    current = flat.copy()
    current[:, 64:] = still[:, 64:]  # textured right half, flat left half
    references = ReferenceFrames({1: flat.copy(), 2: current.copy()})  # only frame t-2 shows the texture
    references.lumas[1][:, 64:] = 255 - still[:, 64:]
    xs, ys = np.meshgrid(np.arange(8, 128, 16), np.arange(8, 96, 16))
    distances = identify_references(_vectors(xs, ys, 0, 0), current, references, subpixel=True)
    assert set(distances.tolist()) == {2}  # textured blocks pick t-2 confidently; flat ties follow them


def test_predictions_use_each_cells_own_reference():
    rng = np.random.default_rng(3)
    far, near = _texture(rng, 64, 64), _texture(rng, 64, 64)
    current = near.copy()
    current[:, :32] = far[:, :32]  # left half predicted from 2 frames back, right half from the previous frame
    xs, ys = np.meshgrid(np.arange(8, 64, 16), np.arange(8, 64, 16))
    vectors = _vectors(xs, ys, 0, 0)
    distances = np.where(vectors["dst_x"] < 32, 2, 1).astype(np.int16)
    fields = codec_motion_fields(vectors, 64, 64, distances)
    residual = compensated_residual(current, fields, {1: near, 2: far})
    np.testing.assert_array_equal(residual, 0)  # every cell predicted exactly from its own reference
    wrong = compensated_residual(current, fields, {1: near, 2: near})
    assert wrong[:, :32].mean() > 20


def test_a_cell_is_predicted_from_the_list_that_stays_inside_the_frame():
    rng = np.random.default_rng(7)
    later = _texture(rng, 64, 64)
    current = later.copy()
    cell, cells = 4, 16
    zeros = np.zeros((cells, cells), np.float32)
    past_dx = zeros.copy()
    past_dx[:, -1] = 8.0  # the last column's past vector reads 8 px past the right edge (clamped edge pixels)
    past = MotionField(past_dx, zeros, np.ones((cells, cells), bool), cell)
    future = MotionField(zeros, zeros, np.ones((cells, cells), bool), cell, np.full((cells, cells), -1, np.int16))
    earlier = np.roll(later, 5, axis=1)  # whatever the past frame holds, its edge is not this content
    residual = compensated_residual(current, [past, future], {1: earlier, -1: later})
    np.testing.assert_array_equal(residual[:, -cell:], 0)  # from the later frame: the vector that stays inside
    assert residual[:, :-cell].mean() > 10  # elsewhere the first list, the past one, predicts


def test_motion_is_measured_relative_to_the_camera_and_per_frame_of_distance():
    height, width, cell = 128, 192, 4
    rows, cols = height // cell, width // cell
    distance = np.ones((rows, cols), np.int16)
    distance[:, 3 * cols // 4:] = 3  # the right quarter points three frames back
    dx = 2.0 * distance.astype(np.float32)  # a pan of 2 px/frame seen over 1 and 3 frames
    dy = np.zeros((rows, cols), np.float32)
    dx[4:8, 4:8] += 6.0  # an object moving 6 px/frame on its own (distance 1)
    field = MotionField(dx, dy, np.ones((rows, cols), bool), cell, distance)
    speed = motion_magnitude([field], height, width, "affine")
    np.testing.assert_allclose(speed[4:8, 4:8], 6.0, atol=1e-3)
    speed[4:8, 4:8] = 0
    assert speed.max() < 1e-3  # the camera's motion is gone on both references
    median = motion_magnitude([field], height, width, "median")  # the released recipe: one median vector
    np.testing.assert_allclose(median[:, 3 * cols // 4:], 4.0)  # the farther reference keeps 2 x (3 - 1) px


def test_content_the_camera_brings_into_view_is_told_from_the_rest():
    height, width, cell = 128, 192, 4
    rows, cols = height // cell, width // cell
    y, x = (np.indices((rows, cols)) + 0.5) * cell
    everywhere = np.ones((rows, cols), bool)

    def revealed(*fields):
        return revealed_cells(list(fields), FrameWideFit(list(fields), height, width), height, width)

    def field(dx, dy, distance=1, covered=everywhere):
        return MotionField(np.asarray(dx, np.float32) + np.zeros((rows, cols), np.float32),
                           np.asarray(dy, np.float32) + np.zeros((rows, cols), np.float32), covered, cell,
                           np.full((rows, cols), distance, np.int16))

    zoom = 0.05  # 5 % a frame: each point came from 5 % farther out (zooming out) or nearer the centre (in)
    outward_x, outward_y = (x - width / 2) * zoom, (y - height / 2) * zoom
    assert not revealed(field(-outward_x, -outward_y)).any()  # zooming in: every point was in view before
    out = revealed(field(outward_x, outward_y))
    source_x, source_y = x + outward_x, y + outward_y
    outside = (source_x < 0) | (source_x >= width) | (source_y < 0) | (source_y >= height)
    np.testing.assert_array_equal(out, outside)  # zooming out: a ring at the edges is new
    assert outside.any() and not outside[4:-4, 4:-4].any()
    pan = revealed(field(6.0, 0.0))  # the content came from 6 px further right: the right edge is new
    np.testing.assert_array_equal(pan, x + 6.0 >= width)
    left_half = x < width / 2
    later = field(-6.0, 0.0, distance=-1, covered=left_half)  # a B-frame's later reference, on the left half
    assert not revealed(field(6.0, 0.0), field(-6.0, 0.0, distance=-1)).any()  # found in the later frame
    np.testing.assert_array_equal(revealed(field(6.0, 0.0), later), x + 6.0 >= width)
    assert not revealed(field(0.0, 0.0)).any()  # a still camera brings nothing into view
    # an intra macroblock (4 x 4 cells here) at the leading edge: only its last column of cells came into view,
    # but the encoder coded all of it intra because of that column
    intra = everywhere.copy()
    intra[8:12, -4:] = False
    panned = field(6.0, 0.0, covered=intra)
    by_macroblock = revealed_cells([panned], FrameWideFit([panned], height, width), height, width, coding_block=4)
    expected = (x + 6.0 >= width) | ~intra
    np.testing.assert_array_equal(by_macroblock, expected)
    np.testing.assert_array_equal(revealed(panned), x + 6.0 >= width)  # cell by cell: its centre only


def test_a_strip_narrower_than_half_a_cell_is_revealed_pixel_by_pixel():
    height, width, cell = 64, 96, 4
    rows, cols = height // cell, width // cell
    ones = np.ones((rows, cols), np.float32)
    field = MotionField(0.5 * ones, 1.5 * ones, np.ones((rows, cols), bool), cell, np.full((rows, cols), 3, np.int16))
    frame_wide = FrameWideFit([field], height, width)  # a diagonal pan of (0.5, 1.5) px per 3 frames
    assert not revealed_cells([field], frame_wide, height, width).any()  # no cell centre leaves the frame
    pixels = revealed_pixels([field], frame_wide, height, width)
    expected = np.zeros((height, width), bool)
    expected[-2:] = True  # rows 62 and 63 reach 1.5 px below: row 62's lower edge at 64.5, row 61's at 63.5
    expected[:, -1] = True  # the last column's right edge at 96.5
    np.testing.assert_array_equal(pixels, expected)
    rng = np.random.default_rng(8)
    reference = _texture(rng, height + 8, width + 8)
    current = reference[1:1 + height, 1:1 + width].copy()  # the camera moved 1 px right and down over 3 frames
    current[8:24, 8:24] = _texture(rng, 16, 16)  # something moved
    field = MotionField(ones, ones, np.ones((rows, cols), bool), cell, np.full((rows, cols), 3, np.int16))
    energy = frame_energy(current, [field], {3: reference[:height, :width]}, EnergyRecipe(frame_background="keep"))
    kept = frame_energy(current, [field], {3: reference[:height, :width]},
                        EnergyRecipe(frame_background="keep", revealed_content="keep"))
    assert kept[-1].mean() > 0.1 and kept[:, -1].mean() > 0.1  # the strips the camera brought into view
    assert not energy[-1].any() and not energy[:, -1].any()
    np.testing.assert_array_equal(energy[:-1, :-1], kept[:-1, :-1])  # the rest as it was


def test_an_intra_block_of_a_predicted_frame_is_scored_by_its_residual_alone():
    rng = np.random.default_rng(6)
    height, width, cell = 96, 128, 4
    reference = _texture(rng, height, width)
    current = reference.copy()
    current[32:64, 32:64] = _texture(rng, 32, 32)  # new content the codec coded as intra blocks
    covered = np.ones((height // cell, width // cell), bool)
    covered[8:16, 8:16] = False
    zeros = np.zeros(covered.shape, np.float32)
    field = MotionField(zeros, zeros, covered, cell)
    energy = {rule: frame_energy(current, [field], {1: reference},
                                 EnergyRecipe(vectorless_cells=rule, frame_background="keep"))
              for rule in ("fused", "residual")}
    assert energy["fused"][32:64, 32:64].max() <= 0.5 + 1e-6  # no motion term: half the scale at most
    assert energy["residual"][32:64, 32:64].mean() > 1.6 * energy["fused"][32:64, 32:64].mean()
    np.testing.assert_array_equal(energy["residual"][:32], energy["fused"][:32])  # predicted cells unchanged


def test_an_intra_block_the_camera_predicts_is_not_new_content():
    # an intra refresh codes blocks intra that the camera's pan predicts; new content coded intra keeps its residual
    rng = np.random.default_rng(7)
    height, width, cell = 96, 128, 4
    texture = _texture(rng, height + 8, width + 8)
    reference = texture[4:4 + height, 4:4 + width]
    current = texture[3:3 + height, 2:2 + width].copy()  # the camera moved: pixel (y, x) was at (y - 1, x - 2)
    current[56:80, 88:112] = _texture(rng, 24, 24)  # new content
    covered = np.ones((height // cell, width // cell), bool)
    covered[4:20, 8:12] = False  # an intra-refresh column over the background
    covered[14:20, 22:28] = False  # the new content's intra blocks
    dx, dy = np.where(covered, np.float32(-2), 0), np.where(covered, np.float32(-1), 0)
    field = MotionField(dx.astype(np.float32), dy.astype(np.float32), covered, cell, covered.astype(np.int16))

    camera = FrameWideFit([field], height, width).uncovered_camera_field([field])
    np.testing.assert_array_equal(camera.covered, ~covered)
    np.testing.assert_allclose(camera.dx[~covered], -2, atol=1e-4)
    np.testing.assert_allclose(camera.dy[~covered], -1, atol=1e-4)
    np.testing.assert_array_equal(camera.distances()[~covered], 1)
    assert FrameWideFit([field], height, width).uncovered_camera_field([camera, field]) is None  # all covered

    energy = frame_energy(current, [field], {1: reference}, EnergyRecipe(frame_background="keep"))
    refresh, new, background = energy[16:80, 32:48], energy[56:80, 88:112], energy[8:48, 64:80]
    assert refresh.mean() <= background.mean() + 0.01  # predicted by the camera: no more than the background
    assert new.mean() > 0.3 and new.mean() > 10 * refresh.mean()


def test_the_residual_the_camera_explains_better_than_a_block_translation_is_the_cameras():
    from onevision_hf.processors.codec_energy import compensated_residual
    from onevision_hf.processors.frame_energy import lower_cells
    from onevision_hf.processors.pixel_motion import block_matching_field
    scene = render_scene(2, 144, 192, num_objects=1, object_size=32, speed=3.0, seed=5,
                         camera=CameraMotion(rotation=1.0))
    reference, current = (ArrayFrame(index, frame).luma() for index, frame in enumerate(scene.frames))
    moving = np.asarray(scene.moving[1])
    field = block_matching_field(current, reference)  # one translation per block: cannot follow the rotation
    camera = FrameWideFit([field], *current.shape).camera_field(field)
    by_vector = compensated_residual(current, [field], {1: reference})
    by_camera = compensated_residual(current, [camera], {1: reference})
    lesser = np.where(field.to_pixels(lower_cells(by_camera, by_vector, field), *current.shape), by_camera,
                      by_vector)  # per cell, whichever prediction leaves less
    rows, cols = field.dx.shape

    def cell_sums(values):
        padded = np.zeros((rows * field.cell, cols * field.cell))
        padded[:values.shape[0], :values.shape[1]] = values
        return padded.reshape(rows, field.cell, cols, field.cell).sum(axis=(1, 3))

    assert (cell_sums(lesser) <= cell_sums(by_vector) + 1e-3).all()  # never more than the vectors leave
    assert lesser[~moving].mean() < 0.8 * by_vector[~moving].mean()  # the rotation's share is taken out
    assert by_camera[moving].mean() > 3 * lesser[moving].mean()  # the object keeps its own vector's residual
    energy = {rule: frame_energy(current, [field], {1: reference},
                                 EnergyRecipe(residual_prediction=rule, frame_background="keep",
                                              residual_measure="difference"))  # the rule alone
              for rule in ("vectors", "vectors-or-camera")}
    contrast = {rule: values[moving].mean() / values[~moving].mean() for rule, values in energy.items()}
    assert contrast["vectors-or-camera"] > contrast["vectors"], contrast


class _Frame:
    def __init__(self, index, kind):  # kind "I": a keyframe (IDR picture)
        self.index, self.is_anchor, self.is_keyframe = index, kind != "B", kind == "I"


def test_reference_window_holds_b_frames_until_their_next_anchor():
    window = ReferenceWindow(future_references=True)
    kinds = "IBBPBBP"
    ready = []
    for index, kind in enumerate(kinds):
        window.push(_Frame(index, kind), sampled=index in (1, 3, 5))
        ready.extend((frame.index, sorted(nearby)) for frame, nearby in window.ready())
        if index == 2:
            assert ready == []  # frame 1 (B) waits for the P-frame 3 it may predict from
    assert ready[0] == (1, [-2, -1, 1])
    assert ready[1] == (3, [1, 2, 3])
    assert ready[2] == (5, [-1, 1, 2, 3, 4, 5])
    assert list(window.flush()) == []


def test_reference_window_never_looks_past_a_keyframe():
    window = ReferenceWindow(future_references=True)
    ready = []
    for index, kind in enumerate("PPPPIPP"):
        window.push(_Frame(index, kind), sampled=index in (4, 6))
        ready.extend((frame.index, sorted(nearby)) for frame, nearby in window.ready())
    assert ready == [(4, [1, 2, 3, 4]), (6, [1, 2])]  # the keyframe itself still sees the frames before it


def test_reference_window_bounds_what_it_keeps():
    window = ReferenceWindow(future_references=True)
    window.push(_Frame(0, "B"), sampled=True)
    for index in range(1, FUTURE_WINDOW + 1):
        assert not list(window.ready())
        window.push(_Frame(index, "B"), sampled=False)
    (frame, nearby), = window.ready()  # no anchor came: it stops waiting after FUTURE_WINDOW frames
    assert min(nearby) == -FUTURE_WINDOW
    last = 3 * (PAST_WINDOW + FUTURE_WINDOW)
    for index in range(FUTURE_WINDOW + 1, last):
        window.push(_Frame(index, "P"), sampled=False)
        assert len(window.frames) <= PAST_WINDOW + FUTURE_WINDOW + 1
    window.push(_Frame(last, "P"), sampled=True)
    (_, nearby), = window.ready()
    assert sorted(nearby) == list(range(1, PAST_WINDOW + 1))


def test_background_subtraction_quiets_uniform_energy_and_keeps_an_object():
    rng = np.random.default_rng(4)
    energy = rng.uniform(0.3, 0.5, (96, 128)).astype(np.float32)  # high everywhere: a failed compensation
    energy[32:64, 32:64] = 1.0  # and one object
    out = subtract_background(energy.copy())
    assert out[32:64, 32:64].min() > 0.5
    assert out[:, 80:].mean() < 0.02
    still = np.zeros((96, 128), np.float32)
    still[10:20, 10:20] = 0.8
    np.testing.assert_array_equal(subtract_background(still.copy()), still)  # nothing to take out


def test_scene_cut_test_tells_new_content_from_camera_motion():
    rng = np.random.default_rng(5)
    scene = np.repeat(np.repeat(rng.integers(0, 256, (20, 30)).astype(np.uint8), 32, 0), 32, 1)  # 640 x 960
    other = np.repeat(np.repeat(rng.integers(0, 256, (20, 30)).astype(np.uint8), 32, 0), 32, 1)
    panned = np.roll(scene, 6, axis=1)
    assert is_scene_cut(other, scene)
    assert not is_scene_cut(panned, scene)
    assert not is_scene_cut(np.full_like(scene, 16), scene)  # a fade to black is not a cut
    assert not is_scene_cut(scene, None)
    flat = np.full((640, 960), 90, np.uint8)  # a flat background whose only content is a small object ...
    flat[64:112, 64:112] = rng.integers(0, 256, (48, 48))
    moved = np.full_like(flat, 90)
    moved[64:112, 100:148] = flat[64:112, 64:112]  # ... moved by 36 px: the thumbnails decorrelate
    thumbnails = [frame.reshape(20, 32, 30, 32).mean(axis=(1, 3)).ravel() for frame in (flat, moved)]
    assert np.corrcoef(*thumbnails)[0, 1] < 0.5
    assert not is_scene_cut(moved, flat)  # two thumbnail pixels of 600 changed: not a cut
    cut = render_scene(6, 352, 640, num_objects=1, object_size=48, cut_at=3, seed=1, camera=CameraMotion())
    for factor in (1, 2):  # the energy's resolutions at this size: 32 x 32 means of a coarser luma vary less
        before, after = (downsampled_luma(ArrayFrame(0, frame).luma(), factor) for frame in cut.frames[2:4])
        assert is_scene_cut(after, before), factor


def test_a_frame_whose_compensation_fails_cannot_swallow_the_budget():
    scene = render_scene(12, 144, 192, num_objects=1, object_size=32, speed=3.0, seed=6, camera=CameraMotion())
    frames = [frame.copy() for frame in scene.frames]
    rng = np.random.default_rng(6)
    noise = rng.integers(-40, 41, frames[6].shape)  # same scene, but nothing predicts it well
    frames[6] = np.clip(frames[6].astype(int) + noise, 0, 255).astype(np.uint8)
    shares = {}
    for rule in ("subtract", "keep"):
        processor = OneVisionVideoProcessor(num_frames=12, keep_first_frame=False, budget=120,
                                            frame_background=rule, revealed_content="keep")  # the budget rule alone
        shares[rule] = processor.select(frames).patch_mask().sum(axis=(1, 2))[6] / 120
    assert shares["subtract"] <= 0.1, shares  # about its object's share (1/11 of the moving patches)
    assert shares["keep"] >= 2 * shares["subtract"], shares  # the released rule ranks the noise as it is


def test_a_scene_cut_frame_is_new_content_and_takes_its_patches():
    scene = render_scene(12, 144, 192, num_objects=1, object_size=32, speed=3.0, seed=7, cut_at=6,
                         camera=CameraMotion())
    processor = OneVisionVideoProcessor(num_frames=12, keep_first_frame=False, budget=200)
    mask = processor.select(scene.frames).patch_mask()
    per_frame = mask[6].size
    assert mask[6].sum() == per_frame  # the whole cut frame: everything in it is new


def test_energy_runs_at_the_resolution_the_patches_need():
    from onevision_hf.processors.frame_energy import EnergyRecipe, downsampled_luma, energy_downscale

    patch = EnergyRecipe(energy_resolution="patch")
    assert energy_downscale(patch, 720, 336, 14) == 4  # a patch spans 30 video pixels: 7.5 samples at 1/4
    assert energy_downscale(patch, 640, 588, 14) == 2  # the bundled phone clip: 15 video pixels a patch
    assert energy_downscale(patch, 144, 336, 14) == 1  # an upscaled small video keeps every pixel
    assert energy_downscale(EnergyRecipe(energy_resolution="full"), 720, 336, 14) == 1
    luma = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7) * 7
    small = downsampled_luma(luma, 2)
    assert small.shape == (3, 4)
    padded = np.pad(luma.astype(float), ((0, 1), (0, 1)), mode="edge")
    np.testing.assert_array_equal(small, np.floor(padded.reshape(3, 2, 4, 2).mean(axis=(1, 3)) + 0.5))


@pytest.mark.parametrize("name, value", [("camera_model", "homography"), ("frame_background", "drop"),
                                         ("energy_resolution", "half"), ("residual_prediction", "camera"),
                                         ("unobservable_motion", "drop")])
def test_unknown_energy_choices_are_refused_by_name(name, value):
    from onevision_hf.errors import OneVisionConfigError

    with pytest.raises(OneVisionConfigError, match=name):
        OneVisionVideoProcessor(**{name: value})


def test_ignoring_unobservable_motion_needs_the_affine_camera():
    from onevision_hf.errors import OneVisionConfigError

    with pytest.raises(OneVisionConfigError, match=r"unobservable_motion='ignore' compares with the camera's "
                                                  r"prediction: it needs camera_model='affine'"):
        OneVisionVideoProcessor(camera_model="median")
    assert OneVisionVideoProcessor(camera_model="median", unobservable_motion="keep").camera_model == "median"


def test_flat_cells_the_camera_predicts_have_unobservable_motion_unless_enclosed():
    """Flat content the camera predicts says nothing of a vector; such a region reaching the frame's border is a
    flat background (whose blocks took a moving object's vector), one enclosed by texture is the inside of a
    flat object whose edges moved (its vectors stay)."""
    luma = np.full((64, 96), 90, np.uint8)  # flat background, cells of 4 x 4 pixels: a 16 x 24 grid
    luma[16:48, 32:64] = np.random.default_rng(0).integers(0, 255, (32, 32))  # a textured ring ...
    luma[24:40, 40:56] = 200  # ... around a flat inside
    field = MotionField.empty(64, 96, cell=4)
    predicted = np.zeros(luma.shape, np.float32)  # the camera predicts every pixel
    unobservable = unobservable_cells(luma, predicted, field)
    ring = np.zeros((16, 24), bool)
    ring[4:12, 8:16] = True
    inside = np.zeros((16, 24), bool)
    inside[6:10, 10:14] = True
    near_ring = np.zeros((16, 24), bool)
    near_ring[3:13, 7:17] = True  # a cell's high-pass window reaches a pixel into its neighbours
    assert unobservable[~near_ring].all()  # the flat background
    assert not unobservable[ring & ~inside].any()  # texture: a vector there is checked by its prediction
    assert not unobservable[inside].any()  # enclosed: the flat inside of a textured (moving) object
    camera_fails = predicted.copy()
    camera_fails[:, :8] = 5.0  # where the camera's prediction leaves a residual, a flat cell's vector counts
    assert not unobservable_cells(luma, camera_fails, field)[:, :2].any()
    assert unobservable_cells(luma, camera_fails, field)[:, 2:][~near_ring[:, 2:]].all()


def test_sample_points_read_the_same_pixels_from_strided_decoder_rows_and_plain_arrays():
    from onevision_hf.processors.reference_frames import _SamplePoints

    rng = np.random.default_rng(3)
    buffer = rng.integers(0, 256, (40, 72), dtype=np.uint8)  # rows padded past the width, as decoders lay them out
    rows = np.clip(rng.integers(-2, 40, (50, 1)) + np.array([-3, -1, 1, 3]), 0, 39)
    cols = np.clip(rng.integers(-2, 64, (50, 1)) + np.array([-3, -1, 1, 3]), 0, 63)
    points = _SamplePoints(rows, cols)
    for luma in (buffer[:, :64], np.ascontiguousarray(buffer[:, :64]), buffer[::-1, :64],  # negative: fancy index
                 buffer[:, :64].astype(np.int32)):
        expected = luma[rows[:, :, None], cols[:, None, :]].reshape(50, 16).astype(np.int16)
        np.testing.assert_array_equal(points.read(luma), expected)


def test_revealed_pixels_on_the_border_band_equal_the_test_on_every_pixel():
    # the band the camera's largest displacement can carry out is all that is tested: a zooming, rotating camera
    # with past and future references must reveal exactly the pixels the per-pixel test over the frame finds
    from onevision_hf.processors.motion_energy import _carried_out

    height, width, cell = 48, 80, 4
    rows, cols = height // cell, width // cell
    cy, cx = np.mgrid[0:rows, 0:cols]
    x, y = (cx + 0.5) * cell - width / 2, (cy + 0.5) * cell - height / 2
    fields = []
    for sign in (1, -1):
        distance = np.full((rows, cols), sign * (2 if sign > 0 else 1), np.int16)
        dx = (sign * (0.06 * x - 0.03 * y + 1.5)).astype(np.float32)
        dy = (sign * (0.03 * x + 0.06 * y - 0.7)).astype(np.float32)
        covered = np.random.default_rng(3 + sign).random((rows, cols)) < 0.7
        fields.append(MotionField(dx, dy, covered, cell, distance))
    frame_wide = FrameWideFit(fields, height, width)
    py, px = np.indices((height, width)).reshape(2, -1)
    everywhere = _carried_out(fields, frame_wide, px + np.float32(0.5), py + np.float32(0.5),
                              (py // cell, px // cell), height, width, margin=0.5)[0].reshape(height, width)
    banded = revealed_pixels(fields, frame_wide, height, width)
    assert everywhere.any() and not everywhere.all()
    np.testing.assert_array_equal(banded, everywhere)


def test_border_pixels_are_the_frame_edge_band_in_row_major_order():
    # the band's pixels listed directly, as np.nonzero lists those of the band's mask: narrow bands, a band of
    # zero width, and bands wider than half the frame (the whole frame)
    from onevision_hf.processors.motion_energy import _border_pixels

    for height, width in [(1, 1), (5, 9), (12, 7), (48, 80)]:
        for border in range(0, max(height, width) + 2):
            band = np.ones((height, width), bool)
            band[border:height - border, border:width - border] = False
            rows, cols = _border_pixels(height, width, border)
            expected_rows, expected_cols = np.nonzero(band)
            np.testing.assert_array_equal(rows, expected_rows)
            np.testing.assert_array_equal(cols, expected_cols)
