"""What an H.264 packet's NAL unit headers say about its picture, read without decoding it.

* an IDR picture (NAL type 5) resets the decoder: nothing after it refers to anything before it;
* ``nal_ref_idc == 0`` marks a non-reference picture: no other picture is predicted from it (x264's B-frames
  outside a B-pyramid, most phones' B-frames), so it is never a vector's reference and, when the selection
  does not read it, need not be decoded at all.

Packets are length-prefixed NAL units in MP4/MKV (avcC, the prefix size in the extradata) or Annex B start
codes in raw and MPEG-TS streams.
"""

from collections.abc import Iterator
from dataclasses import dataclass

SLICE_NAL_TYPES = (1, 5)  # coded slice of a non-IDR / an IDR picture
IDR_NAL_TYPE = 5


@dataclass(frozen=True)
class PictureKind:
    is_idr: bool
    is_reference: bool


def avcc_length_size(extradata: bytes | None) -> int | None:
    """Bytes of each NAL unit's length prefix in an avcC stream; None for Annex B start codes."""
    if extradata and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return None


def picture_kind(data: bytes, length_size: int | None) -> PictureKind:
    """The `PictureKind` of one packet's slices (a packet without slices counts as a reference picture)."""
    headers = [header for header in _nal_headers(data, length_size) if header & 0x1F in SLICE_NAL_TYPES]
    if not headers:
        return PictureKind(False, True)
    return PictureKind(any(header & 0x1F == IDR_NAL_TYPE for header in headers),
                       any(header >> 5 & 3 for header in headers))


def _nal_headers(data: bytes, length_size: int | None) -> Iterator[int]:
    """The first byte (forbidden bit, nal_ref_idc, nal_unit_type) of each NAL unit of a packet."""
    if length_size is None:
        position = data.find(b"\x00\x00\x01")
        while 0 <= position < len(data) - 3:
            yield data[position + 3]
            position = data.find(b"\x00\x00\x01", position + 3)
        return
    position = 0
    while position + length_size < len(data):
        size = int.from_bytes(data[position:position + length_size], "big")
        if size == 0:
            return
        yield data[position + length_size]
        position += length_size + size
