"""The attentive probe on tiny generated videos with the bundled tiny encoder."""

import json

import numpy as np
import pytest
import torch

from onevision_hf.cli import main
from onevision_hf.errors import OneVisionInputError
from onevision_hf.evaluation.probe import AttentiveProbe, ProbeConfig, read_video_list
from onevision_hf.synthetic_video import write_video

from paths import TINY_ENCODER

SIDE, FRAMES = 56, 8  # 4 x 4 patches of 14 pixels per frame
COLORS = {"red": (220, 40, 40), "blue": (40, 80, 220)}


def moving_square(color, start: int, seed: int) -> list[np.ndarray]:
    """A coloured square sliding right over grey noise."""
    rng = np.random.default_rng(seed)
    background = rng.integers(90, 140, size=(SIDE, SIDE, 3), dtype=np.uint8)
    frames = []
    for index in range(FRAMES):
        frame = background.copy()
        x = start + 3 * index
        frame[18:36, x:x + 18] = COLORS[color]
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def video_lists(tmp_path_factory):
    """train.csv (8 videos) and val.csv (4 videos): red or blue squares, labelled by colour."""
    root = tmp_path_factory.mktemp("probe-videos")
    for split, count in (("train", 8), ("val", 4)):
        rows = ["path,label"]
        for index in range(count):
            color = ("red", "blue")[index % 2]
            name = f"{split}_{index}.mp4"
            write_video(root / name, moving_square(color, start=2 + index, seed=index + 100 * (split == "val")))
            rows.append(f"{name},{color}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root / "train.csv", root / "val.csv"


@pytest.mark.parametrize("input_mode", ["codec", "frames"])
def test_probe_learns_colour_at_the_same_token_count_for_both_inputs(video_lists, tmp_path, input_mode, capsys):
    train, val = video_lists
    main(["probe", "--model", str(TINY_ENCODER), "--train", str(train), "--val", str(val), "--input", input_mode,
          "--budget", "32", "--num-frames", "8", "--epochs", "15", "--batch-size", "4", "--lr", "3e-3",
          "--output", str(tmp_path)])
    result = json.loads((tmp_path / "probe_results.json").read_text())
    assert result["tokens_per_video"] == 32  # codec: 32 chosen of 8 x 16; frames: 2 whole frames of 16
    assert result["classes"] == ["blue", "red"]
    assert len(result["accuracy_per_epoch"]) == 15
    assert result["best_accuracy"] == max(result["accuracy_per_epoch"])
    assert result["final_accuracy"] == result["accuracy_per_epoch"][-1]
    assert result["best_accuracy"] == 1.0  # colour is the easiest thing a probe can read
    assert result["loss_per_epoch"][-1] < result["loss_per_epoch"][0]
    assert (tmp_path / "probe.safetensors").is_file()
    assert "best accuracy 100.0 %" in capsys.readouterr().out


def test_probe_pools_only_real_tokens():
    probe = AttentiveProbe(64, 3, ProbeConfig(num_heads=2)).eval()
    tokens = torch.randn(1, 5, 64)
    padded = torch.cat([tokens, torch.randn(1, 3, 64) * 100], dim=1)
    mask = torch.tensor([[False] * 5 + [True] * 3])
    torch.testing.assert_close(probe(padded, mask), probe(tokens, torch.zeros(1, 5, dtype=torch.bool)))


def test_video_lists_are_checked_where_they_enter(tmp_path):
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("file,class\na.mp4,x\n")
    with pytest.raises(OneVisionInputError, match="header must name the columns 'path' and 'label'"):
        read_video_list(bad_header)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\nnope.mp4,x\n")
    with pytest.raises(OneVisionInputError, match="not found.*nope.mp4"):
        read_video_list(missing)
    with pytest.raises(OneVisionInputError, match="input must be one of"):
        ProbeConfig(input_mode="pixels")
