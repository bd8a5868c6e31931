"""The ``--viz`` picture of a selection: every sampled frame in a grid, kept patches bright, dropped ones dimmed."""

import math

import numpy as np
from PIL import Image, ImageDraw

from ..errors import OneVisionInputError
from .video_selection import VideoSelection

DIMMED = 0.3  # brightness of dropped patches
BANNER = 22  # pixels of the caption strip above the grid


def render_selection(selection: VideoSelection, tile_width: int = 96, columns: int = 8) -> Image.Image:
    """One RGB image: the placed frames left to right, top to bottom, each captioned with its frame index."""
    if selection.frames is None:
        raise OneVisionInputError("the selection holds no frames; select with keep_frames=True to draw it.")
    frames = selection.frames.astype(np.float32)  # (T, H, W, 3)
    num_frames, height, width, _ = frames.shape
    p = selection.geometry.patch_size
    kept = selection.patch_mask()  # (T, grid_h, grid_w)
    brightness = np.where(np.repeat(np.repeat(kept, p, 1), p, 2), 1.0, DIMMED)  # (T, H, W)
    shaded = (frames * brightness[..., None]).astype(np.uint8)

    columns = min(columns, num_frames)
    rows = math.ceil(num_frames / columns)
    tile_height = max(1, round(tile_width * height / width))
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height + BANNER), "black")
    draw = ImageDraw.Draw(sheet)
    for index, (frame, frame_index) in enumerate(zip(shaded, selection.frame_indices)):
        tile = Image.fromarray(frame).resize((tile_width, tile_height), Image.Resampling.BILINEAR)
        x, y = (index % columns) * tile_width, (index // columns) * tile_height + BANNER
        sheet.paste(tile, (x, y))
        draw.text((x + 3, y + 2), str(int(frame_index)), fill="yellow")
    t, grid_h, grid_w = selection.grid_size
    caption = (f"{len(selection.positions)} of {t * grid_h * grid_w} patches ({t} frames x {grid_h} x {grid_w}), "
               f"method {selection.method}; dimmed = dropped")
    draw.text((4, 5), caption, fill="white")
    return sheet


def save_selection_image(selection: VideoSelection, path, tile_width: int = 96, columns: int = 8) -> None:
    """Write the picture as a palette PNG (about 400 KB for 64 frames)."""
    image = render_selection(selection, tile_width, columns)
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, format="PNG", optimize=True)
