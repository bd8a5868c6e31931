"""The bundled default encoder: small, pickle-free, documented, and what the encoder commands load by default."""

import json

import torch
from transformers import AutoModel

import onevision_hf  # noqa: F401  (registers the Auto classes)
from onevision_hf.evaluation.probe_config import ProbeConfig
from onevision_hf.pipeline import load_encoder
from onevision_hf.processors.video_processing_onevision import OneVisionVideoProcessor
from onevision_hf.resources import DEFAULT_ENCODER, EXAMPLE_VIDEO, bundled
from onevision_hf.training.pretrain_config import PretrainConfig

from paths import ASSETS

DEFAULT_MODEL = ASSETS / "default-model"
CONFIG = ASSETS.parent / "configs" / "default-model.yaml"


def test_the_default_model_is_what_commands_load_without_model():
    assert bundled(DEFAULT_ENCODER) == DEFAULT_MODEL
    model = load_encoder()
    assert model.name_or_path == str(DEFAULT_MODEL)
    assert not model.training


def test_it_ships_small_as_safetensors_and_json_only():
    assert sorted(path.name for path in DEFAULT_MODEL.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (DEFAULT_MODEL / "model.safetensors").stat().st_size < 5 * 2**20
    assert json.loads((DEFAULT_MODEL / "config.json").read_text())["model_type"] == "onevision_encoder"
    assert type(AutoModel.from_pretrained(DEFAULT_MODEL)).__name__ == "OneVisionEncoderModel"


def test_its_training_config_describes_the_shipped_architecture():
    model_config = PretrainConfig.from_yaml(CONFIG).model_config
    shipped = json.loads((DEFAULT_MODEL / "config.json").read_text())
    assert {key: shipped[key] for key in model_config} == model_config


def test_the_model_card_says_how_it_was_trained_and_what_it_is_not():
    card = (DEFAULT_MODEL / "README.md").read_text()
    for command in ("onevision-hf make-synthetic-dataset", "onevision-hf pretrain configs/default-model.yaml",
                    "benchmarks/equal_budget.py"):
        assert command in card
    assert "not the published" in card


def test_it_fits_the_default_video_processor_and_probe():
    model = load_encoder()
    processor = OneVisionVideoProcessor()
    assert model.config.patch_size == processor.patch_size
    assert model.config.rope_temporal_size == processor.num_frames
    assert model.config.hidden_size % ProbeConfig().num_heads == 0


def test_it_encodes_the_bundled_video_deterministically():
    model = load_encoder()
    processor = OneVisionVideoProcessor(num_frames=16)
    inputs = processor(videos=str(bundled(EXAMPLE_VIDEO)))
    with torch.inference_mode():
        first, second = model(**inputs), model(**inputs)
    assert first.pooler_output.shape == (1, model.config.hidden_size)
    assert torch.isfinite(first.last_hidden_state).all()
    torch.testing.assert_close(first.pooler_output, second.pooler_output, rtol=0, atol=0)
