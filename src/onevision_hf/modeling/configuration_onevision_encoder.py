"""Configuration of the OneVision-Encoder vision transformer.

Keys and defaults are those of the published checkpoints (``model_type: "onevision_encoder"``); they are a
public contract, so a ``config.json`` from the hub loads unchanged.
"""

from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig

from ..errors import OneVisionConfigError, typed_field_errors
from ..limits import check_bound

LAYER_NORM_TYPES = ("layer_norm", "rms_norm")
ROTARY_HEAD_DIM_MULTIPLE = 32  # the (t, h, w) split of the rotary half needs head_dim / 2 divisible by 16


@typed_field_errors
@strict
class OneVisionEncoderConfig(PreTrainedConfig):
    r"""
    Configuration of [`OneVisionEncoderModel`].

    Args:
        hidden_size: width of the transformer (base 768, large 1024, huge 1280).
        intermediate_size: width of the MLP (4 x hidden_size in the published models).
        num_hidden_layers: number of transformer layers.
        num_attention_heads: number of heads; ``hidden_size / num_attention_heads`` must be a multiple of 32.
        num_channels: input channels.
        image_size: pretraining image size (informative: the model itself is resolution-free).
        patch_size: side of a square patch in pixels.
        hidden_act: activation of the MLPs (``"gelu"`` is the exact erf GELU).
        layer_norm_eps: epsilon of every normalisation layer.
        layer_norm_type: ``"layer_norm"`` or ``"rms_norm"`` (no bias).
        attention_dropout: dropout on attention probabilities during training.
        initializer_range: standard deviation of the weight initialisation.
        rope_theta: base of the rotary frequencies.
        rope_temporal_size: size of the temporal position grid that video positions live on (``None``: the
            number of frames of the input).
        use_head: whether the attention-pooling head (and ``layernorm_post``) is present.
    """

    model_type = "onevision_encoder"
    base_config_key = "vision_config"

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 448
    patch_size: int = 14
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    layer_norm_type: str = "layer_norm"
    attention_dropout: float | int = 0.0
    initializer_range: float = 0.02
    rope_theta: float | int = 10000.0
    rope_temporal_size: int | None = 64
    use_head: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def __post_init__(self, **kwargs):
        self._check_architecture()
        super().__post_init__(**kwargs)

    def _check_architecture(self):
        """Reject configs no weight layout can have, with the typed error (strict validators would wrap it)."""
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
                     "image_size"):
            if getattr(self, name) < 1:
                raise OneVisionConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.layer_norm_eps > 0:
            raise OneVisionConfigError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}.")
        if self.hidden_act not in ACT2FN:
            raise OneVisionConfigError(f"hidden_act {self.hidden_act!r} is not an activation transformers knows.")
        if not 0 <= self.attention_dropout < 1:
            raise OneVisionConfigError(f"attention_dropout must lie in [0, 1), got {self.attention_dropout}.")
        if not self.rope_theta > 0:
            raise OneVisionConfigError(f"rope_theta must be positive, got {self.rope_theta}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise OneVisionConfigError(
                f"hidden_size ({self.hidden_size}) is not a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.head_dim % ROTARY_HEAD_DIM_MULTIPLE != 0:
            raise OneVisionConfigError(
                f"head_dim = hidden_size / num_attention_heads = {self.head_dim} must be a multiple of "
                f"{ROTARY_HEAD_DIM_MULTIPLE}: the 3-D rotary embedding splits half of it into t:h:w = 4:6:6 "
                "sixteenths."
            )
        if self.layer_norm_type not in LAYER_NORM_TYPES:
            raise OneVisionConfigError(
                f"layer_norm_type must be one of {LAYER_NORM_TYPES}, got {self.layer_norm_type!r}."
            )
        if self.patch_size <= 0:
            raise OneVisionConfigError(f"patch_size must be positive, got {self.patch_size}.")
        if self.rope_temporal_size is not None and self.rope_temporal_size <= 0:
            raise OneVisionConfigError(
                f"rope_temporal_size must be positive or None, got {self.rope_temporal_size}."
            )
        check_bound("encoder parameters", self.estimated_parameters(), "this encoder config")

    def estimated_parameters(self) -> int:
        """Parameter count of the model this config describes (patch embedding, layers, pooling head)."""
        width, mlp = self.hidden_size, self.intermediate_size
        layer = 4 * width * width + 2 * width * mlp  # attention projections and the MLP, weights only
        embedding = self.num_channels * self.patch_size**2 * width
        head = (4 * width * width + 2 * width * mlp) if self.use_head else 0
        return embedding + self.num_hidden_layers * layer + head


__all__ = ["OneVisionEncoderConfig"]
