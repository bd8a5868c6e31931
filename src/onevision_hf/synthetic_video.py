"""Synthetic videos with known moving regions, encoded with PyAV: for tests, benchmarks and examples.

`render_scene` draws textured objects moving over a textured background and returns, per frame, the RGB
pixels and the mask of what truly moves (objects, and the whole frame right after a scene cut). The camera
either pans by whole-pixel crops (``pan``, the original scenes) or follows a general `CameraMotion` (pan,
zoom, rotation, smoothed handheld shake: one affine warp of a large background per frame, sampled
bilinearly); the objects move on their own in image coordinates on top, so camera motion is never "moving".
`write_video` encodes frames with any PyAV encoder, pixel format, frame timing and display rotation.
`moving_patches` and `moving_recall` score a selection against the ground truth on the patch grid.
"""

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .errors import OneVisionInputError

FLAT_OBJECT_COLOURS = ((210, 180, 60), (60, 110, 200))  # RGB of `render_scene`'s flat objects


@dataclass
class SyntheticScene:
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    moving: list[np.ndarray]  # (H, W) bool each: pixels of moving objects or new content
    background: np.ndarray | None = None  # camera scenes: (Hb, Wb, 3) uint8 texture filmed (before any cut)
    poses: np.ndarray | None = None  # camera scenes: (T, 2, 3) float64, image (y, x, 1) -> background (y, x)


@dataclass(frozen=True)
class CameraMotion:
    """A camera path over a flat textured background, one affine pose per frame.

    Frame ``t`` shows background point ``u_t + R(theta_t) (p - c) / m_t`` at image pixel ``p = (y, x)``, with
    ``c`` the image centre, ``u_t = t * pan + jitter``, ``theta_t = t * rotation + jitter`` and
    ``m_t = (1 + zoom) ** t``.

    Attributes:
        pan: (dy, dx) pixels per frame the view moves over the background (the content moves the other way).
        zoom: relative magnification change per frame: 0.01 zooms in by 1 % a frame, -0.01 zooms out.
        rotation: degrees per frame the view turns.
        shake: handheld jitter, standard deviation in pixels of the translation (and in tenths of a degree of
            the rotation), Gaussian-smoothed over ``shake_smoothing`` frames (sigma) like a hand's tremor.
        shake_smoothing: sigma in frames of that smoothing.
    """

    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 0.0
    rotation: float = 0.0
    shake: float = 0.0
    shake_smoothing: float = 2.0

    def __post_init__(self):
        if self.zoom <= -1 or self.shake < 0 or self.shake_smoothing <= 0:
            raise OneVisionInputError(
                f"camera motion needs zoom > -1, shake >= 0 and shake_smoothing > 0, got zoom={self.zoom}, "
                f"shake={self.shake}, shake_smoothing={self.shake_smoothing}."
            )

    def poses(self, num_frames: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """(T, 2, 3) float64 affine maps of image (y, x, 1) to background (y, x), frame 0's centre at (0, 0)."""
        t = np.arange(num_frames, dtype=np.float64)
        jitter = np.zeros((num_frames, 3))
        if self.shake:
            jitter = _smoothed_noise(rng, num_frames, self.shake_smoothing) * [self.shake, self.shake,
                                                                               self.shake / 10]
        shift = t[:, None] * np.asarray(self.pan, dtype=np.float64) + jitter[:, :2]  # (T, 2)
        theta = np.deg2rad(t * self.rotation + jitter[:, 2])
        scale = (1.0 + self.zoom) ** -t
        cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
        linear = np.stack((np.stack((cos, -sin), axis=1), np.stack((sin, cos), axis=1)), axis=1)  # (T, 2, 2)
        centre = np.array([(height - 1) / 2, (width - 1) / 2])
        return np.concatenate((linear, (shift - linear @ centre)[:, :, None]), axis=2)


def _smoothed_noise(rng: np.random.Generator, num_frames: int, sigma: float) -> np.ndarray:
    """(T, 3) float64 Gaussian noise smoothed along time with a Gaussian of ``sigma`` frames, unit std each."""
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    noise = rng.normal(size=(num_frames + 2 * radius, 3))
    smooth = np.stack([np.convolve(noise[:, k], kernel / kernel.sum(), mode="valid") for k in range(3)], axis=1)
    return (smooth - smooth.mean(axis=0)) / np.maximum(smooth.std(axis=0), 1e-12)


def _texture(rng: np.random.Generator, height: int, width: int, cell: int = 6) -> np.ndarray:
    """(H, W, 3) uint8 blocky random texture, slightly smoothed: detail a codec and a matcher can lock on."""
    coarse = rng.integers(0, 256, size=(height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:height, :width]
    texture = (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1) + np.roll(texture, (1, 1), (0, 1))) / 4
    return texture.astype(np.uint8)


def sample_bilinear(texture: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(Hb, Wb, C) texture sampled at (..., 2) float (y, x) points inside it -> (..., C) uint8, bilinearly."""
    y, x = points[..., 0], points[..., 1]
    y0 = np.clip(np.floor(y).astype(np.int64), 0, texture.shape[0] - 2)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, texture.shape[1] - 2)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    values = texture.astype(np.float32)
    top = values[y0, x0] * (1 - wx) + values[y0, x0 + 1] * wx
    bottom = values[y0 + 1, x0] * (1 - wx) + values[y0 + 1, x0 + 1] * wx
    return np.clip(np.rint(top * (1 - wy) + bottom * wy), 0, 255).astype(np.uint8)


def _object_tracks(rng: np.random.Generator, num_frames: int, height: int, width: int, num_objects: int,
                   object_size: int, speed: float, faint: bool) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Sprites ((s, s, 3) uint8 each), their (T, N, 2) int64 top-left corners (rounded) and (T, N, 2) float64
    exact positions, bouncing off the frame edges.

    ``faint`` sprites have half the background's contrast (the original scenes); otherwise the same texture.
    """
    if object_size > min(height, width):
        raise OneVisionInputError(f"object_size {object_size} does not fit a {height} x {width} frame.")
    sprites = [_texture(rng, object_size, object_size, cell=4) for _ in range(num_objects)]
    sprites = [sprite // 2 + 96 for sprite in sprites] if faint else sprites
    position = rng.uniform([0, 0], [height - object_size, width - object_size], size=(num_objects, 2))
    angle = rng.uniform(0, 2 * np.pi, size=num_objects)
    velocity = speed * np.stack((np.sin(angle), np.cos(angle)), axis=1)
    corners, positions = [], []
    for _ in range(num_frames):
        corners.append(position.round().astype(np.int64))
        positions.append(position.copy())
        position += velocity
        for axis, limit in ((0, height - object_size), (1, width - object_size)):
            bounced = (position[:, axis] < 0) | (position[:, axis] > limit)
            velocity[bounced, axis] *= -1
            position[:, axis] = np.clip(position[:, axis], 0, limit)
    shape = (num_frames, num_objects, 2)
    return sprites, np.stack(corners).reshape(shape), np.stack(positions).reshape(shape)


def _composite(frame: np.ndarray, sprites: list[np.ndarray], corners: np.ndarray, new_content: bool) -> np.ndarray:
    """Paste the sprites at their (N, 2) corners into ``frame`` (in place); (H, W) bool mask of what moves."""
    mask = np.full(frame.shape[:2], new_content, dtype=bool)
    for sprite, (y, x) in zip(sprites, corners):
        size = sprite.shape[0]
        frame[y:y + size, x:x + size] = sprite
        mask[y:y + size, x:x + size] = True
    return mask


def _shifted(sprite: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(s, s, 3) uint8 ``sprite``'s texture moved by a sub-pixel (dy, dx) ``offset`` inside its box (bilinear,
    edges replicated): an object drawn in whole-pixel boxes still moves smoothly."""
    size = sprite.shape[0]
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), axis=-1).astype(np.float64)
    padded = np.pad(sprite, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sample_bilinear(padded, grid + 1 - offset)


def render_scene(num_frames: int, height: int, width: int, num_objects: int = 1, object_size: int = 40,
                 speed: float = 3.0, pan: tuple[float, float] = (0.0, 0.0), cut_at: int | None = None,
                 seed: int = 0, camera: CameraMotion | None = None, flat_background: bool = False,
                 flat_objects: bool = False) -> SyntheticScene:
    """Objects bouncing at ``speed`` px/frame over a background filmed by a moving camera.

    ``pan`` (dy, dx) px/frame moves the view by whole-pixel crops (the original scenes, kept bit for bit);
    ``camera`` instead warps the background per frame (`CameraMotion`) and fills ``background``/``poses``;
    its objects have the background's full contrast (the ``pan`` scenes' objects have half of it) and move by
    sub-pixel steps (their texture shifts inside the whole-pixel box the mask marks), so an object slower than
    1 px/frame moves in every frame. With ``camera``, ``flat_background`` and ``flat_objects`` paint the
    background and the objects each one uniform colour instead of a texture (a studio backdrop, a sky, a screen
    recording, an animation: regions where a codec's vector is arbitrary, since any vector predicts them).
    From ``cut_at`` on the background is another texture, and frame ``cut_at`` counts as moving everywhere.
    """
    if camera is not None and any(pan):
        raise OneVisionInputError("give either pan (whole-pixel crops) or camera (a CameraMotion), not both.")
    if camera is None and (flat_background or flat_objects):
        raise OneVisionInputError("flat_background and flat_objects need a camera (a CameraMotion).")
    rng = np.random.default_rng(seed)
    if camera is not None:
        return _render_camera_scene(rng, num_frames, height, width, num_objects, object_size, speed, cut_at,
                                    camera, flat_background, flat_objects)
    margin_y = int(abs(pan[0]) * num_frames) + 2
    margin_x = int(abs(pan[1]) * num_frames) + 2
    backgrounds = [_texture(rng, height + margin_y, width + margin_x) for _ in range(2 if cut_at else 1)]
    sprites, corners, _ = _object_tracks(rng, num_frames, height, width, num_objects, object_size, speed, True)
    frames, moving = [], []
    for index in range(num_frames):
        background = backgrounds[1 if cut_at is not None and index >= cut_at else 0]
        oy = int(round(margin_y / 2 + pan[0] * (index - num_frames / 2)))
        ox = int(round(margin_x / 2 + pan[1] * (index - num_frames / 2)))
        frame = background[oy:oy + height, ox:ox + width].copy()
        moving.append(_composite(frame, sprites, corners[index], cut_at is not None and index == cut_at))
        frames.append(frame)
    return SyntheticScene(frames, moving)


def _render_camera_scene(rng: np.random.Generator, num_frames: int, height: int, width: int, num_objects: int,
                         object_size: int, speed: float, cut_at: int | None, camera: CameraMotion,
                         flat_background: bool, flat_objects: bool) -> SyntheticScene:
    """`render_scene` with a `CameraMotion`: each frame samples the background through its affine pose."""
    poses = camera.poses(num_frames, height, width, rng)
    corners = np.array([[0, 0, 1], [0, width - 1, 1], [height - 1, 0, 1], [height - 1, width - 1, 1]], float)
    seen = np.einsum("tij,cj->tci", poses, corners).reshape(-1, 2)  # background points of the frame corners
    low = np.floor(seen.min(axis=0)) - 2
    size = (np.ceil(seen.max(axis=0)) - low + 3).astype(int)
    poses[:, :, 2] -= low  # whole-pixel shift: background coordinates start at 0
    backgrounds = [_texture(rng, int(size[0]), int(size[1])) for _ in range(2 if cut_at is not None else 1)]
    sprites, tracks, positions = _object_tracks(rng, num_frames, height, width, num_objects, object_size, speed,
                                                False)
    if flat_background:  # the texture's own mean colour, uniform
        backgrounds = [np.broadcast_to(background.mean(axis=(0, 1)).astype(np.uint8), background.shape).copy()
                       for background in backgrounds]
    if flat_objects:  # each a uniform colour well away from the background's grey
        sprites = [np.broadcast_to(np.array(FLAT_OBJECT_COLOURS[index % len(FLAT_OBJECT_COLOURS)], np.uint8),
                                   sprite.shape).copy() for index, sprite in enumerate(sprites)]
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1).astype(np.float64)
    frames, moving = [], []
    for index in range(num_frames):
        background = backgrounds[1 if cut_at is not None and index >= cut_at else 0]
        frame = sample_bilinear(background, grid @ poses[index, :, :2].T + poses[index, :, 2])
        moved = [_shifted(sprite, offset) for sprite, offset in zip(sprites, positions[index] - tracks[index])]
        moving.append(_composite(frame, moved, tracks[index], cut_at is not None and index == cut_at))
        frames.append(frame)
    return SyntheticScene(frames, moving, backgrounds[0], poses)


def write_video(path, frames: list[np.ndarray], codec: str = "libx264", rate: int = 30, pix_fmt: str = "yuv420p",
                options: dict[str, str] | None = None, rotation: int = 0, pts: list[int] | None = None,
                container_format: str | None = None) -> None:
    """Encode (H, W, 3) uint8 RGB frames; ``pts`` (in 1/rate units) makes the frame timing variable."""
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = dict(options or {})
        if rotation:
            stream.set_display_rotation(rotation)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts is not None:
                frame.pts = pts[index]
                frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_patches(scene: SyntheticScene, frame_indices: np.ndarray, geometry, coverage: float = 0.5) -> np.ndarray:
    """(T, grid_h, grid_w) bool: patches of the sampled frames at least ``coverage`` covered by what moves."""
    from .processors.geometry import apply_geometry

    p = geometry.patch_size
    grid_h, grid_w = geometry.grid_size
    truth = []
    for index in frame_indices:
        canvas = apply_geometry(scene.moving[int(index)].astype(np.float32), geometry, resample="bilinear")
        truth.append(canvas.reshape(grid_h, p, grid_w, p).mean(axis=(1, 3)) >= coverage)
    return np.stack(truth)


def moving_recall(chosen: np.ndarray, truth: np.ndarray, skip_first: bool = True) -> float:
    """Fraction of the truly moving patches (after the first frame, when ``skip_first``) that were chosen."""
    start = 1 if skip_first else 0
    total = truth[start:].sum()
    return float((chosen[start:] & truth[start:]).sum() / total) if total else 1.0
