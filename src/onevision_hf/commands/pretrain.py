"""``onevision-hf pretrain CONFIG.yaml``: cluster-discrimination pretraining of the encoder.

One CPU process as is; several (DDP) with ``torchrun --nproc_per_node N -m onevision_hf.cli pretrain CONFIG`` or
``accelerate launch --multi_gpu --num_processes N -m onevision_hf.cli pretrain CONFIG`` (gloo on CPU); FSDP through
``accelerate launch --use_fsdp``. The config is documented in ``configs/pretrain-tiny.yaml``.
``--resume latest`` continues from the newest checkpoint in ``output_dir`` exactly where it stopped;
``--output-dir`` replaces the config's ``output_dir`` (a second run of the same config beside the first).
"""

from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser("pretrain", help="pretrain the encoder by multi-label cluster discrimination",
                                   description=__doc__)
    parser.add_argument("config", type=Path, help="pretraining YAML config (see configs/pretrain-tiny.yaml)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="a checkpoint directory, or 'latest' (the default when the flag is given alone)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="checkpoints and log.jsonl go here instead of the config's output_dir")
    parser.add_argument("--until-step", type=int, default=None,
                        help="stop (and checkpoint) after this optimizer step; the schedule still spans max_steps")
    parser.set_defaults(func=run)


def run(args):
    import dataclasses

    from ..training.pretrain_config import PretrainConfig
    from ..training.pretrainer import Pretrainer

    config = PretrainConfig.from_yaml(args.config)
    if args.output_dir is not None:
        config = dataclasses.replace(config, output_dir=str(args.output_dir))
    trainer = Pretrainer(config, resume_from=args.resume)
    history = trainer.train(until_step=args.until_step)
    if trainer.accelerator.is_main_process and history:
        print(f"step {history[-1]['step']}: loss {history[0]['loss']:.4f} (step {history[0]['step']}) -> "
              f"{history[-1]['loss']:.4f}; checkpoints and log.jsonl in {trainer.output_dir}")
    return 0
