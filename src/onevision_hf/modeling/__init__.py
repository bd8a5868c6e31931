from .configuration_onevision_encoder import OneVisionEncoderConfig
from .modeling_onevision_encoder import OneVisionEncoderModel, OneVisionEncoderPreTrainedModel, OneVisionPackedOutput
from .packing import PackedVisionInputs, cu_seqlens_from_lengths, pack_upstream_inputs

__all__ = [
    "OneVisionEncoderConfig",
    "OneVisionEncoderModel",
    "OneVisionEncoderPreTrainedModel",
    "OneVisionPackedOutput",
    "PackedVisionInputs",
    "cu_seqlens_from_lengths",
    "pack_upstream_inputs",
]
