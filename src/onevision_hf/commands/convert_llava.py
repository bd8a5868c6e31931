"""``onevision-hf convert-llava SRC DST``: a released LLaVA-OneVision-Encoder checkpoint -> this package's format."""

from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert-llava", help="convert a released LLaVA-OneVision-Encoder checkpoint",
        description="Convert a released LLaVA-OneVision-Encoder checkpoint directory (llava_qwen3 config.json, "
                    "safetensors weights, tokenizer) into a directory that AutoModelForImageTextToText and "
                    "AutoProcessor load after `import onevision_hf`.",
    )
    parser.add_argument("source", type=Path, help="released checkpoint directory")
    parser.add_argument("destination", type=Path, help="output directory")
    parser.add_argument("--vision-config", type=Path, default=None,
                        help="directory with the encoder's config.json (default: inferred from the weights, "
                             "head_dim 64 as in every published size)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="tokenizer directory (default: SOURCE)")
    parser.set_defaults(func=run)


def run(args):
    from ..conversion import convert_llava_checkpoint

    config = convert_llava_checkpoint(args.source, args.destination, args.vision_config, args.tokenizer)
    vision = config.vision_config
    print(f"converted {args.source} -> {args.destination}: encoder {vision.num_hidden_layers} layers x "
          f"{vision.hidden_size}, projector {config.projector_type}, LM {config.text_config.model_type} "
          f"{config.text_config.num_hidden_layers} layers x {config.text_config.hidden_size}, "
          f"vision_feature_layer {config.vision_feature_layer}")
