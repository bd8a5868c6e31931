"""A direct, slow, obviously-correct OneVision-Encoder forward written from `shared/specs/encoder.md`.

It shares no code with the package: Conv2d patch embedding on whole frames, one sample at a time, the
rotary angles built axis by axis, attention as matmul/softmax, pooling with `nn.MultiheadAttention` itself.
The golden fixtures validate it (`test_reference_implementation_matches_released_goldens`), and it then checks
the package on inputs and configs the fixtures do not cover.
"""

import torch
import torch.nn.functional as F


def _norm(x, params, prefix, eps):
    weight = params[f"{prefix}.weight"]
    bias = params.get(f"{prefix}.bias")
    if bias is None:  # rms_norm
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
    return F.layer_norm(x, weight.shape, weight, bias, eps)


def _rotary_angles(positions, head_dim, theta):
    half = head_dim // 2
    unit = half // 16
    parts = []
    for axis, size in enumerate((4 * unit, 6 * unit, 6 * unit)):
        inv = 1.0 / theta ** (torch.arange(size, dtype=torch.float32) / size)
        parts.append(positions[:, axis : axis + 1].float() * inv)
    angles = torch.cat(parts, dim=-1)
    return torch.cat([angles, angles], dim=-1)  # (L, head_dim)


def _rotate(x):
    out = torch.empty_like(x)
    out[..., 0::2] = -x[..., 1::2]
    out[..., 1::2] = x[..., 0::2]
    return out


def reference_forward(params, config, pixel_values, visible_indices=None, patch_positions=None):
    """Upstream-style call on a batch; returns (last_hidden_state, pooler_output or None, hidden_states)."""
    p = config.patch_size
    if pixel_values.dim() == 4:
        pixel_values = pixel_values.unsqueeze(2)
    batch, _, frames, height, width = pixel_values.shape
    gh, gw = height // p, width // p
    heads, head_dim = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    eps = config.layer_norm_eps
    outputs = []
    for b in range(batch):
        tokens = []
        for t in range(frames):
            emb = F.conv2d(pixel_values[b : b + 1, :, t], params["embeddings.patch_embedding.weight"], stride=p)
            tokens.append(emb.flatten(2).transpose(1, 2)[0])  # (gh*gw, D)
        x = _norm(torch.cat(tokens), params, "layernorm_pre", eps)
        index = torch.arange(x.shape[0]) if visible_indices is None else visible_indices[b].long()
        x = x[index]
        if patch_positions is not None:
            positions = patch_positions[b]
        else:
            positions = torch.stack([index // (gh * gw), (index % (gh * gw)) // gw, index % gw], dim=-1)
        angles = _rotary_angles(positions, head_dim, config.rope_theta)
        cos, sin = angles.cos()[:, None], angles.sin()[:, None]
        hidden = [x]
        for i in range(config.num_hidden_layers):
            pre = f"encoder.layers.{i}"
            h = _norm(x, params, f"{pre}.layer_norm1", eps)
            q, k, v = (F.linear(h, params[f"{pre}.self_attn.{n}_proj.weight"], params[f"{pre}.self_attn.{n}_proj.bias"])
                       .view(-1, heads, head_dim) for n in "qkv")
            q = q * cos + _rotate(q) * sin
            k = k * cos + _rotate(k) * sin
            scores = torch.einsum("qhd,khd->hqk", q, k) * head_dim**-0.5
            attn = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(x.shape)
            x = x + F.linear(attn, params[f"{pre}.self_attn.out_proj.weight"], params[f"{pre}.self_attn.out_proj.bias"])
            h = _norm(x, params, f"{pre}.layer_norm2", eps)
            h = F.linear(F.gelu(F.linear(h, params[f"{pre}.mlp.fc1.weight"], params[f"{pre}.mlp.fc1.bias"])),
                         params[f"{pre}.mlp.fc2.weight"], params[f"{pre}.mlp.fc2.bias"])
            x = x + h
            hidden.append(x)
        pooled = None
        if config.use_head:
            x = _norm(x, params, "layernorm_post", eps)
            mha = torch.nn.MultiheadAttention(config.hidden_size, heads, batch_first=True)
            prefix = "head.attention."
            mha.load_state_dict({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})
            a = mha(params["head.probe"], x[None], x[None], need_weights=False)[0]
            n = a * torch.rsqrt(a.pow(2).mean(-1, keepdim=True) + eps) * params["head.norm.weight"]
            y = a + F.linear(F.gelu(F.linear(n, params["head.mlp.fc1.weight"], params["head.mlp.fc1.bias"])),
                             params["head.mlp.fc2.weight"], params["head.mlp.fc2.bias"])
            pooled = y[0, 0]
        outputs.append((x, pooled, hidden))
    last = torch.stack([o[0] for o in outputs])
    pooled = torch.stack([o[1] for o in outputs]) if config.use_head else None
    hidden_states = tuple(torch.stack([o[2][i] for o in outputs]) for i in range(config.num_hidden_layers + 1))
    return last, pooled, hidden_states
