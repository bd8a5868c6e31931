"""Write a tiny OneVision-LLaVA checkpoint in the layout the package wrote before its base-model / head split
(commit 7219a89), and its logits on fixed inputs. Run with that commit's src/ on PYTHONPATH."""
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import Qwen3Config

from onevision_hf import OneVisionEncoderConfig, OneVisionLlavaConfig, OneVisionLlavaForConditionalGeneration
from onevision_hf.modeling import cu_seqlens_from_lengths, pack_upstream_inputs

out = Path(sys.argv[1])
torch.manual_seed(0)
config = OneVisionLlavaConfig(
    vision_config=OneVisionEncoderConfig(hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=1, patch_size=14),
    text_config=Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=16, initializer_range=0.2,
                            tie_word_embeddings=False),
    image_token_id=3, video_token_id=4, projector_type="mlp2x_gelu", vision_feature_layer=-1,
)
model = OneVisionLlavaForConditionalGeneration(config).eval()
model.save_pretrained(out)
generator = torch.Generator().manual_seed(1)
image = pack_upstream_inputs(torch.randn(1, 3, 28, 42, generator=generator), 14)  # 6 patches
video_positions = torch.tensor([[0, 0, 0], [0, 0, 1], [3, 1, 0], [9, 1, 1], [20, 0, 1]])
video_pixels = torch.randn(5, 3 * 14 * 14, generator=generator)
input_ids = torch.tensor([[5, 6] + [3] * 6 + [7, 8] + [4] * 5 + [9, 10, 11]])
with torch.no_grad():
    logits = model(input_ids=input_ids, **image.to_kwargs(), pixel_values_videos=video_pixels,
                   video_patch_positions=video_positions, video_cu_seqlens=cu_seqlens_from_lengths([5])).logits
save_file({"input_ids": input_ids, "pixel_values": image.pixel_values, "patch_positions": image.patch_positions,
           "cu_seqlens": image.cu_seqlens, "pixel_values_videos": video_pixels,
           "video_patch_positions": video_positions, "video_cu_seqlens": cu_seqlens_from_lengths([5]),
           "logits": logits.contiguous()}, out / "golden_logits.safetensors")
print(logits.shape, logits.abs().mean())
