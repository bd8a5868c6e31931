"""``onevision-hf finetune``: fine-tune a OneVision-LLaVA model on LLaVA-style conversations (Trainer, PEFT LoRA)."""

from pathlib import Path

from .model_dirs import checked_model_dir


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "finetune", help="fine-tune a OneVision-LLaVA model on LLaVA conversation JSON/JSONL",
        description="Fine-tune with transformers.Trainer: each component is frozen, fully trained, or adapted "
                    "with LoRA; labels cover the assistant answers only.",
    )
    parser.add_argument("--model", required=True, help="OneVision-LLaVA model directory (with its processor)")
    parser.add_argument("--data", required=True, type=Path, help="LLaVA conversation .json / .jsonl file")
    parser.add_argument("--output-dir", required=True, type=Path, help="where the result and processor are saved")
    parser.add_argument("--media-root", type=Path, default=None,
                        help="directory the image / video paths are relative to (default: the data file's)")
    for component, default in (("encoder", "frozen"), ("projector", "full"), ("llm", "lora")):
        parser.add_argument(f"--{component}", default=default,  # checked by finetune(): one of TRAINING_MODES
                            help=f"how to train the {component}: frozen, full or lora (default: {default})")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--lora-target-modules", default="q_proj,k_proj,v_proj,o_proj,out_proj",
                        help="comma-separated Linear layer names LoRA adapts inside the lora components")
    parser.add_argument("--merge-lora", action="store_true", help="save the merged model instead of the adapter")
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--logging-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-frames", type=int, default=None, help="frames sampled per video (processor default)")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="pixel budget of image and video frames (processor default)")
    parser.set_defaults(func=run)


def run(args):
    from ..training.finetune import finetune

    checked_model_dir(args.model)
    processor_kwargs = {key: value for key, value in (("num_frames", args.num_frames),
                                                      ("max_pixels", args.max_pixels)) if value is not None}
    trainer = finetune(
        args.model, args.data, args.output_dir, media_root=args.media_root, encoder=args.encoder,
        projector=args.projector, llm=args.llm, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout, lora_target_modules=tuple(args.lora_target_modules.split(",")),
        max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        gradient_checkpointing=args.gradient_checkpointing, logging_steps=args.logging_steps, seed=args.seed,
        merge_lora=args.merge_lora, processor_kwargs=processor_kwargs,
    )
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        print(f"training loss {losses[0]:.3f} -> {losses[-1]:.3f} over {trainer.state.global_step} steps")
    print(f"saved to {args.output_dir}")
