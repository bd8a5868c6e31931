"""Encoder throughput on a realistic mixed batch: packed vs per-sample calls vs a padded, masked batch.

The batch: 4 images of different aspect ratios at ~448^2 pixels and 4 sparse videos of 512-2048 patches,
base-size encoder (768 wide, 12 layers, 12 heads), fp32, random weights (the speed does not depend on them).

  packed      one call, pixel_values (N, C*p*p) + patch_positions + cu_seqlens (this package)
  per-sample  one upstream-style call per sample
  padded      every sample padded to the longest, one batched call with a key-padding attention mask
              (what the released code does); implemented here with the package's own modules

Timing runs the three round-robin in one process (noise hits all alike); memory is measured in a fresh
subprocess per variant: the peak resident memory sampled during one forward, minus the resident memory just
before it (model weights and libraries excluded, so the number is the forward's own working memory).

``--group-tokens G [G ...]`` adds packed variants whose CPU sample groups hold about G tokens (the package's
default is `OneVisionEncoderStack.cpu_group_tokens`), to choose that default.

``--baseline-src DIR`` adds two variants run in worker processes (same weights, same thread count, timed
round-robin with the others): ``packed (worker, this checkout)`` and ``packed (worker, baseline)``, the same packed
call by this checkout's package and by another checkout's ``src/`` (e.g. the main branch, from ``git worktree
add``). Both run in a process of their own, so the comparison of a code change is symmetric.

Usage: python benchmarks/encoder_throughput.py [--rounds 3] [--threads 2] [--small] [--group-tokens 1024 4096]
       [--baseline-src ../main/src]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from onevision_hf import OneVisionEncoderConfig, OneVisionEncoderModel, cu_seqlens_from_lengths
from onevision_hf.modeling.rotary import apply_rotary

BASE = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=14)
SMALL = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, patch_size=14)
IMAGE_GRIDS = [(32, 32), (26, 39), (37, 28), (22, 46)]  # ~448^2 pixels each at patch 14
VIDEO_LENGTHS = [512, 1024, 1536, 2048]  # sparse codec-selected patches on a 64 x 16 x 16 grid


def make_batch(patch_dim: int):
    """Samples as (rows (L, C*p*p), positions (L, 3)) pairs; fixed seed."""
    generator = torch.Generator().manual_seed(0)
    samples = []
    for gh, gw in IMAGE_GRIDS:
        hh, ww = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        positions = torch.stack([torch.zeros_like(hh), hh, ww], -1).reshape(-1, 3)
        samples.append((torch.randn(gh * gw, patch_dim, generator=generator), positions))
    for length in VIDEO_LENGTHS:
        dense = torch.randperm(64 * 16 * 16, generator=generator)[:length].sort().values
        positions = torch.stack([dense // 256, dense % 256 // 16, dense % 16], -1)
        samples.append((torch.randn(length, patch_dim, generator=generator), positions))
    return samples


def run_packed(model, samples):
    rows = torch.cat([s[0] for s in samples])
    positions = torch.cat([s[1] for s in samples])
    cu_seqlens = cu_seqlens_from_lengths([len(s[0]) for s in samples])
    return model(pixel_values=rows, patch_positions=positions, cu_seqlens=cu_seqlens).pooler_output


def run_per_sample(model, samples):
    return torch.cat([run_packed(model, [sample]) for sample in samples])


def run_padded(model, samples):
    """Pad to (B, Lmax), run every layer batched with a key-padding mask, pool with the mask."""
    lengths = [len(s[0]) for s in samples]
    batch, longest = len(samples), max(lengths)
    rows = torch.zeros(batch, longest, samples[0][0].shape[1])
    positions = torch.zeros(batch, longest, 3, dtype=torch.long)
    for i, (sample_rows, sample_positions) in enumerate(samples):
        rows[i, : lengths[i]], positions[i, : lengths[i]] = sample_rows, sample_positions
    keep = torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]  # (B, Lmax)
    mask = keep[:, None, None, :]  # (B, 1, 1, Lmax)
    hidden = model.layernorm_pre(model.embeddings(rows.reshape(batch * longest, -1))).view(batch, longest, -1)
    cos, sin = model.rotary(positions.reshape(-1, 3))
    for layer in model.encoder.layers:
        attn = layer.self_attn
        normed = layer.layer_norm1(hidden).reshape(batch * longest, -1)
        shape = (batch * longest, attn.num_heads, attn.head_dim)
        q = apply_rotary(attn.q_proj(normed).view(shape), cos, sin)
        k = apply_rotary(attn.k_proj(normed).view(shape), cos, sin)
        v = attn.v_proj(normed).view(shape)
        q, k, v = (t.view(batch, longest, attn.num_heads, attn.head_dim).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)  # (B, H, Lmax, Dh)
        hidden = hidden + attn.out_proj(out.transpose(1, 2).reshape(batch, longest, -1))
        hidden = hidden + layer.mlp(layer.layer_norm2(hidden))
    hidden = model.layernorm_post(hidden)
    head = model.head
    pooled = head.attention(head.probe.expand(batch, -1, -1), hidden, hidden, key_padding_mask=~keep,
                            need_weights=False)[0][:, 0]
    return pooled + head.mlp(head.norm(pooled))


VARIANTS = {"packed": run_packed, "per-sample": run_per_sample, "padded": run_padded}


def packed_with_group_tokens(group_tokens: int):
    def run(model, samples):
        default = model.encoder.cpu_group_tokens
        model.encoder.cpu_group_tokens = group_tokens
        try:
            return run_packed(model, samples)
        finally:
            model.encoder.cpu_group_tokens = default

    return run


def build(small: bool):
    torch.manual_seed(0)
    config = OneVisionEncoderConfig(**(SMALL if small else BASE))
    model = OneVisionEncoderModel(config).eval()
    return model, make_batch(config.num_channels * config.patch_size**2)


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def forward_peak_memory(fn, model, samples) -> float:
    """Peak resident memory (MB) above the level before the call, sampled every millisecond."""
    before, peak, running = resident_mb(), [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], resident_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn(model, samples)
    finally:
        running[0] = False
        sampler.join()
    return max(peak[0], resident_mb()) - before


class PackedWorker:
    """The packed call run by the package found in ``src``, in a worker process driven over a pipe."""

    def __init__(self, src: str, weights: str, small: bool, threads: int):
        command = [sys.executable, __file__, "--packed-worker", weights, "--threads", str(threads)]
        environment = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
        self.process = subprocess.Popen(command + (["--small"] if small else []), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=environment)

    def ask(self, request: str) -> str:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def serve_packed(weights: str, small: bool):
    """Worker side of `PackedWorker`: "run" times one packed forward, "pooled PATH" saves its output."""
    from safetensors.torch import load_file, save_file

    model, samples = build(small)
    model.load_state_dict(load_file(weights))
    with torch.inference_mode():
        run_packed(model, samples)  # warm-up
        for request in sys.stdin:
            if request.startswith("pooled"):
                save_file({"pooled": run_packed(model, samples)}, request.split()[1])
                print("saved", flush=True)
            else:
                start = time.perf_counter()
                run_packed(model, samples)
                print(time.perf_counter() - start, flush=True)


def measure_peak_rss(variant: str, small: bool, threads: int, group_tokens: list[str]) -> float:
    """Working memory (MB) of one forward of ``variant`` in a fresh process."""
    command = [sys.executable, __file__, "--memory-probe", variant, "--threads", str(threads),
               "--group-tokens", *group_tokens] + (["--small"] if small else [])
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)["peak_rss_mb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="a tiny config, to check the script quickly")
    parser.add_argument("--group-tokens", type=int, nargs="*", default=[], help="extra packed variants")
    parser.add_argument("--baseline-src", help="another checkout's src/ to time the packed call of, side by side")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    parser.add_argument("--packed-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    VARIANTS.update({f"packed, groups of {g}": packed_with_group_tokens(g) for g in args.group_tokens})
    torch.set_num_threads(args.threads)
    if args.packed_worker:
        serve_packed(args.packed_worker, args.small)
        return
    model, samples = build(args.small)
    if args.memory_probe:
        with torch.inference_mode():
            print(json.dumps({"peak_rss_mb": forward_peak_memory(VARIANTS[args.memory_probe], model, samples)}))
        return

    useful_tokens = sum(len(s[0]) for s in samples)
    padded_tokens = len(samples) * max(len(s[0]) for s in samples)
    times = {name: [] for name in VARIANTS}
    scratch = tempfile.TemporaryDirectory()
    workers = {}
    if args.baseline_src:
        from safetensors.torch import load_file, save_file

        weights = os.path.join(scratch.name, "weights.safetensors")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
        this_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
        sources = {"packed (worker, this checkout)": this_src, "packed (worker, baseline)": args.baseline_src}
        for name, src in sources.items():
            workers[name] = PackedWorker(src, weights, args.small, args.threads)
            times[name] = []
    with torch.inference_mode():
        reference = run_packed(model, samples)
        for name, fn in VARIANTS.items():  # warm-up, and all variants agree
            torch.testing.assert_close(fn(model, samples), reference, atol=1e-4, rtol=1e-4)
        for worker in workers.values():
            pooled = os.path.join(scratch.name, "pooled.safetensors")
            worker.ask(f"pooled {pooled}")
            torch.testing.assert_close(load_file(pooled)["pooled"], reference, atol=1e-4, rtol=1e-4)
        for _ in tqdm(range(args.rounds), desc="rounds"):
            for name, fn in VARIANTS.items():
                start = time.perf_counter()
                fn(model, samples)
                times[name].append(time.perf_counter() - start)
            for name, worker in workers.items():
                times[name].append(float(worker.ask("run")))
    for worker in workers.values():
        worker.close()
    memory = {name: measure_peak_rss(name, args.small, args.threads, [str(g) for g in args.group_tokens])
              for name in tqdm(VARIANTS, desc="memory")}
    memory.update({name: float("nan") for name in workers})

    best = {name: min(values) for name, values in times.items()}
    print(f"\nbatch: {len(samples)} samples, {useful_tokens} useful tokens ({padded_tokens} when padded), "
          f"{'small' if args.small else 'base'} config, {args.threads} threads, best of {args.rounds} rounds")
    print("| variant | useful tokens/s vs padded | time vs packed | forward memory vs padded | forward memory (MB) |")
    print("|---|---|---|---|---|")
    for name in times:
        print(f"| {name} | {best['padded'] / best[name]:.2f}x | {best[name] / best['packed']:.2f}x | "
              f"{memory[name] / memory['padded']:.2f}x | {memory[name]:.0f} |")
    if workers:
        this, baseline = (min(times[name]) for name in workers)
        print(f"\nthis checkout's packed call takes {this / baseline:.2f}x the baseline's time "
              f"(best of {args.rounds}; per round: "
              f"{', '.join(f'{a / b:.2f}x' for a, b in zip(*(times[name] for name in workers)))})")


if __name__ == "__main__":
    main()
