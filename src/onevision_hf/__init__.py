"""onevision-hf: OneVision-Encoder for Hugging Face transformers.

Importing the package registers its configs and models with the transformers Auto classes; nothing else
happens at import time.
"""

from transformers import AutoConfig, AutoModel

from .errors import AttentionBackendUnavailableError, OneVisionConfigError, OneVisionInputError, OneVisionVideoError
from .modeling import (
    OneVisionEncoderConfig,
    OneVisionEncoderModel,
    OneVisionPackedOutput,
    PackedVisionInputs,
    cu_seqlens_from_lengths,
    pack_upstream_inputs,
)

__version__ = "0.1.0"

AutoConfig.register(OneVisionEncoderConfig.model_type, OneVisionEncoderConfig, exist_ok=True)
AutoModel.register(OneVisionEncoderConfig, OneVisionEncoderModel, exist_ok=True)

__all__ = [
    "AttentionBackendUnavailableError",
    "OneVisionConfigError",
    "OneVisionEncoderConfig",
    "OneVisionEncoderModel",
    "OneVisionInputError",
    "OneVisionPackedOutput",
    "OneVisionVideoError",
    "PackedVisionInputs",
    "cu_seqlens_from_lengths",
    "pack_upstream_inputs",
]
