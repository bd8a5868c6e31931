"""``onevision-hf probe --model DIR --train CSV --val CSV --input codec|frames --budget K``: the attentive probe.

The OneVision-Encoder in ``DIR`` stays frozen; a learned-query attention-pooling head is trained on its tokens of
the training videos (AdamW, label smoothing, warm-up + cosine schedule) and scored on the validation videos
after every epoch. ``--input codec`` feeds K codec-selected patches of ``--num-frames`` frames, ``--input
frames`` every patch of K // (patches per frame) uniformly sampled frames: the same token count. CSVs have a
header ``path,label``. Prints the best and the final epoch's accuracy; ``--output`` also saves
``probe_results.json`` and the head (``probe.safetensors``).
"""

from pathlib import Path

from ..evaluation.probe_config import INPUT_MODES, ProbeConfig


def add_parser(subparsers):
    defaults = ProbeConfig()
    parser = subparsers.add_parser("probe", help="attentive-probe video classification with the frozen encoder",
                                   description=__doc__)
    parser.add_argument("--model", type=Path,
                        help="OneVision-Encoder checkpoint directory (default: the bundled model)")
    parser.add_argument("--train", type=Path, required=True, help="training videos: CSV with columns path,label")
    parser.add_argument("--val", type=Path, required=True, help="validation videos: CSV with columns path,label")
    parser.add_argument("--input", choices=INPUT_MODES, default=defaults.input_mode,
                        help="codec-selected patches or whole uniformly sampled frames (default: %(default)s)")
    parser.add_argument("--budget", type=int, default=defaults.budget, help="tokens per video (default: %(default)s)")
    parser.add_argument("--num-frames", type=int, default=defaults.num_frames,
                        help="frames sampled for codec selection (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="peak AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument("--num-heads", type=int, default=defaults.num_heads, help="heads of the probe's attention")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--output", type=Path, help="directory for probe_results.json and probe.safetensors")
    parser.set_defaults(func=run)


def run(args):
    import json
    from dataclasses import asdict

    from safetensors.torch import save_file

    from ..evaluation.probe import run_probe
    from ..pipeline import load_encoder

    config = ProbeConfig(input_mode=args.input, budget=args.budget, num_frames=args.num_frames, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay,
                         label_smoothing=args.label_smoothing, num_heads=args.num_heads, seed=args.seed)
    probe, result = run_probe(load_encoder(args.model), args.train, args.val, config)
    print(f"{args.input} input, {result.tokens_per_video:.0f} tokens / video: best accuracy "
          f"{100 * result.best_accuracy:.1f} % (epoch {result.best_epoch}), final {100 * result.final_accuracy:.1f} %")
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "probe_results.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
        save_file({name: tensor.contiguous() for name, tensor in probe.state_dict().items()},
                  str(args.output / "probe.safetensors"))
        print(f"results and head -> {args.output}")
