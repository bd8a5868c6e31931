"""One-command check of the encoder's GPU path: parity, speed, end-to-end throughput, LLaVA generate.

Prints one table and exits non-zero when a parity check fails (or a section cannot run):

* environment: torch / CUDA / transformers / PyAV versions, whether this torch has
  ``torch.nn.attention.varlen.varlen_attn`` (required on CUDA) and whether flash-attn is installed;
* parity against fp32 ``eager`` on CPU, on the bundled golden fixtures (the tiny encoder) and on all of them in one
  mixed packed batch: ``eager``, ``sdpa`` sample by sample, ``sdpa`` through ``varlen_attn`` (one call per layer,
  counted) and ``flash_attention_2`` (when installed), in fp32 and bf16; the error is max |out - ref| / max |ref|
  of ``last_hidden_state`` and ``pooler_output``, within `RELATIVE_TOLERANCE`;
* speed at the published base and large sizes (random weights, bf16 on CUDA): the packed call vs a padded batch
  vs one call per sample on 4 images and 4 sparse videos (`encoder_throughput.make_batch`), useful tokens/s and
  peak memory, forward and forward + backward;
* end to end: videos/s of processor + encoder on the bundled video, processing one video after another vs the CPU
  processing of the next videos overlapped with the GPU encoding;
* LLaVA ``generate`` (greedy) on the tiny model on the device gives the CPU's tokens (fp32; bf16 reported).

Usage:
    python benchmarks/gpu_check.py                        # on a CUDA machine (about 2-3 minutes on an H100)
    python benchmarks/gpu_check.py --device cpu --quick   # the CPU dry run the tests run (tests/test_gpu_check.py)
The command for the lent GPU machine (its own torch, no PyAV, no registry) is in benchmarks/README.md, "GPU check".
"""

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("onevision_hf") is None:  # the lent GPU machine runs from the checkout
    sys.path.insert(0, str(ROOT / "src"))

import encoder_throughput  # noqa: E402  (benchmarks/, beside this file)
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoConfig, AutoTokenizer  # noqa: E402

import onevision_hf  # noqa: E402
from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel  # noqa: E402
from onevision_hf.modeling import packed_attention  # noqa: E402
from onevision_hf.modeling.packing import concat_packed, pack_upstream_inputs  # noqa: E402

ASSETS = ROOT / "assets"
TINY_ENCODER = ASSETS / "reference-encoder" / "tiny-encoder"
VIDEO = ASSETS / "media" / "beach-portrait-h264.mp4"
QUICK_VIDEO = ASSETS / "media" / "carphone-176x144-h264.mp4"
LARGE = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, patch_size=14)
# max |out - ref| / max |ref| against fp32 eager on CPU. bf16 / fp16 measured on CPU on the golden fixtures at
# 0.9 % / 0.1 % (README, "Precision"); fp32 on a GPU differs from the CPU by reduction order only.
RELATIVE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 3e-3}


@dataclass
class Row:
    section: str
    check: str
    dtype: str
    result: str  # PASS / FAIL / n/a, or a measurement
    detail: str = ""
    failed: bool = False


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- environment


def environment_rows(device: torch.device) -> list[Row]:
    import transformers

    rows = [Row("environment", "torch", "", torch.__version__, f"CUDA {torch.version.cuda}"),
            Row("environment", "transformers", "", transformers.__version__,
                f"onevision_hf {onevision_hf.__version__}")]
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        capability = ".".join(map(str, torch.cuda.get_device_capability(device)))
        rows.append(Row("environment", "device", "", name, f"compute capability {capability}"))
    rows.append(varlen_row(device.type))
    has_flash = importlib.util.find_spec("flash_attn") is not None
    rows.append(Row("environment", "flash-attn", "", "installed" if has_flash else "not installed"))
    has_av = importlib.util.find_spec("av") is not None
    rows.append(Row("environment", "PyAV", "", __import__("av").__version__ if has_av else "MISSING",
                    "" if has_av else "end-to-end section skipped", failed=not has_av))
    return rows


def varlen_row(device_type: str) -> Row:
    """Whether the torch found has varlen_attn: required on CUDA (the default path), informative elsewhere."""
    present = packed_attention.TORCH_VARLEN.function is not None
    return Row("environment", "torch.nn.attention.varlen.varlen_attn", "", "present" if present else "MISSING",
               "the default CUDA path" if present else f"torch {torch.__version__}: sdpa runs sample by sample",
               failed=device_type == "cuda" and not present)


# ---------------------------------------------------------------- parity


@contextlib.contextmanager
def varlen_kernel(counting: bool):
    """TORCH_VARLEN replaced: counting its calls (``counting``), or absent (forcing the per-sample path)."""
    calls = []
    original = packed_attention.TORCH_VARLEN

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original.function(*args, **kwargs)

    function = (counted if original.function is not None else None) if counting else None
    packed_attention.TORCH_VARLEN = dataclasses.replace(original, function=function)
    try:
        yield calls
    finally:
        packed_attention.TORCH_VARLEN = original


def golden_inputs() -> dict[str, dict]:
    """The golden fixtures' inputs, and all of them packed into one mixed batch."""
    cases = {}
    for path in sorted(TINY_ENCODER.glob("case_*.safetensors")):
        tensors = load_file(path)
        cases[path.stem] = {k.removeprefix("input."): v for k, v in tensors.items() if k.startswith("input.")}
    parts = [pack_upstream_inputs(case["pixel_values"], 14, case.get("visible_indices"), case.get("patch_positions"))
             for case in cases.values()]
    cases["mixed packed batch"] = concat_packed(parts).to_kwargs()
    return cases


def relative_error(output, reference) -> float:
    errors = [float((output[key].float().cpu() - reference[key]).abs().max() / reference[key].abs().max())
              for key in ("last_hidden_state", "pooler_output")]
    return max(errors)


def parity_rows(device: torch.device, dtypes: list[torch.dtype]) -> list[Row]:
    inputs = golden_inputs()
    reference_model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation="eager").eval()
    with torch.no_grad():
        references = {name: reference_model(**case) for name, case in inputs.items()}
    variants = [("eager", "eager", None), ("sdpa, per sample", "sdpa", False), ("sdpa, varlen_attn", "sdpa", True)]
    if importlib.util.find_spec("flash_attn") is not None and device.type == "cuda":
        variants.append(("flash_attention_2", "flash_attention_2", None))
    rows = []
    for label, implementation, varlen in variants:
        for dtype in dtypes:
            if varlen and (device.type != "cuda" or dtype == torch.float32):
                rows.append(Row("parity", label, dtype_name(dtype), "n/a", "varlen_attn: CUDA, fp16/bf16 only"))
                continue
            model = OneVisionEncoderModel.from_pretrained(TINY_ENCODER, attn_implementation=implementation,
                                                          dtype=dtype).to(device).eval()
            worst = 0.0
            with varlen_kernel(counting=bool(varlen)) as calls, torch.no_grad():
                for name, case in inputs.items():
                    worst = max(worst, relative_error(model(**{k: v.to(device) for k, v in case.items()}),
                                                      references[name]))
            tolerance = RELATIVE_TOLERANCE[dtype]
            detail = f"max rel. error {worst:.1e} (tolerance {tolerance:.0e}) over {len(inputs)} inputs"
            if varlen:
                detail += f"; {len(calls)} varlen_attn calls ({model.config.num_hidden_layers} per input)"
            failed = not worst <= tolerance or (varlen and len(calls) != len(inputs) * model.config.num_hidden_layers)
            rows.append(Row("parity", label, dtype_name(dtype), "FAIL" if failed else "PASS", detail, failed))
    return rows


# ---------------------------------------------------------------- speed


def timed(function, device: torch.device, repeats: int) -> float:
    function()  # warm-up
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory_mb(function, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    function()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def speed_rows(device: torch.device, quick: bool) -> list[Row]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sizes = {"small": encoder_throughput.SMALL} if quick else {"base": encoder_throughput.BASE, "large": LARGE}
    variants = {"packed": encoder_throughput.run_packed, "padded": encoder_throughput.run_padded,
                "per-sample": encoder_throughput.run_per_sample}
    repeats = 1 if quick else 5
    rows = []
    for size, config in sizes.items():
        torch.manual_seed(0)
        model = OneVisionEncoderModel(OneVisionEncoderConfig(**config)).to(device, dtype).eval()
        samples = [(rows_.to(device), positions.to(device))
                   for rows_, positions in encoder_throughput.make_batch(3 * config["patch_size"] ** 2)]
        useful = sum(len(sample[0]) for sample in samples)
        for mode in ("forward", "forward+backward"):
            results = {}
            for name, run in variants.items():
                def step(run=run):
                    with torch.device(device), torch.set_grad_enabled(mode != "forward"):
                        pooled = run(model, samples)
                        if mode != "forward":
                            pooled.float().square().mean().backward()
                    model.zero_grad(set_to_none=True)

                results[name] = (timed(step, device, repeats), peak_memory_mb(step, device))
            for name, (seconds, memory) in results.items():
                memory_text = f", peak {memory:.0f} MB" if memory is not None else ""
                rows.append(Row("speed", f"{size} {mode}: {name}", dtype_name(dtype), f"{useful / seconds:,.0f} tok/s",
                                f"{results['padded'][0] / seconds:.2f}x padded's tokens/s{memory_text}"))
    return rows


# ---------------------------------------------------------------- end to end


def end_to_end_rows(device: torch.device, quick: bool) -> list[Row]:
    if importlib.util.find_spec("av") is None:
        return [Row("end to end", "videos/s", "", "n/a", "PyAV is not importable", failed=True)]
    from onevision_hf import OneVisionVideoProcessor

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = encoder_throughput.SMALL if quick else encoder_throughput.BASE
    processor = OneVisionVideoProcessor(num_frames=8) if quick else OneVisionVideoProcessor()
    videos = [QUICK_VIDEO] * 2 if quick else [VIDEO] * 8
    torch.manual_seed(0)
    model = OneVisionEncoderModel(OneVisionEncoderConfig(**config)).to(device, dtype).eval()

    def encode(batch):
        with torch.no_grad():
            model(**{key: value.to(device) for key, value in batch.items()}).pooler_output.float().cpu()

    encode(processor(videos[0]))  # warm-up: decoder, kernels, allocator
    start = time.perf_counter()
    for video in videos:
        encode(processor(video))
    sequential = len(videos) / (time.perf_counter() - start)
    workers = max(1, min(len(videos), (os.cpu_count() or 2) // 2))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(processor, video) for video in videos]):
            encode(future.result())  # the GPU encodes while the pool decodes and selects the next videos
    overlapped = len(videos) / (time.perf_counter() - start)
    detail = (f"{len(videos)} x {Path(videos[0]).name}, {processor.num_frames} frames, "
              f"{config['num_hidden_layers']}-layer encoder")
    return [Row("end to end", "one video after another", dtype_name(dtype), f"{sequential:.2f} videos/s", detail),
            Row("end to end", f"decode overlapped ({workers} CPU workers)", dtype_name(dtype),
                f"{overlapped:.2f} videos/s", f"{overlapped / sequential:.2f}x one after another")]


# ---------------------------------------------------------------- LLaVA generate


def generate_rows(device: torch.device, quick: bool) -> list[Row]:
    from onevision_hf.commands.make_tiny_llava import build_tiny_llava
    from onevision_hf.processors.processing_onevision_llava import OneVisionLlavaProcessor

    tokenizer = AutoTokenizer.from_pretrained(ASSETS / "tiny-llm")
    model = build_tiny_llava(TINY_ENCODER, AutoConfig.from_pretrained(ASSETS / "tiny-llm"), tokenizer)
    processor = OneVisionLlavaProcessor.for_model_config(model.config, tokenizer)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (84, 112, 3), dtype=np.uint8)
    frames = rng.integers(0, 256, (8, 56, 84, 3), dtype=np.uint8)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Describe."}]}],
        add_generation_prompt=True)
    inputs = processor(text=prompt, images=image, videos=frames, num_frames=8, return_tensors="pt")
    new_tokens = 6 if quick else 16

    def greedy(model_on_device, target):
        with torch.no_grad():
            batch = {key: value.to(target) for key, value in inputs.items() if torch.is_tensor(value)}
            out = model_on_device.generate(**batch, max_new_tokens=new_tokens, do_sample=False)
        return out[0, inputs["input_ids"].shape[1]:].cpu().tolist()

    expected = greedy(model, torch.device("cpu"))
    rows = []
    for dtype in (torch.float32, torch.bfloat16) if device.type == "cuda" else (torch.float32,):
        on_device = build_tiny_llava(TINY_ENCODER, AutoConfig.from_pretrained(ASSETS / "tiny-llm"), tokenizer)
        tokens = greedy(on_device.to(device, dtype), device)
        same = tokens == expected
        first_difference = next((i for i, (a, b) in enumerate(zip(tokens, expected)) if a != b), None)
        detail = f"{new_tokens} greedy tokens" + ("" if same else f"; first differs at {first_difference}")
        exact = dtype == torch.float32
        rows.append(Row("LLaVA generate", f"{device.type} vs cpu fp32 tokens", dtype_name(dtype),
                        ("PASS" if same else "FAIL") if exact else ("same" if same else "differs"),
                        detail + ("" if exact else " (informative: bf16 rounding may flip a near-tie)"),
                        failed=exact and not same))
    return rows


# ---------------------------------------------------------------- table


def run_section(section: str, function, *args) -> list[Row]:
    try:
        return function(*args)
    except Exception as error:  # one broken section must not hide the others' results
        return [Row(section, "section", "", "FAIL", f"{type(error).__name__}: {str(error).splitlines()[0][:160]}",
                    failed=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the CPU dry run of the tests")
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device is available; run with --device cpu --quick for the dry run", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = environment_rows(device)
    dtypes = [torch.float32, torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    rows += run_section("parity", parity_rows, device, dtypes)
    rows += run_section("speed", speed_rows, device, args.quick)
    rows += run_section("end to end", end_to_end_rows, device, args.quick)
    rows += run_section("LLaVA generate", generate_rows, device, args.quick)
    table = ["| section | check | dtype | result | detail |", "|---|---|---|---|---|"]
    table += [f"| {r.section} | {r.check} | {r.dtype} | {r.result} | {r.detail} |" for r in rows]
    failures = [r for r in rows if r.failed]
    seconds = time.perf_counter() - started
    table.append(f"\n{len(rows) - len(failures)} passed, {len(failures)} failed ({seconds:.0f} s)")
    print("\n".join(table))
    if args.output:
        args.output.write_text("\n".join(table) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
