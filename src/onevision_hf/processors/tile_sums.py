"""Sums over the square tiles of an array by strided adds (block matching's costs, the energy's cell sums).

One add per column of a tile over the whole array, then one per row: several times faster than a reduction
over short reshaped axes, and always in the same order, so a float sum is the same on every call.
"""

import numpy as np


def tile_sums(values: np.ndarray, tile: int, dtype: type) -> np.ndarray:
    """(..., R * tile, C * tile) -> (..., R, C) sums over ``tile x tile`` tiles, accumulated in ``dtype``: a
    tile's columns left to right, then its rows top to bottom."""
    runs = values[..., 0::tile].astype(dtype)
    for column in range(1, tile):
        runs += values[..., column::tile]
    sums = runs[..., 0::tile, :].copy()
    for row in range(1, tile):
        sums += runs[..., row::tile, :]
    return sums
