"""Shared fixtures: tiny synthetic videos encoded once per session with PyAV (each well under a second)."""

import numpy as np
import pytest

from onevision_hf.synthetic_video import SyntheticScene, render_scene, write_video

SCENE_FRAMES, SCENE_HEIGHT, SCENE_WIDTH = 32, 112, 144

# name -> write_video keyword arguments; every file holds the same moving-square scene
VIDEO_ENCODINGS = {
    "h264.mp4": {"codec": "libx264", "options": {"bf": "2"}},
    "mpeg4.avi": {"codec": "mpeg4", "options": {"bf": "2", "qscale": "3"}},
    "hevc.mp4": {"codec": "libx265", "options": {"x265-params": "log-level=error"}},
    "vp9.webm": {"codec": "libvpx-vp9", "options": {"deadline": "realtime", "cpu-used": "8"}},
    "mjpeg.avi": {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
    "png.mov": {"codec": "png", "pix_fmt": "rgb24"},  # RGB-coded: no luma plane, swscale converts it
    "h264-10bit.mp4": {"codec": "libx264", "pix_fmt": "yuv420p10le"},
    "h264-vfr.mp4": {"codec": "libx264", "pts": np.cumsum([0] + [1 + i % 3 for i in range(SCENE_FRAMES - 1)]).tolist()},
}


@pytest.fixture(scope="session")
def moving_scene() -> SyntheticScene:
    return render_scene(SCENE_FRAMES, SCENE_HEIGHT, SCENE_WIDTH, num_objects=1, object_size=32, speed=3.0, seed=1)


@pytest.fixture(scope="session")
def video_files(tmp_path_factory, moving_scene) -> dict:
    """name -> path of the moving scene encoded as named (see VIDEO_ENCODINGS)."""
    directory = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, options in VIDEO_ENCODINGS.items():
        paths[name] = directory / name
        write_video(paths[name], moving_scene.frames, **options)
    return paths
