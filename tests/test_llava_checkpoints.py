"""State-dict names are a public contract: the base-model / head split (`OneVisionLlavaModel` + ``lm_head``) loads
checkpoints written before it, gives their logits, and writes the same layout back."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

from onevision_hf import OneVisionLlavaForConditionalGeneration, OneVisionLlavaModel
from onevision_hf.commands.make_tiny_llava import build_tiny_llava

from llava_helpers import TINY_LLM, TOKENIZER
from paths import ASSETS, TINY_ENCODER

LEGACY = ASSETS / "legacy-llava"  # written by the package before the split; see its make_legacy_llava.py


@pytest.fixture(scope="module")
def golden():
    return load_file(LEGACY / "golden_logits.safetensors")


def inputs_of(golden) -> dict:
    return {name: tensor for name, tensor in golden.items() if name != "logits"}


def serialized_names(directory) -> list[str]:
    with safe_open(directory / "model.safetensors", "pt") as weights:
        return sorted(weights.keys())


def test_a_checkpoint_of_the_pre_split_layout_loads_every_weight_and_gives_its_logits(golden):
    model, info = OneVisionLlavaForConditionalGeneration.from_pretrained(LEGACY, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    with torch.no_grad():
        logits = model.eval()(**inputs_of(golden)).logits
    torch.testing.assert_close(logits, golden["logits"], atol=1e-5, rtol=0)


def test_save_pretrained_writes_the_layout_checkpoints_always_had(tmp_path, golden):
    model = AutoModelForImageTextToText.from_pretrained(LEGACY)
    model.save_pretrained(tmp_path)
    assert serialized_names(tmp_path) == serialized_names(LEGACY)
    assert {name.split(".")[0] for name in serialized_names(tmp_path)} == {
        "vision_tower", "multi_modal_projector", "language_model"
    }
    with torch.no_grad():
        logits = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()(**inputs_of(golden)).logits
    torch.testing.assert_close(logits, golden["logits"], atol=1e-5, rtol=0)


def test_the_base_model_loads_from_the_same_checkpoint_and_the_head_on_top_gives_the_logits(golden):
    base = AutoModel.from_pretrained(LEGACY).eval()
    head = OneVisionLlavaForConditionalGeneration.from_pretrained(LEGACY).eval()
    assert isinstance(base, OneVisionLlavaModel) and head.base_model is head.model
    with torch.no_grad():
        hidden = base(**inputs_of(golden)).last_hidden_state
    torch.testing.assert_close(head.lm_head(hidden), golden["logits"], atol=1e-5, rtol=0)


def test_tied_embeddings_follow_the_text_config_and_survive_a_round_trip(tmp_path):
    model = build_tiny_llava(TINY_ENCODER, AutoConfig.from_pretrained(TINY_LLM), TOKENIZER)  # ties its embeddings
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    model.save_pretrained(tmp_path)
    assert "language_model.lm_head.weight" not in serialized_names(tmp_path)
    reloaded = OneVisionLlavaForConditionalGeneration.from_pretrained(tmp_path)
    assert reloaded.lm_head.weight.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()
    torch.testing.assert_close(reloaded.lm_head.weight, model.lm_head.weight)
