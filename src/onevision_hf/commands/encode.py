"""``onevision-hf encode INPUT [INPUT ...]``: images and videos -> encoder features, in one packed call.

Images (by extension) go through `OneVisionImageProcessor`, videos through `OneVisionVideoProcessor` (codec-
guided selection); every sample is packed into one encoder call. Prints tokens per sample and the pooled
embedding; ``--output`` saves ``pooler_output``, ``last_hidden_state``, ``patch_positions`` and ``cu_seqlens``
as safetensors.
"""

from pathlib import Path

from .selection_options import add_selection_arguments, selection_overrides


def add_parser(subparsers):
    parser = subparsers.add_parser("encode", help="encode images and videos with the encoder", description=__doc__)
    parser.add_argument("inputs", type=Path, nargs="+", help="image or video files")
    parser.add_argument("--model", help="encoder directory (default: the bundled model)")
    parser.add_argument("--output", type=Path, help="save the features as .safetensors")
    parser.add_argument("--attn-implementation", default="sdpa", choices=("sdpa", "eager", "flash_attention_2"))
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..pipeline import encode_files, load_encoder

    model = load_encoder(args.model, args.attn_implementation)
    result = encode_files(model, args.inputs, preset=args.preset, **selection_overrides(args))
    print(result.summary_table())
    if args.output is not None:
        result.save(args.output)
        print(f"features -> {args.output}")
    return 0
