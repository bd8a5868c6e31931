"""Which exact CPU kernel should run packed (cu_seqlens) attention? Measured side by side in one run.

Candidates, all computing the same bidirectional per-sample attention on (N, H, Dh) rows:
  loop        the package's `packed_attention` with transformers' sdpa kernel, as the encoder calls it on CPU: one
              SDPA call per sample on unpadded rows (its "per_sample" layout)
  blockdiag   one SDPA call over all N rows with a block-diagonal boolean mask
  padded      pad to (B, H, Lmax, Dh), one SDPA call with a key-padding mask, unpad
  nested      nested (jagged) tensors through SDPA

Usage: python benchmarks/packed_attention_kernels.py [--repeats 5] [--threads 2]
Prints time per call relative to `loop` (lower is better) and the max abs difference to `loop`.
"""

import argparse
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from onevision_hf.modeling.packed_attention import PackedSequences, packed_attention, split_lengths
from onevision_hf.modeling.packing import cu_seqlens_from_lengths

SDPA_MODULE = SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa"), is_causal=False, training=False)

SCENARIOS = {
    "mixed (4 images ~448^2, 4 sparse videos 512-2048)": [1024, 1120, 960, 1056, 512, 2048, 1024, 1536],
    "dense video batch (8 x 1024)": [1024] * 8,
    "many small (32 x 64..256)": [64 + 6 * i for i in range(32)],
}


def loop(q, k, v, cu, scale):
    sequences = PackedSequences.from_cu_seqlens(cu, q.shape[0])
    return packed_attention(sdpa_attention_forward, SDPA_MODULE, q, k, v, sequences, scale, 0.0)[0]


def blockdiag(q, k, v, cu, scale):
    sample = torch.repeat_interleave(torch.arange(len(cu) - 1), torch.diff(cu).long())
    mask = sample[:, None] == sample[None, :]
    out = F.scaled_dot_product_attention(*(t.transpose(0, 1)[None] for t in (q, k, v)), attn_mask=mask, scale=scale)
    return out[0].transpose(0, 1)


def padded(q, k, v, cu, scale):
    lengths = split_lengths(cu)
    lmax, batch = max(lengths), len(lengths)
    def pad(t):
        out = t.new_zeros(batch, lmax, *t.shape[1:])
        for i, part in enumerate(t.split(lengths)):
            out[i, : len(part)] = part
        return out.transpose(1, 2)  # (B, H, Lmax, Dh)
    keep = torch.arange(lmax)[None, :] < torch.tensor(lengths)[:, None]
    out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=keep[:, None, None, :], scale=scale)
    out = out.transpose(1, 2)
    return torch.cat([out[i, :n] for i, n in enumerate(lengths)])


def nested(q, k, v, cu, scale):
    offsets = cu.long()
    def nt(t):
        return torch.nested.nested_tensor_from_jagged(t, offsets).transpose(1, 2)  # (B, H, j, Dh)
    out = F.scaled_dot_product_attention(nt(q), nt(k), nt(v), scale=scale)
    return out.transpose(1, 2).values()


KERNELS = {"loop": loop, "blockdiag": blockdiag, "padded": padded, "nested": nested}


def timed(fn, args, repeats):
    fn(*args)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-dim", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"| scenario | {' | '.join(KERNELS)} |\n|---|{'---|' * len(KERNELS)}")
    for name, lengths in tqdm(SCENARIOS.items(), desc="scenarios", leave=False):
        cu = cu_seqlens_from_lengths(lengths)
        q, k, v = (torch.randn(sum(lengths), args.heads, args.head_dim) for _ in range(3))
        scale = args.head_dim**-0.5
        reference = loop(q, k, v, cu, scale)
        with torch.no_grad():
            base = timed(loop, (q, k, v, cu, scale), args.repeats)
            cells = []
            for kernel in KERNELS.values():
                try:
                    error = (kernel(q, k, v, cu, scale) - reference).abs().max().item()
                    ratio = timed(kernel, (q, k, v, cu, scale), args.repeats) / base
                    cells.append(f"{ratio:.2f}x (err {error:.0e})")
                except RuntimeError as exc:  # a kernel the installed torch cannot run on CPU
                    cells.append(f"n/a ({str(exc).splitlines()[0][:40]})")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
