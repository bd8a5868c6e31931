"""``onevision-hf select``: the .npz it writes and the --viz picture."""

import numpy as np
import pytest
from PIL import Image

from onevision_hf import OneVisionVideoProcessor, cli


@pytest.fixture
def main(monkeypatch):
    """`cli.main` with only the select command registered, so this file tests it alone."""
    assert "select" in cli.COMMANDS
    monkeypatch.setattr(cli, "COMMANDS", ("select",))
    return cli.main


def test_select_writes_positions_frames_method_and_picture(main, tmp_path, video_files):
    output, picture = tmp_path / "sel.npz", tmp_path / "sel.png"
    main(["select", str(video_files["hevc.mp4"]), "--num-frames", "8", "--budget", "0.25", "--output", str(output),
          "--viz", str(picture)])
    with np.load(output, allow_pickle=False) as saved:
        assert saved["positions"].dtype == np.int32 and saved["positions"].shape[1] == 3
        assert saved["frame_indices"].dtype == np.int64 and saved["frame_indices"].shape == (8,)
        assert str(saved["method"]) == "pixel-block-matching"
        expected = OneVisionVideoProcessor(num_frames=8, budget=0.25).select(video_files["hevc.mp4"])
        np.testing.assert_array_equal(saved["positions"], expected.positions)
        np.testing.assert_array_equal(saved["grid_size"], expected.grid_size)
    image = Image.open(picture)
    assert image.format == "PNG" and image.width >= 8 * 32


def test_select_options_override_the_preset(main, tmp_path, video_files):
    output = tmp_path / "sel.npz"
    main(["select", str(video_files["h264.mp4"]), "--preset", "reference", "--num-frames", "4", "--budget", "3000",
          "--no-keep-first-frame", "--resize", "square-pad:144", "--output", str(output)])
    with np.load(output, allow_pickle=False) as saved:
        assert tuple(saved["grid_size"]) == (4, 9, 9)  # 16-px patches of the reference preset on a 144 canvas
        assert len(saved["positions"]) == 4 * 7 * 9  # every content patch (rows 1-7 of 9; 3000 exceeds them)
        assert str(saved["method"]) == "codec-mv"


@pytest.mark.parametrize("option", ["--output", "--viz"])
def test_output_into_a_missing_folder_fails_before_the_selection_in_one_line(main, tmp_path, capsys, option):
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_bytes(b"not a video")  # were the selection run first, its error would come instead
    paths = {"--output": tmp_path / "sel.npz", "--viz": tmp_path / "sel.png"}
    paths[option] = tmp_path / "missing" / paths[option].name
    argv = ["select", str(not_a_video), "--output", str(paths["--output"]), "--viz", str(paths["--viz"])]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error == (f"onevision-hf select: error: {option} {paths[option]}: the folder {tmp_path / 'missing'} "
                     "does not exist; create it first.\n")


def test_a_url_is_refused_as_a_url(main, tmp_path, capsys):
    assert main(["select", "https://example.com/clip.mp4", "--output", str(tmp_path / "sel.npz")]) == 2
    assert capsys.readouterr().err == ("onevision-hf select: error: https://example.com/clip.mp4: is a URL; only local "
                                       "video files are read (no network access): download it first.\n")
