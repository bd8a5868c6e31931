"""Pretraining end to end: mixed packed batches, the config, a tiny run that learns, exact resume, the command."""

import argparse
import json

import numpy as np
import pytest
import torch
import yaml

from onevision_hf import OneVisionConfigError, OneVisionImageProcessor, OneVisionInputError
from onevision_hf.commands import pretrain as pretrain_command
from onevision_hf.training import PretrainBatches, PretrainConfig, Pretrainer, SyntheticDataConfig
from onevision_hf.training.synthetic_data import write_synthetic_dataset

NUM_CLASSES = 16
VIDEO_PROCESSOR = {"num_frames": 8, "max_pixels": 56 * 56, "budget": 0.25}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Generated images, H.264 videos and selections precomputed from videos, each with top-4 labels."""
    root = tmp_path_factory.mktemp("pretrain-data")
    write_synthetic_dataset(SyntheticDataConfig("images", 32, top_k=4, size=(56, 56)), NUM_CLASSES, root / "images")
    write_synthetic_dataset(SyntheticDataConfig("videos", 8, top_k=4, size=(56, 56), num_frames=12), NUM_CLASSES,
                            root / "videos")
    write_synthetic_dataset(SyntheticDataConfig("video-selections", 8, top_k=4, size=(56, 56), num_frames=12,
                                                seed=1), NUM_CLASSES, root / "selections", VIDEO_PROCESSOR)
    return root


def raw_config(data_dir, output_dir, **overrides) -> dict:
    head = {"num_classes": NUM_CLASSES, "num_label_slots": 2, "sample_rate": 0.5}
    config = {
        "output_dir": str(output_dir),
        "model_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "patch_size": 14},
        "max_steps": 6,
        "learning_rate": 2e-3,
        "warmup_steps": 1,
        "heads": [
            {**head, "name": "images", "dataset": str(data_dir / "images"), "batch_size": 4,
             "image_resize": "shorter-crop:56"},
            {**head, "name": "videos", "dataset": str(data_dir / "videos"), "batch_size": 2, "loss_weight": 0.5,
             "video_processor": VIDEO_PROCESSOR, "codec_fraction": 0.5, "uniform_frames": 2},
            {**head, "name": "selections", "dataset": str(data_dir / "selections"), "batch_size": 2,
             "loss_weight": 0.5},
        ],
    }
    return {**config, **overrides}


def test_mixed_batch_packs_images_codec_selections_and_uniform_frames(data_dir, tmp_path):
    config = PretrainConfig.from_dict(raw_config(data_dir, tmp_path))
    batches = PretrainBatches(config.heads, patch_size=14, num_micro_steps=4, seed=0)
    batch = batches[0]
    lengths = (batch["cu_seqlens"][1:] - batch["cu_seqlens"][:-1]).tolist()
    assert batch["head_sizes"] == [4, 2, 2] and len(lengths) == 8
    assert batch["pixel_values"].shape == (sum(lengths), 3 * 14 * 14)
    assert [labels.shape for labels in batch["labels"]] == [(4, 4), (2, 4), (2, 4)]
    assert lengths[:4] == [16] * 4  # a 56 x 56 image: 4 x 4 patches at t = 0
    positions = batch["patch_positions"].split(lengths)
    assert all(int(p[:, 0].max()) == 0 for p in positions[:4])
    assert all(int(p[:, 0].max()) > 0 for p in positions[4:])  # videos span the temporal grid

    # an image sample is exactly what the image processor makes of it
    first_image = batches.readers[0].dataset[int(batches._indices(0, 0)[1][0])]["image"]
    expected = OneVisionImageProcessor(resize_mode="shorter-crop:56")(first_image, return_tensors="pt")
    torch.testing.assert_close(batch["pixel_values"][:16], expected["pixel_values"])

    # codec selections (budget 25 % of 8 frames) and uniform frames (every patch of 2 frames) both occur
    video_reader = batches.readers[1]
    kinds = {len(video_reader.sample(0, np.random.default_rng(seed)).positions) for seed in range(12)}
    assert kinds == {32, 2 * 16}


def test_two_processes_read_the_global_batch_of_one(data_dir, tmp_path):
    raw = raw_config(data_dir, tmp_path)
    one = PretrainBatches(PretrainConfig.from_dict(raw).heads, 14, 3, seed=5)
    for head in raw["heads"]:
        head["batch_size"] //= 2
    halves = [PretrainBatches(PretrainConfig.from_dict(raw).heads, 14, 3, seed=5, rank=rank, world_size=2)
              for rank in range(2)]
    for head_index in range(3):
        whole = one._indices(head_index, 2)[1]
        assert np.array_equal(whole, np.concatenate([half._indices(head_index, 2)[1] for half in halves]))


def test_config_errors_name_the_key(data_dir, tmp_path):
    with pytest.raises(OneVisionConfigError, match=r"unknown key\(s\) \['learning_rte'\]"):
        PretrainConfig.from_dict({**raw_config(data_dir, tmp_path), "learning_rte": 1e-3})
    raw = raw_config(data_dir, tmp_path)
    raw["heads"][0]["sample_rate"] = 2.0
    with pytest.raises(OneVisionConfigError, match="head 'images': sample_rate must lie in"):
        PretrainConfig.from_dict(raw)
    with pytest.raises(OneVisionConfigError, match="warmup_steps"):
        PretrainConfig.from_dict(raw_config(data_dir, tmp_path, warmup_steps=99))


def test_documented_example_config_loads():
    config = PretrainConfig.from_yaml("configs/pretrain-tiny.yaml")
    assert [head.name for head in config.heads] == ["images", "videos", "selections"]
    assert all(head.synthetic is not None for head in config.heads)


def run_pretrain_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    pretrain_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_tiny_pretraining_run_lowers_the_loss(data_dir, tmp_path):
    config = PretrainConfig.from_dict(raw_config(data_dir, tmp_path, max_steps=20, warmup_steps=2))
    history = Pretrainer(config).train()
    losses = np.array([record["loss"] for record in history])
    assert len(losses) == 20 and np.isfinite(losses).all()
    assert losses[-5:].mean() < 0.85 * losses[:5].mean(), losses.round(2)
    assert {"images", "videos", "selections"} == set(history[-1]["head_losses"])
    assert history[0]["grad_norm"] > 0 and history[0]["class_bank_grad_norm"] > 0


def test_interrupted_and_resumed_run_logs_the_same_losses(data_dir, tmp_path):
    settings = dict(max_steps=4, gradient_accumulation_steps=2, max_grad_norm=0.5, class_bank_max_grad_norm=0.5)
    uninterrupted = Pretrainer(PretrainConfig.from_dict(raw_config(data_dir, tmp_path / "a", **settings)))
    expected = [record["loss"] for record in uninterrupted.train()]

    config_path = tmp_path / "b.yaml"
    config_path.write_text(yaml.safe_dump(raw_config(data_dir, tmp_path / "b", **settings)))
    assert run_pretrain_command(["pretrain", str(config_path), "--until-step", "2"]) == 0  # interrupted
    checkpoint = tmp_path / "b" / "checkpoint-000002"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["micro_step"] == 4
    assert not list(checkpoint.rglob("*.bin")) and not list(checkpoint.rglob("*.pt"))  # no pickles

    resumed = Pretrainer(PretrainConfig.from_yaml(config_path), resume_from="latest")
    assert resumed.step == 2
    history = resumed.train()
    assert [record["loss"] for record in history] == expected
    assert [record["lr"] for record in history] == [record["lr"] for record in uninterrupted.history]
    for name, parameter in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], parameter, rtol=0, atol=0)
    torch.testing.assert_close(resumed.losses["images"].class_centers, uninterrupted.losses["images"].class_centers,
                               rtol=0, atol=0)


def test_precomputed_rows_read_back_exactly_even_when_patches_end_in_black(tmp_path):
    import datasets

    from onevision_hf.data.precompute import output_features
    from onevision_hf.training import SampleReader

    patches = np.zeros((3, 3, 14, 14), np.uint8)
    patches[0, 0, 0, 0] = 255  # only the first byte is non-zero: the binary column ends in NULs
    row = {"path": "black.mp4", "labels": [1, 2], "positions": np.array([[0, 0, 0], [1, 0, 0], [2, 0, 1]], np.int32),
           "patches": patches.tobytes(), "patch_size": 14, "frame_indices": [0, 4, 8], "temporal_positions": [0, 1, 2],
           "grid_size": [3, 1, 2], "method": "codec-mv", "fallback_reason": None, "selection": "{}", "error": None}
    failed = {**row, "positions": np.zeros((0, 3), np.int32), "patches": b"", "method": None, "error": "corrupt"}
    features = output_features(datasets.Features({"path": datasets.Value("string"),
                                                  "labels": datasets.Sequence(datasets.Value("int64"))}))
    datasets.Dataset.from_list([failed, row], features=features).save_to_disk(str(tmp_path / "stored"))

    reader = SampleReader(str(tmp_path / "stored"), patch_size=14)
    assert len(reader) == 1  # the failed video is skipped
    sample = reader.sample(0, np.random.default_rng(0))
    np.testing.assert_array_equal(sample.patches, patches)
    np.testing.assert_array_equal(sample.positions, row["positions"])
    assert reader.labels(0).tolist() == [1, 2]


def test_checkpoint_appears_whole_with_its_marker_written_last(data_dir, tmp_path):
    trainer = Pretrainer(PretrainConfig.from_dict(raw_config(data_dir, tmp_path, max_steps=1)))
    trainer.train()
    checkpoint = tmp_path / "checkpoint-000001"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    listed = set(state["files"])
    assert listed == {path.relative_to(checkpoint).as_posix() for path in checkpoint.rglob("*")
                      if path.is_file() and path.name != "trainer_state.json"}
    assert "model/model.safetensors" in listed
    assert not list(tmp_path.glob(".*"))  # no staging folder or temporary file left behind


def test_corrupt_latest_checkpoint_is_named_and_latest_falls_back_saying_so(data_dir, tmp_path, caplog):
    config = PretrainConfig.from_dict(raw_config(data_dir, tmp_path, max_steps=2, save_every=1))
    Pretrainer(config).train()
    bank = tmp_path / "checkpoint-000002" / "class_centers-rank000.safetensors"
    bank.write_bytes(bank.read_bytes()[:100])  # truncated, as by a full disk or a killed copy
    with pytest.raises(OneVisionInputError, match=r"class_centers-rank000\.safetensors is truncated"):
        Pretrainer(config, resume_from=tmp_path / "checkpoint-000002")
    with caplog.at_level("WARNING", logger="onevision_hf.training.pretrainer"):
        resumed = Pretrainer(config, resume_from="latest")
    assert resumed.step == 1
    assert "skipping corrupt checkpoint checkpoint-000002" in caplog.text and "resuming from checkpoint-000001" \
        in caplog.text


def test_resumed_run_logs_each_step_once(data_dir, tmp_path):
    config = PretrainConfig.from_dict(raw_config(data_dir, tmp_path, max_steps=3, save_every=1))
    trainer = Pretrainer(config)
    trainer.train(until_step=2)  # logged steps 1, 2; checkpoints 1, 2
    import shutil
    shutil.rmtree(tmp_path / "checkpoint-000002")  # the run died after logging step 2, before its checkpoint
    Pretrainer(config, resume_from="latest").train()
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_fresh_start_in_a_folder_holding_a_run_is_refused(data_dir, tmp_path, capsys):
    """The README's torchrun line after its one-process line: refused, never a second run mixed into the first."""
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(raw_config(data_dir, tmp_path / "run", max_steps=1)))
    assert run_pretrain_command(["pretrain", str(config_path)]) == 0
    log = (tmp_path / "run" / "log.jsonl").read_text()
    with pytest.raises(OneVisionConfigError, match=r"already holds a pretraining run \(1 checkpoint\(s\), newest "
                                                   r"checkpoint-000001\); continue it with --resume latest"):
        run_pretrain_command(["pretrain", str(config_path)])
    assert (tmp_path / "run" / "log.jsonl").read_text() == log
    assert run_pretrain_command(["pretrain", str(config_path), "--output-dir", str(tmp_path / "other")]) == 0
    assert (tmp_path / "other" / "checkpoint-000001" / "trainer_state.json").is_file()
