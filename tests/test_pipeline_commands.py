"""The README's main job (`demo`) and `encode`: files in, packed features out, on a fresh checkout; the command
line's help and its errors for missing model folders."""

import json
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from onevision_hf.cli import COMMANDS, main
from onevision_hf.errors import OneVisionInputError
from onevision_hf.pipeline import encode_files, load_encoder

from paths import MEDIA, TINY_ENCODER


def test_demo_selects_draws_and_encodes_the_bundled_video(tmp_path, capsys):
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "selection    codec-mv" in printed and "tokens" in printed and "embedding" in printed
    with Image.open(tmp_path / "selection.png") as picture:
        assert picture.width > 500 and picture.height > 500
    features = load_file(tmp_path / "features.safetensors")
    assert features["cu_seqlens"].tolist() == [0, features["last_hidden_state"].shape[0]]
    assert features["pooler_output"].shape[0] == 1 and torch.isfinite(features["pooler_output"]).all()


def test_encode_packs_images_and_videos_into_one_call(tmp_path, capsys):
    image = tmp_path / "frame.png"
    Image.new("RGB", (200, 120), "orange").save(image)
    video = MEDIA / "carphone-176x144-h264.mp4"
    output = tmp_path / "features.safetensors"
    assert main(["encode", str(video), str(image), "--num-frames", "8", "--output", str(output)]) == 0
    features = load_file(output)
    lengths = features["cu_seqlens"].diff().tolist()
    assert lengths[1] == 32 * 32  # the image: 448 x 448 crop of 14-px patches
    assert features["pooler_output"].shape[0] == 2
    model = load_encoder()
    with torch.no_grad():  # the video's rows, encoded alone, give the same pooled vector
        video_rows = slice(0, lengths[0])
        alone = encode_files(model, [video], num_frames=8, progress=False).features["pooler_output"]
    torch.testing.assert_close(alone[0], features["pooler_output"][0], atol=1e-5, rtol=0)
    assert features["patch_positions"][video_rows, 0].max() <= 63
    assert "| carphone-176x144-h264.mp4 | video |" in capsys.readouterr().out


def test_encode_names_missing_files(tmp_path):
    with pytest.raises(OneVisionInputError, match="no such file.*nothing.mp4"):
        encode_files(load_encoder(), [tmp_path / "nothing.mp4"])


def test_encoder_directory_without_config_is_refused(tmp_path):
    with pytest.raises(OneVisionInputError, match="not a model directory"):
        load_encoder(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, not a video\n"], ids=["empty", "text"])
def test_commands_report_unreadable_videos_in_one_line_with_exit_code_2(tmp_path, capsys, content):
    video = tmp_path / "clip.mp4"
    video.write_bytes(content)
    assert main(["select", str(video), "--output", str(tmp_path / "sel.npz")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("onevision-hf select: error: ") and "clip.mp4" in error and "Traceback" not in error


def test_demo_with_a_llava_folder_exits_2_naming_the_folder_and_the_expected_kind(tmp_path, capsys):
    llava = tmp_path / "tiny-llava"
    llava.mkdir()
    (llava / "config.json").write_text(json.dumps({"model_type": "onevision_llava"}))
    assert main(["demo", "--model", str(llava), "--output-dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"onevision-hf demo: error: {llava} is a OneVision-LLaVA folder; expected a OneVision encoder "
                     "folder (model_type 'onevision_encoder').")


def test_encoder_folder_with_a_missing_weight_is_refused_unless_training_opts_in(tmp_path):
    from safetensors.torch import save_file

    from onevision_hf import OneVisionEncoderModel
    from onevision_hf.pipeline import load_strict

    partial = tmp_path / "partial"
    shutil.copytree(TINY_ENCODER, partial)
    weights = load_file(partial / "model.safetensors")
    del weights["head.probe"]
    save_file(weights, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(OneVisionInputError, match=r"partial: its weights do not match a OneVision encoder folder: "
                                                  r"1 missing \(e\.g\. head\.probe\)"):
        load_encoder(partial)
    assert isinstance(load_strict(OneVisionEncoderModel, partial, allow_missing_weights=True), OneVisionEncoderModel)


HELP_WITHOUT_HEAVY_IMPORTS = """
import sys
import onevision_hf_cli
for argv in [["--help"]] + [[name.replace("_", "-"), "--help"] for name in sys.argv[1:]]:
    try:
        onevision_hf_cli.main(argv)
    except SystemExit as exit:
        assert exit.code == 0, argv
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "av", "datasets", "numpy"})
print("heavy:", heavy)
"""


def test_help_of_the_command_and_every_subcommand_imports_neither_torch_nor_transformers():
    printed = subprocess.run([sys.executable, "-c", HELP_WITHOUT_HEAVY_IMPORTS, *COMMANDS], capture_output=True,
                             text=True, check=True).stdout
    assert printed.strip().endswith("heavy: []"), printed[-2000:]
    assert printed.count("usage: onevision-hf") == len(COMMANDS) + 1
    [script] = [entry for entry in entry_points(group="console_scripts") if entry.name == "onevision-hf"]
    assert script.value == "onevision_hf_cli:main"


@pytest.mark.parametrize("command", [
    ["generate", "--prompt", "hi"],
    ["finetune", "--data", "conversations.jsonl", "--output-dir", "out"],
    ["eval", "--tasks", "chartqa_local", "--output", "out"],
])
@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_model_commands_report_a_missing_or_empty_model_folder_in_one_line(tmp_path, capsys, command, folder):
    model = tmp_path / folder
    if folder == "empty":
        model.mkdir()
    assert main([*command, "--model", str(model)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"onevision-hf {command[0]}: error: --model {model}")
    assert ("no such directory" if folder == "missing" else "not a saved model directory") in error


def test_generate_names_the_missing_base_model_of_an_adapter(tmp_path, capsys):
    (tmp_path / "adapter_config.json").write_text('{"base_model_name_or_path": "/nowhere/base"}')
    assert main(["generate", "--model", str(tmp_path), "--prompt", "hi"]) == 2
    assert "the base model of adapter" in capsys.readouterr().err
