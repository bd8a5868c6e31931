"""The packed (variable-length) input format of the encoder, and the conversion from upstream-style input.

Packed format, one row per patch for a whole batch, no padding:

* ``pixel_values``   (N, C*p*p) float, each row one patch flattened in (C, p_h, p_w) order;
* ``patch_positions`` (N, 3)    integer (t, h, w) of each patch;
* ``cu_seqlens``      (B+1,)    int32 cumulative sample lengths, ``cu_seqlens[0] == 0`` and ``cu_seqlens[-1] == N``.

Upstream style (the released code's) is ``pixel_values`` (B, C, H, W) or (B, C, T, H, W) with optional
``visible_indices`` (B, L) into the dense (t, h, w) token layout and optional ``patch_positions`` (B, L, 3).
`pack_upstream_inputs` turns it into the packed format so both styles run through one code path.
"""

from dataclasses import dataclass

import torch

from ..errors import OneVisionInputError


@dataclass
class PackedVisionInputs:
    """Keyword arguments of a packed encoder call (``model(**packed.to_kwargs())``)."""

    pixel_values: torch.Tensor
    patch_positions: torch.Tensor
    cu_seqlens: torch.Tensor

    def to_kwargs(self) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixel_values, "patch_positions": self.patch_positions,
                "cu_seqlens": self.cu_seqlens}


def cu_seqlens_from_lengths(lengths, device=None) -> torch.Tensor:
    """(B,) sample lengths -> (B+1,) int32 cumulative offsets starting at 0."""
    lengths = torch.as_tensor(lengths, dtype=torch.int32, device=device)
    return torch.nn.functional.pad(torch.cumsum(lengths, 0, dtype=torch.int32), (1, 0))


def concat_packed(parts: list[PackedVisionInputs]) -> PackedVisionInputs:
    """Packed batches -> one packed batch holding all their samples in order."""
    if len(parts) == 1:
        return parts[0]
    lengths = torch.cat([part.cu_seqlens[1:] - part.cu_seqlens[:-1] for part in parts])
    return PackedVisionInputs(
        pixel_values=torch.cat([part.pixel_values for part in parts]),
        patch_positions=torch.cat([part.patch_positions.to(parts[0].patch_positions.device) for part in parts]),
        cu_seqlens=cu_seqlens_from_lengths(lengths, device=parts[0].cu_seqlens.device),
    )


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T*h*w, C*p*p), tokens frame-major then row-major, rows in (C, p, p) order."""
    batch, channels, frames, height, width = pixel_values.shape
    if height % patch_size or width % patch_size:
        raise OneVisionInputError(
            f"pixel_values height and width ({height} x {width}) must be multiples of patch_size {patch_size}; "
            "resize or crop the input (the processors do this for you)."
        )
    h, w = height // patch_size, width // patch_size
    patches = pixel_values.reshape(batch, channels, frames, h, patch_size, w, patch_size)
    patches = patches.permute(0, 2, 3, 5, 1, 4, 6)  # (B, T, h, w, C, p, p)
    return patches.reshape(batch, frames * h * w, channels * patch_size * patch_size)


def dense_grid_positions(indices: torch.Tensor, grid_height: int, grid_width: int) -> torch.Tensor:
    """Indices into a dense (t, h, w) row-major token layout -> (..., 3) positions (t, h, w)."""
    per_frame = grid_height * grid_width
    return torch.stack((indices // per_frame, (indices % per_frame) // grid_width, indices % grid_width), dim=-1)


def _check_tensor(name: str, value) -> None:
    """Lists and numpy arrays are refused by name, not by an AttributeError deep inside the model."""
    if not isinstance(value, torch.Tensor):
        raise OneVisionInputError(
            f"{name} must be a torch.Tensor, got {type(value).__name__} (convert it with torch.as_tensor)."
        )


def _check_integer_tensor(name: str, tensor: torch.Tensor) -> None:
    _check_tensor(name, tensor)
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise OneVisionInputError(f"{name} must be an integer tensor, got dtype {tensor.dtype}.")


def _check_pixel_values(pixel_values, num_channels: int | None, channel_dim: int) -> None:
    _check_tensor("pixel_values", pixel_values)
    if pixel_values.numel() == 0:
        raise OneVisionInputError(f"pixel_values is empty (shape {tuple(pixel_values.shape)}).")
    if num_channels is not None and pixel_values.dim() in (4, 5) and pixel_values.shape[channel_dim] != num_channels:
        raise OneVisionInputError(
            f"pixel_values has {pixel_values.shape[channel_dim]} channels (dim {channel_dim} of shape "
            f"{tuple(pixel_values.shape)}); the encoder's config has num_channels={num_channels}."
        )


def pack_upstream_inputs(
    pixel_values: torch.Tensor,
    patch_size: int,
    visible_indices: torch.Tensor | None = None,
    patch_positions: torch.Tensor | None = None,
    num_channels: int | None = None,
) -> PackedVisionInputs:
    """Upstream-style input (4-D image or 5-D video batch, optional indices/positions) -> packed format;
    ``num_channels`` (the encoder config's) is checked when given."""
    _check_pixel_values(pixel_values, num_channels, channel_dim=1)
    if pixel_values.dim() == 4:
        pixel_values = pixel_values.unsqueeze(2)  # (B, C, 1, H, W)
    elif pixel_values.dim() != 5:
        raise OneVisionInputError(
            "pixel_values must be (B, C, H, W), (B, C, T, H, W), or packed (N, C*p*p) with cu_seqlens; "
            f"got shape {tuple(pixel_values.shape)}."
        )
    batch, _, _, height, width = pixel_values.shape
    tokens = patchify(pixel_values, patch_size)  # (B, T*h*w, C*p*p)
    num_dense = tokens.shape[1]
    grid_h, grid_w = height // patch_size, width // patch_size

    if visible_indices is None:
        indices = torch.arange(num_dense, device=tokens.device).expand(batch, num_dense)
    else:
        _check_integer_tensor("visible_indices", visible_indices)
        if visible_indices.dim() != 2 or visible_indices.shape[0] != batch or visible_indices.shape[1] == 0:
            raise OneVisionInputError(
                f"visible_indices must be (B, L) with B = {batch} and L >= 1, got shape "
                f"{tuple(visible_indices.shape)}."
            )
        if (visible_indices.numel() and not torch.compiler.is_compiling()
                and (visible_indices.min() < 0 or visible_indices.max() >= num_dense)):
            raise OneVisionInputError(
                f"visible_indices must lie in [0, {num_dense}) (the input has {num_dense} dense patches), got "
                f"values in [{int(visible_indices.min())}, {int(visible_indices.max())}]."
            )
        indices = visible_indices.to(device=tokens.device, dtype=torch.long)
        tokens = torch.gather(tokens, 1, indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))

    length = indices.shape[1]
    if patch_positions is None:
        positions = dense_grid_positions(indices, grid_h, grid_w)
    else:
        _check_integer_tensor("patch_positions", patch_positions)
        if patch_positions.dim() != 3 or patch_positions.shape[-1] != 3:
            raise OneVisionInputError(
                f"patch_positions must be (B, L, 3) rows of (t, h, w), got shape {tuple(patch_positions.shape)}."
            )
        if tuple(patch_positions.shape[:2]) != (batch, length):
            raise OneVisionInputError(
                f"patch_positions has {tuple(patch_positions.shape[:2])} (B, L) but the input has {batch} samples "
                f"of {length} tokens each."
            )
        if patch_positions.numel() and int(patch_positions.min()) < 0:
            raise OneVisionInputError("patch_positions must be non-negative (t, h, w) grid coordinates.")
        positions = patch_positions
    return PackedVisionInputs(
        pixel_values=tokens.reshape(batch * length, -1),
        patch_positions=positions.reshape(batch * length, 3),
        cu_seqlens=torch.arange(batch + 1, dtype=torch.int32, device=tokens.device) * length,  # B samples of L
    )


def check_packed_inputs(pixel_values: torch.Tensor, patch_positions: torch.Tensor, cu_seqlens: torch.Tensor,
                        patch_dim: int) -> None:
    """Raise `OneVisionInputError` naming the first thing wrong with a packed call."""
    _check_pixel_values(pixel_values, None, channel_dim=1)
    if pixel_values.dim() != 2 or pixel_values.shape[1] != patch_dim:
        raise OneVisionInputError(
            f"packed pixel_values must be (N, C*p*p) = (N, {patch_dim}), got shape {tuple(pixel_values.shape)}."
        )
    num_tokens = pixel_values.shape[0]
    if patch_positions is None:
        raise OneVisionInputError("packed input (cu_seqlens given) needs patch_positions (N, 3).")
    check_positions(patch_positions, num_tokens)
    _check_integer_tensor("cu_seqlens", cu_seqlens)
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2:
        raise OneVisionInputError(f"cu_seqlens must be 1-D (B+1,) with B >= 1, got shape {tuple(cu_seqlens.shape)}.")
    if int(cu_seqlens[0]) != 0:
        raise OneVisionInputError(f"cu_seqlens must start at 0, got {int(cu_seqlens[0])}.")
    if bool((cu_seqlens[1:] <= cu_seqlens[:-1]).any()):
        raise OneVisionInputError(
            f"cu_seqlens must be strictly increasing (every sample at least one patch), got {cu_seqlens.tolist()}."
        )
    if int(cu_seqlens[-1]) != num_tokens:
        raise OneVisionInputError(
            f"cu_seqlens ends at {int(cu_seqlens[-1])} but pixel_values has {num_tokens} patches."
        )


def check_positions(patch_positions: torch.Tensor, num_tokens: int) -> None:
    _check_integer_tensor("patch_positions", patch_positions)
    if patch_positions.dim() != 2 or patch_positions.shape[-1] != 3:
        raise OneVisionInputError(
            f"patch_positions must be (N, 3) rows of (t, h, w), got shape {tuple(patch_positions.shape)}."
        )
    if patch_positions.shape[0] != num_tokens:
        raise OneVisionInputError(
            f"patch_positions has {patch_positions.shape[0]} rows but there are {num_tokens} patches."
        )
    if patch_positions.numel() and int(patch_positions.min()) < 0:
        raise OneVisionInputError("patch_positions must be non-negative (t, h, w) grid coordinates.")
