"""Convert a released LLaVA-OneVision-Encoder checkpoint into this package's `OneVisionLlavaForConditionalGeneration`.

The released layout (the ``llava_qwen3`` fork of LLaVA-NeXT) is one safetensors state dict plus a Qwen3
``config.json`` with ``model_type: "llava_qwen3"`` and the multimodal keys ``mm_vision_tower``,
``mm_projector_type``, ``mm_hidden_size``, ``mm_vision_select_layer``, but no vision config. Names map as:

==========================================  =================================================
released                                    converted
==========================================  =================================================
``model.vision_tower.vision_tower.*``       ``vision_tower.*`` (the encoder's own names)
``model.mm_projector.{0,2}.*``              ``multi_modal_projector.mlp.linear_{1,2}.*`` (mlp2x_gelu)
``model.mm_projector.ln_q / mlp.{0,2}.*``   ``multi_modal_projector.ln_q / mlp.linear_{1,2}.*`` (spatial_merge)
``model.*`` (embed_tokens, layers, norm)    ``language_model.model.*``
``lm_head.*``                               ``language_model.lm_head.*``
==========================================  =================================================

The converted names are the package's serialized layout, the one ``save_pretrained`` writes (transformers'
weight-conversion mapping of `modeling_onevision_llava` maps them onto ``model.*`` / ``lm_head`` on load).
The vision config is inferred from the weights (hidden size from ``patch_embedding``, layers by counting,
intermediate size from ``fc1``, heads = hidden / 64 as in every published size, ``use_head`` from ``head.*``,
``layer_norm_type`` from the presence of layer-norm biases) unless a config directory is given. The released
model marked images with the out-of-vocabulary id -200; the converted one uses ``<image>`` / ``<video>`` tokens,
added to the tokenizer when missing. Weights are renamed and written without instantiating the model.
"""

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import OneVisionInputError
from ..modeling.configuration_onevision_encoder import OneVisionEncoderConfig
from ..modeling.configuration_onevision_llava import OneVisionLlavaConfig
from ..modeling.modeling_onevision_llava import OneVisionLlavaForConditionalGeneration
from ..processors.processing_onevision_llava import OneVisionLlavaProcessor

RELEASED_TEXT_MODEL_TYPES = {"llava_qwen3": "qwen3", "llava_qwen": "qwen2", "llava_llama": "llama"}
RELEASED_PROJECTOR_NAMES = {
    "mlp2x_gelu": {"0": "mlp.linear_1", "2": "mlp.linear_2"},
    "spatial_merge": {"ln_q": "ln_q", "mlp.0": "mlp.linear_1", "mlp.2": "mlp.linear_2"},
}
VISION_PREFIX = "model.vision_tower.vision_tower."
PROJECTOR_PREFIX = "model.mm_projector."
# LLaVA training switches stored beside the LM's keys in the released config.json (besides every "mm_*" key)
LLAVA_TRAINING_KEYS = {
    "add_faster_video", "faster_token_stride", "force_sample", "image_aspect_ratio", "image_crop_resolution",
    "image_grid_pinpoints", "image_split_resolution", "pos_skipping_range", "tokenizer_model_max_length",
    "tokenizer_padding_side", "unfreeze_mm_vision_tower", "use_mm_proj", "vision_tower_pretrained",
}
RELEASED_HEAD_DIM = 64


def load_released_state_dict(source: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors files in ``source`` (pickled ``*.bin`` weights are never loaded)."""
    files = sorted(source.glob("*.safetensors"))
    if not files:
        pickled = sorted(path.name for path in source.glob("*.bin"))
        hint = f" It has {pickled}: convert them to safetensors first; pickles are never loaded." if pickled else ""
        raise OneVisionInputError(f"{source} holds no *.safetensors weights.{hint}")
    state_dict = {}
    for file in files:
        with safe_open(file, framework="pt") as shard:
            state_dict.update({name: shard.get_tensor(name) for name in shard.keys()})
    return state_dict


def infer_vision_config(vision_state_dict: dict[str, torch.Tensor]) -> OneVisionEncoderConfig:
    """The encoder config that the encoder weights (names without the released prefix) imply."""
    try:
        patch_weight = vision_state_dict["embeddings.patch_embedding.weight"]  # (D, C, p, p)
        intermediate_size = vision_state_dict["encoder.layers.0.mlp.fc1.weight"].shape[0]
    except KeyError as missing:
        raise OneVisionInputError(f"the vision tower weights lack {missing.args[0]}; is this a released "
                                  "LLaVA-OneVision-Encoder checkpoint?") from None
    hidden_size, num_channels, patch_size, _ = patch_weight.shape
    if hidden_size % RELEASED_HEAD_DIM:
        raise OneVisionInputError(
            f"the vision hidden size {hidden_size} is not a multiple of the published head_dim {RELEASED_HEAD_DIM}; "
            "give the encoder's config with --vision-config."
        )
    layer_names = (re.match(r"encoder\.layers\.(\d+)\.", name) for name in vision_state_dict)
    layers = {int(match.group(1)) for match in layer_names if match}
    return OneVisionEncoderConfig(
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=len(layers),
        num_attention_heads=hidden_size // RELEASED_HEAD_DIM,
        num_channels=num_channels,
        patch_size=patch_size,
        use_head=any(name.startswith("head.") for name in vision_state_dict),
        layer_norm_type="layer_norm" if "layernorm_pre.bias" in vision_state_dict else "rms_norm",
    )


def text_config_from_released(released: dict):
    """The LM config inside the released config.json (its LLaVA keys dropped, its model type un-prefixed)."""
    from transformers import AutoConfig

    model_type = released.get("model_type")
    if model_type not in RELEASED_TEXT_MODEL_TYPES:
        raise OneVisionInputError(
            f"config.json has model_type {model_type!r}; expected one of {sorted(RELEASED_TEXT_MODEL_TYPES)} "
            "(a released LLaVA-OneVision-Encoder checkpoint)."
        )
    text_keys = {
        key: value for key, value in released.items()
        if not key.startswith("mm_") and key not in LLAVA_TRAINING_KEYS
        and key not in ("model_type", "architectures", "_name_or_path", "transformers_version")
    }
    return AutoConfig.for_model(RELEASED_TEXT_MODEL_TYPES[model_type], **text_keys)


def rename_released_weights(state_dict: dict[str, torch.Tensor], projector_type: str) -> dict[str, torch.Tensor]:
    """Released names -> this package's names; raises on any weight it does not know where to put."""
    projector_names = RELEASED_PROJECTOR_NAMES[projector_type]
    renamed, unknown = {}, []
    for name, tensor in state_dict.items():
        if name.startswith(VISION_PREFIX):
            renamed["vision_tower." + name.removeprefix(VISION_PREFIX)] = tensor
        elif name.startswith(PROJECTOR_PREFIX):
            module, _, param = name.removeprefix(PROJECTOR_PREFIX).rpartition(".")
            if module not in projector_names:
                unknown.append(name)
                continue
            renamed[f"multi_modal_projector.{projector_names[module]}.{param}"] = tensor
        elif name.startswith(("model.embed_tokens.", "model.layers.", "model.norm.")):
            renamed["language_model." + name] = tensor
        elif name.startswith("lm_head."):
            renamed["language_model." + name] = tensor
        else:
            unknown.append(name)
    if unknown:
        raise OneVisionInputError(
            f"{len(unknown)} released weights have no place in OneVisionLlavaForConditionalGeneration: "
            f"{sorted(unknown)[:8]} (e.g. an image_newline of the anyres 'spatial_unpad' recipe, which this "
            "model does not implement)."
        )
    return renamed


def check_against_model(renamed: dict[str, torch.Tensor], config: OneVisionLlavaConfig) -> dict[str, torch.Tensor]:
    """Compare names and shapes with what ``save_pretrained`` of the model the config builds writes (built on the
    meta device, no memory); drop tied copies."""
    from transformers.core_model_loading import revert_weight_conversion

    with torch.device("meta"):
        model = OneVisionLlavaForConditionalGeneration(config)
    state = model.state_dict()
    tied = revert_weight_conversion(model, {name: state[name] for name in model.all_tied_weights_keys})  # targets
    expected = {name: tensor.shape for name, tensor in revert_weight_conversion(model, state).items()}
    renamed = {name: tensor for name, tensor in renamed.items() if name not in tied}
    missing = sorted(set(expected) - set(renamed) - set(tied))
    unexpected = sorted(set(renamed) - set(expected))
    wrong_shape = sorted(f"{name} {tuple(renamed[name].shape)} != {tuple(shape)}" for name, shape in expected.items()
                         if name in renamed and renamed[name].shape != shape)
    if missing or unexpected or wrong_shape:
        raise OneVisionInputError(
            f"the converted weights do not fit the model: missing {missing[:8]}, unexpected {unexpected[:8]}, "
            f"wrong shapes {wrong_shape[:8]}."
        )
    return renamed


def add_placeholder_tokens(tokenizer) -> tuple[int, int]:
    """Make sure ``<image>`` and ``<video>`` are single special tokens; return their ids."""
    missing = [token for token in ("<image>", "<video>") if token not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    return tokenizer.convert_tokens_to_ids("<image>"), tokenizer.convert_tokens_to_ids("<video>")


def pad_embeddings(renamed: dict[str, torch.Tensor], config: OneVisionLlavaConfig, vocab_size: int) -> None:
    """Grow the LM's embedding (and untied head) to ``vocab_size`` rows with the mean row, in place."""
    text_config = config.text_config
    if vocab_size <= text_config.vocab_size:
        return
    for name in ("language_model.model.embed_tokens.weight", "language_model.lm_head.weight"):
        if name in renamed:
            weight = renamed[name]
            extra = weight.float().mean(0, keepdim=True).to(weight.dtype).expand(vocab_size - weight.shape[0], -1)
            renamed[name] = torch.cat([weight, extra])
    text_config.vocab_size = vocab_size


def convert_llava_checkpoint(source, destination, vision_config_dir=None, tokenizer_dir=None) -> OneVisionLlavaConfig:
    """Write ``source`` (released layout) to ``destination`` in this package's format; return the new config.

    ``destination`` gets ``config.json``, safetensors weights, and the `OneVisionLlavaProcessor` (the tokenizer of
    ``tokenizer_dir``, default ``source``, with ``<image>`` / ``<video>`` added, and the image and video processors).
    """
    from huggingface_hub import save_torch_state_dict
    from transformers import AutoTokenizer, GenerationConfig

    source, destination = Path(source), Path(destination)
    config_file = source / "config.json"
    if not config_file.is_file():
        raise OneVisionInputError(f"{source} has no config.json; is it a released checkpoint directory?")
    released = json.loads(config_file.read_text())
    projector_type = released.get("mm_projector_type", "mlp2x_gelu")
    if projector_type not in RELEASED_PROJECTOR_NAMES:
        raise OneVisionInputError(
            f"mm_projector_type {projector_type!r} cannot be converted; supported: {sorted(RELEASED_PROJECTOR_NAMES)}."
        )
    state_dict = load_released_state_dict(source)
    vision_weights = {name.removeprefix(VISION_PREFIX): tensor for name, tensor in state_dict.items()
                      if name.startswith(VISION_PREFIX)}
    vision_config = (OneVisionEncoderConfig.from_pretrained(vision_config_dir) if vision_config_dir is not None
                     else infer_vision_config(vision_weights))
    tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else source
    if not (tokenizer_dir / "tokenizer_config.json").is_file():
        raise OneVisionInputError(
            f"{tokenizer_dir} has no tokenizer (tokenizer_config.json); give one with --tokenizer."
        )
    text_config = text_config_from_released(released)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, config=text_config)  # not the llava_qwen3 config.json
    image_token_id, video_token_id = add_placeholder_tokens(tokenizer)
    config = OneVisionLlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_id=image_token_id,
        video_token_id=video_token_id,
        projector_type=projector_type,
        vision_feature_layer=released.get("mm_vision_select_layer", -2),
    )
    renamed = rename_released_weights(state_dict, projector_type)
    pad_embeddings(renamed, config, len(tokenizer))
    renamed = check_against_model(renamed, config)

    destination.mkdir(parents=True, exist_ok=True)
    config.architectures = [OneVisionLlavaForConditionalGeneration.__name__]
    config.save_pretrained(destination)
    save_torch_state_dict(renamed, destination)
    if (source / "generation_config.json").is_file():
        GenerationConfig.from_pretrained(source).save_pretrained(destination)
    OneVisionLlavaProcessor.for_model_config(config, tokenizer).save_pretrained(destination)
    return config


__all__ = ["convert_llava_checkpoint", "infer_vision_config", "load_released_state_dict", "rename_released_weights"]
