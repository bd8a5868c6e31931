"""Configuration of OneVision-LLaVA: the OneVision encoder, a projector, and any Hugging Face causal LM."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

from ..errors import OneVisionConfigError, typed_field_errors
from .configuration_onevision_encoder import OneVisionEncoderConfig
from .projectors import PROJECTOR_TYPES


@typed_field_errors
@strict
class OneVisionLlavaConfig(PreTrainedConfig):
    r"""
    Configuration of [`OneVisionLlavaForConditionalGeneration`].

    Args:
        vision_config: the encoder's [`OneVisionEncoderConfig`] (or its dict).
        text_config: any causal-LM config (Qwen2, Qwen3, Llama, ...; dict with ``model_type``, default Qwen3).
        image_token_id: vocabulary id of the ``<image>`` placeholder that image features replace.
        video_token_id: vocabulary id of the ``<video>`` placeholder that video features replace.
        projector_type: ``"mlp2x_gelu"`` (Linear-GELU-Linear, one LLM token per patch, the released layout) or
            ``"spatial_merge"`` (one LLM token per 2x2 block of patches at the same t, see `projectors.py`).
        projector_hidden_act: activation between the projector's two linear layers.
        vision_feature_layer: index into the encoder's ``hidden_states`` (the input of every layer, then the
            encoder output before ``layernorm_post``); the released default -2 is the input of the last layer.
        tie_word_embeddings: tie ``lm_head`` to the LM's input embeddings (taken from ``text_config`` when it ties
            them, as transformers' LLaVA does).
    """

    model_type = "onevision_llava"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=OneVisionEncoderConfig),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen3"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    image_token_id: int | None = None
    video_token_id: int | None = None
    projector_type: str = "mlp2x_gelu"
    projector_hidden_act: str = "gelu"
    vision_feature_layer: int = -2
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True  # the LM head now sits on this model, its tying with it
        if self.projector_type not in PROJECTOR_TYPES:
            raise OneVisionConfigError(
                f"projector_type must be one of {PROJECTOR_TYPES}, got {self.projector_type!r}."
            )
        if self.projector_hidden_act not in ACT2FN:
            raise OneVisionConfigError(
                f"projector_hidden_act {self.projector_hidden_act!r} is not an activation transformers knows."
            )
        for name in ("image_token_id", "video_token_id"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise OneVisionConfigError(f"{name} must be a vocabulary id (>= 0) or None, got {getattr(self, name)}.")
        num_states = self.vision_config.num_hidden_layers + 1
        if not -num_states <= self.vision_feature_layer < num_states:
            raise OneVisionConfigError(
                f"vision_feature_layer {self.vision_feature_layer} does not index the encoder's {num_states} "
                f"hidden states (num_hidden_layers + 1); use a value in [{-num_states}, {num_states - 1}]."
            )


__all__ = ["OneVisionLlavaConfig"]
