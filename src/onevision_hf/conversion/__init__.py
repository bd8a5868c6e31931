"""Checkpoint conversion from released layouts into this package's format."""

from .convert_llava import convert_llava_checkpoint

__all__ = ["convert_llava_checkpoint"]
