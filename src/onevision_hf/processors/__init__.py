"""Processors: raw images and videos -> the encoder's packed patch format."""

from .image_processing_onevision import OneVisionImageProcessor

__all__ = ["OneVisionImageProcessor"]
