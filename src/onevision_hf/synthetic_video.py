"""Synthetic videos with known moving regions, encoded with PyAV: for tests, benchmarks and examples.

`render_scene` draws textured objects moving over a textured background (optionally panning, optionally with
a scene cut) and returns, per frame, the RGB pixels and the mask of what truly moves (objects, and the whole
frame right after a cut). `write_video` encodes frames with any PyAV encoder, pixel format, frame timing
and display rotation. `moving_patches` and `moving_recall` score a selection against the
ground truth on the patch grid.
"""

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


@dataclass
class SyntheticScene:
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    moving: list[np.ndarray]  # (H, W) bool each: pixels of moving objects or new content


def _texture(rng: np.random.Generator, height: int, width: int, cell: int = 6) -> np.ndarray:
    """(H, W, 3) uint8 blocky random texture, slightly smoothed: detail a codec and a matcher can lock on."""
    coarse = rng.integers(0, 256, size=(height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:height, :width]
    texture = (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1) + np.roll(texture, (1, 1), (0, 1))) / 4
    return texture.astype(np.uint8)


def render_scene(num_frames: int, height: int, width: int, num_objects: int = 1, object_size: int = 40,
                 speed: float = 3.0, pan: tuple[float, float] = (0.0, 0.0), cut_at: int | None = None,
                 seed: int = 0) -> SyntheticScene:
    """Objects bouncing at ``speed`` px/frame over a background panning by ``pan`` (dy, dx) px/frame."""
    rng = np.random.default_rng(seed)
    margin_y = int(abs(pan[0]) * num_frames) + 2
    margin_x = int(abs(pan[1]) * num_frames) + 2
    backgrounds = [_texture(rng, height + margin_y, width + margin_x) for _ in range(2 if cut_at else 1)]
    sprites = [_texture(rng, object_size, object_size, cell=4) // 2 + 96 for _ in range(num_objects)]
    position = rng.uniform([0, 0], [height - object_size, width - object_size], size=(num_objects, 2))
    angle = rng.uniform(0, 2 * np.pi, size=num_objects)
    velocity = speed * np.stack((np.sin(angle), np.cos(angle)), axis=1)
    frames, moving = [], []
    for index in range(num_frames):
        background = backgrounds[1 if cut_at is not None and index >= cut_at else 0]
        oy = int(round(margin_y / 2 + pan[0] * (index - num_frames / 2)))
        ox = int(round(margin_x / 2 + pan[1] * (index - num_frames / 2)))
        frame = background[oy:oy + height, ox:ox + width].copy()
        mask = np.zeros((height, width), dtype=bool)
        if cut_at is not None and index == cut_at:
            mask[:] = True
        for sprite, (y, x) in zip(sprites, position.round().astype(int)):
            frame[y:y + object_size, x:x + object_size] = sprite
            mask[y:y + object_size, x:x + object_size] = True
        frames.append(frame)
        moving.append(mask)
        position += velocity
        for axis, limit in ((0, height - object_size), (1, width - object_size)):
            bounced = (position[:, axis] < 0) | (position[:, axis] > limit)
            velocity[bounced, axis] *= -1
            position[:, axis] = np.clip(position[:, axis], 0, limit)
    return SyntheticScene(frames, moving)


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
