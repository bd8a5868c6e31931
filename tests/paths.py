"""Locations of the repository's bundled test data (tests never read ../shared)."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TINY_ENCODER = ASSETS / "reference-encoder" / "tiny-encoder"
MEDIA = ASSETS / "media"
