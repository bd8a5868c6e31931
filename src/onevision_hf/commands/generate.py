"""``onevision-hf generate``: answer a prompt about images and videos with a OneVision-LLaVA model."""

import json
from pathlib import Path

from .model_dirs import ADAPTER_FILE, checked_model_dir


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "generate", help="generate text about images / videos with a OneVision-LLaVA model",
        description="Processor -> model.generate -> text. --model is a model directory (with its processor) or a "
                    "LoRA adapter directory saved by `onevision-hf finetune`.",
    )
    parser.add_argument("--model", required=True, type=Path, help="model or LoRA adapter directory")
    parser.add_argument("--prompt", required=True, help="the user's question")
    parser.add_argument("--image", action="append", default=[], help="an image file (repeatable)")
    parser.add_argument("--video", action="append", default=[], help="a video file (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--num-frames", type=int, default=None, help="frames sampled per video (processor default)")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="pixel budget of image and video frames (processor default)")
    parser.set_defaults(func=run)


def load_model(directory: Path):
    """A model directory, or a PEFT adapter directory on top of the base model it names."""
    from transformers import AutoModelForImageTextToText

    adapter_config = checked_model_dir(directory, adapters=True) / ADAPTER_FILE
    if not adapter_config.is_file():
        return AutoModelForImageTextToText.from_pretrained(directory)
    from peft import PeftModel

    base = checked_model_dir(json.loads(adapter_config.read_text())["base_model_name_or_path"],
                             flag=f"the base model of adapter {directory},")
    return PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base), directory)


def run(args):
    import torch
    from transformers import AutoProcessor

    model = load_model(args.model).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    content = [{"type": "image"} for _ in args.image] + [{"type": "video"} for _ in args.video]
    messages = [{"role": "user", "content": content + [{"type": "text", "text": args.prompt}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    processor_kwargs = {key: value for key, value in (("num_frames", args.num_frames),
                                                      ("max_pixels", args.max_pixels)) if value is not None}
    inputs = processor(text=prompt, images=args.image or None, videos=args.video or None, return_tensors="pt",
                       **processor_kwargs)
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                                   temperature=args.temperature if args.do_sample else None)
    print(processor.post_process_image_text_to_text(generated[:, inputs["input_ids"].shape[1]:])[0])
