"""onevision-hf: OneVision-Encoder for Hugging Face transformers.

Importing the package registers its configs and models with the transformers Auto classes; nothing else
happens at import time.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageTextToText, AutoProcessor
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from .errors import AttentionBackendUnavailableError, OneVisionConfigError, OneVisionInputError, OneVisionVideoError
from .modeling import (
    OneVisionEncoderConfig,
    OneVisionEncoderModel,
    OneVisionPackedOutput,
    PackedVisionInputs,
    cu_seqlens_from_lengths,
    pack_upstream_inputs,
)
from .modeling.configuration_onevision_llava import OneVisionLlavaConfig
from .modeling.modeling_onevision_llava import OneVisionLlavaForConditionalGeneration, OneVisionLlavaModel
from .processors import OneVisionImageProcessor
from .processors.processing_onevision_llava import OneVisionLlavaProcessor
from .processors.video_decoding import LocalPlaylist
from .processors.video_processing_onevision import OneVisionVideoProcessor

__version__ = "0.1.0"

AutoConfig.register(OneVisionEncoderConfig.model_type, OneVisionEncoderConfig, exist_ok=True)
AutoModel.register(OneVisionEncoderConfig, OneVisionEncoderModel, exist_ok=True)
AutoConfig.register(OneVisionLlavaConfig.model_type, OneVisionLlavaConfig, exist_ok=True)
AutoModel.register(OneVisionLlavaConfig, OneVisionLlavaModel, exist_ok=True)
AutoModelForImageTextToText.register(OneVisionLlavaConfig, OneVisionLlavaForConditionalGeneration, exist_ok=True)
AutoProcessor.register(OneVisionLlavaConfig, OneVisionLlavaProcessor, exist_ok=True)
AutoImageProcessor.register(
    OneVisionEncoderConfig, image_processor_classes={"pil": OneVisionImageProcessor}, exist_ok=True
)
# transformers' top-level AutoVideoProcessor name needs torchvision; the auto module itself does not.
AutoVideoProcessor.register(OneVisionEncoderConfig, OneVisionVideoProcessor, exist_ok=True)

__all__ = [
    "AttentionBackendUnavailableError",
    "LocalPlaylist",
    "OneVisionConfigError",
    "OneVisionEncoderConfig",
    "OneVisionEncoderModel",
    "OneVisionImageProcessor",
    "OneVisionInputError",
    "OneVisionLlavaConfig",
    "OneVisionLlavaForConditionalGeneration",
    "OneVisionLlavaModel",
    "OneVisionLlavaProcessor",
    "OneVisionPackedOutput",
    "OneVisionVideoError",
    "OneVisionVideoProcessor",
    "PackedVisionInputs",
    "cu_seqlens_from_lengths",
    "pack_upstream_inputs",
]
