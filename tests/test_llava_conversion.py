"""convert-llava: a tiny checkpoint in the released LLaVA-OneVision-Encoder layout converts to the same logits."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer, models
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedTokenizerFast, Qwen3ForCausalLM

from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel, OneVisionInputError, OneVisionLlavaConfig
from onevision_hf.cli import main
from onevision_hf.conversion import convert_llava_checkpoint
from onevision_hf.conversion.convert_llava import add_placeholder_tokens, infer_vision_config, pad_embeddings

from llava_helpers import TEXT_CONFIGS, TINY_LLM, TOKENIZER, random_image
from paths import TINY_ENCODER

RELEASED_IMAGE_INDEX = -200  # the released code's out-of-vocabulary image marker


def released_parts(projector_type, encoder_config, seed=0):
    """The modules a released checkpoint holds: encoder, projector weights, Qwen3 LM."""
    torch.manual_seed(seed)
    encoder = OneVisionEncoderModel(encoder_config).eval()
    llm = Qwen3ForCausalLM(TEXT_CONFIGS["qwen3"]()).eval()
    d_vision, d_text = encoder_config.hidden_size, llm.config.hidden_size
    if projector_type == "mlp2x_gelu":
        shapes = {"0.weight": (d_text, d_vision), "0.bias": (d_text,),
                  "2.weight": (d_text, d_text), "2.bias": (d_text,)}
    else:
        merged = 4 * d_vision
        shapes = {"ln_q.weight": (d_vision,), "ln_q.bias": (d_vision,), "mlp.0.weight": (merged, merged),
                  "mlp.0.bias": (merged,), "mlp.2.weight": (d_text, merged), "mlp.2.bias": (d_text,)}
    projector = {name: torch.randn(shape) * 0.1 for name, shape in shapes.items()}
    return encoder, projector, llm


def write_released_checkpoint(directory, projector_type, encoder, projector, llm):
    state = {f"model.vision_tower.vision_tower.{k}": v for k, v in encoder.state_dict().items()}
    state |= {f"model.mm_projector.{k}": v for k, v in projector.items()}
    state |= {k: v.clone() for k, v in llm.state_dict().items()}  # model.* and lm_head.*
    save_file(state, directory / "model.safetensors")
    config = llm.config.to_dict() | {
        "model_type": "llava_qwen3", "architectures": ["LlavaQwen3ForCausalLM"],
        "mm_vision_tower": "lmms-lab-encoder/onevision-encoder-large", "mm_projector_type": projector_type,
        "mm_hidden_size": encoder.config.hidden_size, "mm_vision_select_layer": -2, "image_aspect_ratio": "pad",
        "mm_patch_merge_type": "flat", "tokenizer_model_max_length": 4096,
    }
    (directory / "config.json").write_text(json.dumps(config))
    TOKENIZER.save_pretrained(directory)


def released_forward(encoder, projector, llm, projector_type, prompt_ids, image, grid):
    """The released semantics: vision tower -> hidden_states[-2] -> mm_projector -> spliced at -200 -> Qwen3."""
    with torch.no_grad():
        pixels = image.pixel_values.view(grid, grid, 3, 14, 14).permute(2, 0, 3, 1, 4)  # (C, h, p, w, p)
        pixels = pixels.reshape(1, 3, 14 * grid, 14 * grid)
        features = encoder(pixels, output_hidden_states=True).hidden_states[-2][0]  # (L, D), dense (h, w) order
        if projector_type == "mlp2x_gelu":
            hidden = F.gelu(F.linear(features, projector["0.weight"], projector["0.bias"]))
            features = F.linear(hidden, projector["2.weight"], projector["2.bias"])
        else:  # released SpatialMergeProjector on a square grid
            x = F.layer_norm(features, features.shape[-1:], projector["ln_q.weight"], projector["ln_q.bias"], 1e-6)
            x = x.view(grid // 2, 2, grid // 2, 2, -1).permute(0, 2, 1, 3, 4).reshape((grid // 2) ** 2, -1)
            x = F.gelu(F.linear(x, projector["mlp.0.weight"], projector["mlp.0.bias"]))
            features = F.linear(x, projector["mlp.2.weight"], projector["mlp.2.bias"])
        cut = prompt_ids.index(RELEASED_IMAGE_INDEX)
        embed = llm.get_input_embeddings()
        embeds = torch.cat([embed(torch.tensor(prompt_ids[:cut])), features, embed(torch.tensor(prompt_ids[cut + 1:]))])
        return llm(inputs_embeds=embeds[None]).logits


@pytest.mark.parametrize(("projector_type", "give_vision_config"), [("mlp2x_gelu", False), ("spatial_merge", True)])
def test_converted_checkpoint_gives_the_released_logits(tmp_path, projector_type, give_vision_config):
    if give_vision_config:  # the bundled tiny encoder has head_dim 32, which weights alone cannot reveal
        encoder_config = OneVisionEncoderConfig.from_pretrained(TINY_ENCODER)
    else:  # head_dim 64, as in every published size: the config is inferred from the weights
        encoder_config = OneVisionEncoderConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                                                num_attention_heads=2)
    encoder, projector, llm = released_parts(projector_type, encoder_config)
    source, destination = tmp_path / "released", tmp_path / "converted"
    source.mkdir()
    write_released_checkpoint(source, projector_type, encoder, projector, llm)

    argv = ["convert-llava", str(source), str(destination)]
    assert main(argv + (["--vision-config", str(TINY_ENCODER)] if give_vision_config else [])) == 0

    model = AutoModelForImageTextToText.from_pretrained(destination).eval()
    processor = AutoProcessor.from_pretrained(destination)
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "use_head"):
        assert getattr(model.config.vision_config, key) == getattr(encoder_config, key), key
    grid = 4
    image = random_image(grid, grid, seed=3)
    tokens = grid * grid if projector_type == "mlp2x_gelu" else grid * grid // 4
    before, after = TOKENIZER.encode("Look:"), TOKENIZER.encode("What is shown?")
    expected = released_forward(encoder, projector, llm, projector_type, before + [RELEASED_IMAGE_INDEX] + after,
                                image, grid)
    ids = torch.tensor([before + [processor.image_token_id] * tokens + after])
    with torch.no_grad():
        logits = model(input_ids=ids, **image.to_kwargs()).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)


def test_vision_config_is_inferred_from_the_weights():
    config = OneVisionEncoderConfig(hidden_size=128, intermediate_size=320, num_hidden_layers=3, num_attention_heads=2,
                                    layer_norm_type="rms_norm", use_head=False, patch_size=16)
    inferred = infer_vision_config(OneVisionEncoderModel(config).state_dict())
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "layer_norm_type",
                "use_head", "patch_size"):
        assert getattr(inferred, key) == getattr(config, key), key


def test_missing_placeholder_tokens_are_added_and_the_embeddings_grow_to_hold_them():
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "?": 1}, unk_token="?")))
    assert add_placeholder_tokens(tokenizer) == (2, 3)
    assert tokenizer.encode("a<image><video>") == [0, 2, 3]
    config = OneVisionLlavaConfig(vision_config=OneVisionEncoderConfig.from_pretrained(TINY_ENCODER),
                                  text_config=TEXT_CONFIGS["qwen3"]())
    config.text_config.vocab_size = 2
    embedding = torch.randn(2, 64)
    weights = {"language_model.model.embed_tokens.weight": embedding}
    pad_embeddings(weights, config, len(tokenizer))
    assert config.text_config.vocab_size == 4
    torch.testing.assert_close(weights["language_model.model.embed_tokens.weight"][:2], embedding)
    torch.testing.assert_close(weights["language_model.model.embed_tokens.weight"][2], embedding.mean(0))


def test_checkpoint_with_unknown_weights_or_model_type_is_refused(tmp_path):
    encoder, projector, llm = released_parts("mlp2x_gelu", OneVisionEncoderConfig.from_pretrained(TINY_ENCODER))
    write_released_checkpoint(tmp_path, "mlp2x_gelu", encoder, projector, llm)
    extra = {"model.image_newline": torch.zeros(64)}
    save_file(extra, tmp_path / "extra.safetensors")
    with pytest.raises(OneVisionInputError, match="model.image_newline"):
        convert_llava_checkpoint(tmp_path, tmp_path / "out", vision_config_dir=TINY_ENCODER)
    (tmp_path / "extra.safetensors").unlink()
    config = json.loads((tmp_path / "config.json").read_text()) | {"model_type": "llava_mistral"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(OneVisionInputError, match="llava_mistral"):
        convert_llava_checkpoint(tmp_path, tmp_path / "out", vision_config_dir=TINY_ENCODER)


def test_directory_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_qwen3"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(OneVisionInputError, match="pickles are never loaded"):
        convert_llava_checkpoint(tmp_path, tmp_path / "out", tokenizer_dir=TINY_LLM)
