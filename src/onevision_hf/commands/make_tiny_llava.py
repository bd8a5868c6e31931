"""``onevision-hf make-tiny-llava OUT``: a random tiny OneVision-LLaVA model and its processor, built offline.

The encoder is a OneVision-Encoder checkpoint (default: the bundled tiny one), the LM a random causal LM of the
given text config and its tokenizer (default: the bundled tiny Qwen3 config and tiny tokenizer, with its
``<image>`` / ``<video>`` tokens and chat template). The result loads with ``AutoModelForImageTextToText`` /
``AutoProcessor`` and drives ``onevision-hf generate`` and ``onevision-hf finetune`` in examples and tests; its
text is noise.
"""

from pathlib import Path

from .model_dirs import checked_model_dir


def add_parser(subparsers):
    parser = subparsers.add_parser("make-tiny-llava", help="build a random tiny OneVision-LLaVA model (offline)",
                                   description=__doc__)
    parser.add_argument("output_dir", type=Path, help="directory to write the model and processor to")
    parser.add_argument("--encoder", type=Path, help="OneVision-Encoder checkpoint directory (default: the bundled "
                                                     "tiny encoder)")
    parser.add_argument("--text", type=Path, help="directory with a causal-LM config.json and a tokenizer "
                                                  "(default: the bundled tiny Qwen3 and tokenizer)")
    parser.add_argument("--projector-type", choices=("mlp2x_gelu", "spatial_merge"), default="mlp2x_gelu")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def build_tiny_llava(encoder_dir, text_config, tokenizer, projector_type: str = "mlp2x_gelu", seed: int = 0):
    """Encoder weights from ``encoder_dir``, every other weight random (seeded); returns the model in eval mode."""
    import torch

    from ..modeling.configuration_onevision_encoder import OneVisionEncoderConfig
    from ..modeling.configuration_onevision_llava import OneVisionLlavaConfig
    from ..modeling.modeling_onevision_encoder import OneVisionEncoderModel
    from ..modeling.modeling_onevision_llava import OneVisionLlavaForConditionalGeneration

    config = OneVisionLlavaConfig(
        vision_config=OneVisionEncoderConfig.from_pretrained(encoder_dir),
        text_config=text_config,
        image_token_id=tokenizer.convert_tokens_to_ids(tokenizer.image_token),
        video_token_id=tokenizer.convert_tokens_to_ids(tokenizer.video_token),
        projector_type=projector_type,
    )
    torch.manual_seed(seed)
    model = OneVisionLlavaForConditionalGeneration(config)
    model.vision_tower.load_state_dict(OneVisionEncoderModel.from_pretrained(encoder_dir).state_dict())
    return model.eval()


def run(args):
    from transformers import AutoConfig, AutoTokenizer

    from ..processors.processing_onevision_llava import OneVisionLlavaProcessor
    from ..resources import TINY_ENCODER, TINY_LLM, bundled

    encoder = checked_model_dir(args.encoder or bundled(TINY_ENCODER), "--encoder")
    text = checked_model_dir(args.text or bundled(TINY_LLM), "--text")
    tokenizer = AutoTokenizer.from_pretrained(text)
    model = build_tiny_llava(encoder, AutoConfig.from_pretrained(text), tokenizer, args.projector_type, args.seed)
    processor = OneVisionLlavaProcessor.for_model_config(model.config, tokenizer)
    model.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    print(f"saved a random tiny OneVision-LLaVA ({sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{args.projector_type}) and its processor to {args.output_dir}")
