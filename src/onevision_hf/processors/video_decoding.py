"""Streaming video decoding with PyAV: open any source, count and sample frames, read luma, vectors and RGB.

One decode pass over the file yields `DecodedFrame` objects in display order. Nothing is converted eagerly:
the luma plane is read straight from the frame buffer (`frame_luma`, honouring ``line_size`` and bit depth),
motion vectors only when asked (`frame_motion_vectors`), RGB only for frames whose patches are used
(`frame_rgb`). Every failure to open or decode raises `OneVisionVideoError` naming the source and the problem.
"""

import errno
import io
import itertools
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from ..errors import OneVisionVideoError
from .h264_packets import avcc_length_size, picture_kind

# Decoders that export motion vectors through ``flags2=+export_mvs`` (FFmpeg's mpegvideo family and H.264).
MOTION_VECTOR_CODECS = frozenset({"h264", "mpeg4", "h263", "h263p", "mpeg1video", "mpeg2video", "msmpeg4v2",
                                  "msmpeg4v3", "wmv1", "wmv2", "flv"})
# Of those, the codecs whose B-pictures are never references (MPEG-1/2, MPEG-4 part 2, H.263: nothing is predicted
# from a B-picture; H.264's B-frames may be, its packets say which: `h264_packets`)
UNREFERENCED_B_CODECS = MOTION_VECTOR_CODECS - {"h264"}
_LUMA_FIRST_FORMATS = ("yuv", "yuvj", "yuva", "gray", "nv12", "nv21")
PICTURE_TYPE_I, PICTURE_TYPE_B = 1, 3
BT601_LUMA = (0.299, 0.587, 0.114)
# Demuxers of single-file video containers and elementary streams: what FFmpeg may use for any source. Playlists,
# concat lists, manifests, image sequences and network descriptions (hls, concat, dash, image2, sdp, ...) are left
# out: they open other files or URLs. Names as FFmpeg's format_whitelist matches them (mov covers mp4, 3gp, ...).
SELF_CONTAINED_DEMUXERS = ("mov", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg", "nut", "mxf",
                           "gxf", "dv", "ivf", "obu", "h261", "h263", "h264", "hevc", "vvc", "m4v", "mpegvideo",
                           "mjpeg", "cavsvideo", "dirac", "vc1", "yuv4mpegpipe", "rm", "wtv", "gif", "apng")
ANIMATED_IMAGE_DEMUXERS = ("gif", "apng")  # of those, image formats: one frame is a still image, not a video
PLAYLIST_DEMUXERS = ("hls", "concat")  # only for `LocalPlaylist`
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # a path that is a URL (http://, rtsp://, s3://, ...)
_REFERENCE_SIGNATURES = ((b"#EXTM3U", "an HLS playlist"), (b"ffconcat", "an FFmpeg concat list"),
                         (b"<MPD", "a DASH manifest"), (b"v=0", "an SDP session description"))


@dataclass(frozen=True)
class VideoStreamInfo:
    """What is known about a video stream before decoding it."""

    name: str  # how messages refer to the source (file path or "<bytes>")
    codec: str
    frame_count: int  # frames the stream holds: header count, or video packets counted by a demux pass
    frame_count_source: str  # "header" or "packets"
    exports_motion_vectors: bool
    fps: float | None = None  # the stream's average frame rate, when the container states one


def display_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0-3) that bring the frame upright, from its display-matrix side data."""
    for side_data in frame.side_data:
        if side_data.type.name == "DISPLAYMATRIX":
            matrix = np.frombuffer(bytes(side_data), dtype=np.int32, count=9)
            degrees = -math.degrees(math.atan2(matrix[1], matrix[0]))  # as av_display_rotation_get
            return round(degrees / 90) % 4
    return 0


_per_thread = threading.local()


def _thread_reformatter() -> VideoReformatter:
    """This thread's swscale converter: kept across frames, it reuses its conversion context (``to_ndarray``
    builds a new one per call, about 3x the cost of the conversion itself); never shared between threads."""
    if not hasattr(_per_thread, "reformatter"):
        _per_thread.reformatter = VideoReformatter()
    return _per_thread.reformatter


def frame_luma(frame: av.VideoFrame) -> np.ndarray:
    """(H, W) uint8 luma in coded orientation, read from the frame buffer without a conversion when possible
    (`luma_in_place`). A format without an 8-bit luma plane is converted by this thread's swscale context
    (`_thread_reformatter`), never by the frame's own ``reformat``: that keeps one context per frame, which two
    threads reading a shared reference frame then drive at once, and swscale's worker threads deadlock on it
    (a PNG-in-MOV clip hung its selection within a few hundred runs)."""
    fmt = frame.format
    component = fmt.components[0]
    if not _luma_first(fmt):
        frame = _thread_reformatter().reformat(frame, format="gray")
        fmt, component = frame.format, frame.format.components[0]
    plane = frame.planes[0]
    itemsize = 1 if component.bits <= 8 else 2
    dtype = np.dtype(np.uint8) if itemsize == 1 else np.dtype(">u2" if fmt.is_big_endian else "<u2")
    rows = np.frombuffer(plane, dtype=dtype, count=plane.line_size // itemsize * plane.height)
    luma = rows.reshape(plane.height, plane.line_size // itemsize)[:, :plane.width]  # (H, W) view, no copy
    if itemsize == 2:
        luma = (luma >> (component.bits - 8)).astype(np.uint8)
    return luma


def _luma_first(fmt: av.VideoFormat) -> bool:
    """Whether the format's first plane is its luma (YUV and gray formats)."""
    return fmt.name.startswith(_LUMA_FIRST_FORMATS) and not fmt.is_rgb and fmt.components[0].plane == 0


def luma_in_place(frame: av.VideoFrame) -> bool:
    """Whether `frame_luma` reads the frame's own 8-bit luma plane (a view, no conversion)."""
    return _luma_first(frame.format) and frame.format.components[0].bits <= 8


@dataclass
class DecodedFrame:
    """One decoded frame in display order; readers view the PyAV frame's buffers, converting nothing eagerly."""

    index: int
    frame: av.VideoFrame
    is_reference: bool = True  # whether other pictures may be predicted from it (`h264_packets`)
    # arrays computed from the frame once for every sampled frame that reads it, by what computed them
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_intra(self) -> bool:
        return int(self.frame.pict_type) == PICTURE_TYPE_I

    @property
    def is_anchor(self) -> bool:
        """Whether later frames predict from it (I or P; B-frames are skipped as past references)."""
        return int(self.frame.pict_type) != PICTURE_TYPE_B

    @property
    def is_keyframe(self) -> bool:
        """Whether no later frame refers to a frame before it (an IDR picture or a recovery point)."""
        return bool(self.frame.key_frame)

    def rotation(self) -> int:
        return display_rotation(self.frame)

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded planes and the `derived` arrays this frame holds (kept alive while it is
        referenced; a derived view of a plane counts twice: an upper bound)."""
        return (sum(plane.buffer_size for plane in self.frame.planes)
                + sum(array.nbytes for array in self.derived.values()))

    def luma(self) -> np.ndarray:
        """(H, W) uint8 luma (`frame_luma`): a view of the frame's plane, or, for a format that needs converting
        (RGB, palette, more than 8 bits), converted once and kept in `derived` for every reader of the frame."""
        if luma_in_place(self.frame):
            return frame_luma(self.frame)
        luma = self.derived.get("luma")
        if luma is None:
            luma = self.derived["luma"] = frame_luma(self.frame)
        return luma

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB in coded orientation (any pixel format, any bit depth)."""
        return _thread_reformatter().reformat(self.frame, format="rgb24").to_ndarray()

    def motion_vectors(self) -> np.ndarray | None:
        """The frame's exported motion vectors as a structured array, or None when it carries none."""
        for side_data in self.frame.side_data:
            if side_data.type.name == "MOTION_VECTORS":
                return side_data.to_ndarray()
        return None


@dataclass
class ArrayFrame:
    """An already-decoded (H, W, 3) uint8 RGB frame, read through the `DecodedFrame` interface."""

    index: int
    pixels: np.ndarray
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # as `DecodedFrame.derived`
    is_intra = False
    is_anchor = True
    is_keyframe = False
    is_reference = True
    nbytes = 0  # the caller's array: holding it costs nothing more

    def rotation(self) -> int:
        return 0

    def luma(self) -> np.ndarray:
        """(H, W) uint8 BT.601 luma, converted once (every reader of the frame gets the same array)."""
        luma = self.derived.get("luma")
        if luma is None:
            weights = np.array(BT601_LUMA, dtype=np.float32)
            luma = np.clip(self.pixels.astype(np.float32) @ weights + 0.5, 0, 255).astype(np.uint8)
            self.derived["luma"] = luma
        return luma

    def rgb(self) -> np.ndarray:
        return self.pixels

    def motion_vectors(self) -> None:
        return None


class LocalPlaylist(os.PathLike):
    """A local playlist (HLS ``.m3u8``, FFmpeg concat list) whose listed *local* files the caller allows to be read.

    Plain paths, bytes and file objects are read as self-contained files: a playlist among them is refused.
    Wrapping a path in `LocalPlaylist` is the explicit opt-in; the files it lists are opened only when they are
    regular local files (never a network URL, a device or another protocol).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(path))

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"LocalPlaylist({self.path!r})"


def source_name(video) -> str:
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video)} bytes>"
    name = getattr(video, "name", None)
    if isinstance(name, int):  # os.fdopen / open(fd): the name is the descriptor
        return f"<file descriptor {name}>"
    return str(name or f"<{type(video).__name__}>")


def open_container(video) -> av.container.InputContainer:
    """Open a path, bytes or binary file object; raise `OneVisionVideoError` unless it holds a video stream.

    The source is read as one self-contained local file: FFmpeg may open nothing else (no network protocol, no
    file a playlist, concat list, image pattern or manifest refers to) and only the demuxers of
    `SELF_CONTAINED_DEMUXERS` are used; `LocalPlaylist` opts in to playlists of local files.
    """
    name = source_name(video)
    playlist = isinstance(video, LocalPlaylist)
    source = _readable_source(video, name)
    demuxers = SELF_CONTAINED_DEMUXERS + (PLAYLIST_DEMUXERS if playlist else ())
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(demuxers)}
    # A plain path is read by FFmpeg's own file protocol (the whitelists bound what it may open); for file objects,
    # bytes and playlists every open FFmpeg asks for goes through the guard.
    guard = None if isinstance(source, str) and not playlist else _NestedOpenGuard(
        name, source if playlist else None, allow_local_files=playlist)
    try:
        container = av.open(source, mode="r", options=options, io_open=guard)
    except OneVisionVideoError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, OSError) as error:  # OSError: a file object's read or seek
        refused_format = getattr(error, "errno", None) == errno.EINVAL  # the demuxer is not on format_whitelist
        reason = _describe_unreadable_format(video, refused_format)
        raise OneVisionVideoError(f"{name}: cannot be opened as a video: {reason or error}.") from error
    if guard is not None and guard.refused is not None:  # refused, but FFmpeg carried on without it
        container.close()
        raise guard.error()
    if not any(not _attached_picture(stream) for stream in container.streams.video):
        kinds = ", ".join(sorted({"an attached picture (cover art)" if _attached_picture(stream) else stream.type
                                  for stream in container.streams})) or "no streams"
        container.close()
        raise OneVisionVideoError(f"{name}: has no video stream (found: {kinds}).")
    return container


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The stream a video is read from: the one FFmpeg's own tools play (``av_find_best_stream``), never an
    attached picture (the cover art a file may carry as a one-frame video stream, listed first in some
    files); `open_container` has checked that there is one."""
    best = container.streams.best("video")
    if best is not None and not _attached_picture(best):
        return best
    return next(stream for stream in container.streams.video if not _attached_picture(stream))


def _attached_picture(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _readable_source(video, name: str):
    """The path (checked to be a regular file) or seekable binary file object that FFmpeg reads."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(video))
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
        if not os.path.exists(path):
            if isinstance(path, str) and _URL.match(path):
                raise OneVisionVideoError(f"{name}: is a URL; only local video files are read (no network "
                                          "access): download it first.")
            raise OneVisionVideoError(f"{name}: no such video file.")
        if not os.path.isfile(path):
            raise OneVisionVideoError(f"{name}: is not a regular file (a folder, pipe or device); pass a video file.")
        return os.path.abspath(path)
    if isinstance(video, io.TextIOBase):
        raise OneVisionVideoError(f"{name}: is a text-mode file object; open it in binary mode ('rb').")
    if not hasattr(video, "read"):
        raise OneVisionVideoError(f"{name}: is a {type(video).__name__}, not a path, bytes or a binary file object.")
    seekable = getattr(video, "seekable", None)
    if not hasattr(video, "seek") or (seekable is not None and not seekable()):
        raise OneVisionVideoError(
            f"{name}: is not seekable (a pipe or a socket?); the video is read twice (probe, then decode): "
            "save it to a file or pass its bytes."
        )
    video.seek(0)
    return video


class _NestedOpenGuard:
    """PyAV's ``io_open``: FFmpeg asks it for every file it opens. It refuses every resource (remembering the first
    one), except for a `LocalPlaylist`: the playlist itself and the regular local files it lists."""

    def __init__(self, name: str, path: str | None, allow_local_files: bool):
        self.name, self.path, self.allow_local_files = name, path, allow_local_files
        self.refused: str | None = None

    def __call__(self, url: str, flags: int, options: dict):
        local = url[len("file:"):] if url.startswith("file:") else url
        if self.path is not None and local == self.path:
            self.path = None  # the source itself, opened once
            return open(local, "rb")
        if self.allow_local_files and not _URL_SCHEME.match(url.removeprefix("file:")) and os.path.isfile(local):
            return open(local, "rb")
        if self.refused is None:
            self.refused = url
        raise self.error()

    def error(self) -> OneVisionVideoError:
        if self.allow_local_files:
            return OneVisionVideoError(f"{self.name}: cannot be opened as a video: the playlist lists "
                                       f"{self.refused!r}, which is not a regular local file; a LocalPlaylist reads "
                                       "local files only (no network, no devices).")
        return OneVisionVideoError(
            f"{self.name}: cannot be opened as a video: it refers to another resource ({self.refused!r}); only "
            "self-contained local video files are read. A trusted local playlist can be read as "
            "onevision_hf.LocalPlaylist(path)."
        )


def _describe_unreadable_format(video, refused_format: bool) -> str | None:
    """What the source is, when its first bytes say so: a playlist or manifest, a still image, or (when FFmpeg's
    demuxer was refused) a format outside `SELF_CONTAINED_DEMUXERS`; None when they tell nothing."""
    head = _head_bytes(video)
    for signature, kind in _REFERENCE_SIGNATURES:
        if signature in head[:512]:
            return (f"it is {kind}, which refers to other files or URLs; only self-contained local video files are "
                    "read (wrap a trusted local playlist path in onevision_hf.LocalPlaylist)")
    try:
        with Image.open(io.BytesIO(head)) as image:
            if getattr(image, "n_frames", 1) > 1:  # what FFmpeg does not decode: animated WebP
                return (f"it is an animated {image.format} image ({image.n_frames} frames), which FFmpeg does not "
                        "decode; convert it to a video file, or pass its frames decoded (a (T, H, W, 3) uint8 array)")
            return _still_image(image.format)
    except Exception:  # noqa: BLE001 (not an image either)
        pass
    if refused_format:
        return f"its format is none of the video containers this package reads ({', '.join(SELF_CONTAINED_DEMUXERS)})"
    return None


def _still_image(kind: str) -> str:
    return (f"it is a still image ({kind}), not a video; pass it as an image (OneVisionImageProcessor, or images= "
            "in the LLaVA processor)")


def _head_bytes(video, size: int = 1 << 16) -> bytes:
    if isinstance(video, (bytes, bytearray, memoryview)):
        return bytes(video[:size])
    if isinstance(video, (str, os.PathLike)):
        with open(video, "rb") as file:
            return file.read(size)
    video.seek(0)
    head = video.read(size)
    video.seek(0)
    return bytes(head)


def probe_stream(video) -> VideoStreamInfo:
    """Codec and frame count of the video stream (`video_stream`); counts packets (no decoding) when the header
    has none."""
    name = source_name(video)
    with open_container(video) as container:
        stream = video_stream(container)
        codec, demuxer = stream.codec_context.name, container.format.name
        fps = float(stream.average_rate) if stream.average_rate else None
        frame_count, count_source = int(stream.frames or 0), "header"
        if frame_count <= 0:
            count_source = "packets"
            try:
                frame_count = sum(1 for packet in container.demux(stream) if packet.size)
            except av.FFmpegError as error:
                raise OneVisionVideoError(f"{name}: demuxing failed ({error}).") from error
    if frame_count <= 0:
        raise OneVisionVideoError(f"{name}: the video stream holds no frames.")
    if frame_count == 1 and demuxer in ANIMATED_IMAGE_DEMUXERS:
        raise OneVisionVideoError(f"{name}: {_still_image(demuxer.upper())}.")
    return VideoStreamInfo(name, codec, frame_count, count_source, codec in MOTION_VECTOR_CODECS, fps)


def sample_frame_indices(frame_count: int, num_frames: int) -> np.ndarray:
    """(T,) int64 decoded-frame indices floor(linspace(0, N-1, T)); all N frames when the video is shorter."""
    if frame_count <= num_frames:
        return np.arange(frame_count, dtype=np.int64)
    return np.floor(np.linspace(0, frame_count - 1, num_frames)).astype(np.int64)


class SegmentMismatch(Exception):
    """A planned decode (`decode_segments`) met other packets or frames than its plan said: decode whole."""


def decode_packets(video, export_motion_vectors: bool, start_pts: int | None = None, end_pts: int | None = None,
                   skipped: frozenset[int] = frozenset()) -> Iterator[tuple[av.VideoFrame, bool]]:
    """(frame, is a reference picture) of the video stream (`video_stream`) in display order, decoded once.

    ``start_pts``: seek to the packet with this timestamp first (`SegmentMismatch` when another comes);
    ``end_pts``: stop before the packet with this timestamp (the decoder is flushed instead); ``skipped``:
    timestamps of packets not to decode (non-reference pictures nobody reads: no other frame changes). H.264
    packets are read for `h264_packets.picture_kind`, and each frame is matched to its packet by a timestamp of
    the package's own that the packet carries through the decoder (the frame gets the packet's own back): the
    container's timestamps cannot do it where packets carry none (raw H.264) or several carry the same or only
    some carry one (MPEG program streams); the B-frames of `UNREFERENCED_B_CODECS` are non-reference pictures,
    every other frame counts as a reference."""
    name = source_name(video)
    with open_container(video) as container:
        stream = video_stream(container)
        if export_motion_vectors:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        # frame threading makes FFmpeg's exported vectors differ from run to run; slice threading (PyAV's
        # default) keeps them reproducible, so frame threads are only used when no vectors are read
        stream.thread_type = "SLICE" if export_motion_vectors else "AUTO"
        length_size = avcc_length_size(stream.codec_context.extradata)
        read_kinds = stream.codec_context.name == "h264"  # the NAL headers say which pictures are references
        unreferenced_b = stream.codec_context.name in UNREFERENCED_B_CODECS
        packet_ids = itertools.count()  # what each H.264 packet's timestamp is replaced by while it decodes
        kinds: dict[int, tuple[int | None, bool]] = {}  # packet id -> (its timestamp, a reference picture)
        if start_pts is not None:
            try:
                container.seek(start_pts, stream=stream, backward=True)
            except av.FFmpegError as error:
                raise SegmentMismatch(f"seeking to timestamp {start_pts} failed ({error})") from error
        first, decoded = start_pts is not None, 0
        try:
            for packet in container.demux(stream):
                if packet.size and first and packet.pts != start_pts:
                    raise SegmentMismatch(f"seeking reached timestamp {packet.pts}, not {start_pts}")
                first = first and not packet.size
                if end_pts is not None and packet.pts == end_pts:
                    packet = None  # the next segment's IDR picture: flush the decoder instead
                elif packet.size and packet.pts in skipped:
                    continue
                elif packet.size and read_kinds:
                    packet_id = next(packet_ids)
                    kinds[packet_id] = (packet.pts, picture_kind(bytes(packet), length_size).is_reference)
                    packet.pts = packet_id
                for frame in stream.codec_context.decode(packet):
                    decoded += 1
                    is_reference = not (unreferenced_b and int(frame.pict_type) == PICTURE_TYPE_B)
                    if read_kinds:  # the decoder carries a packet's timestamp to its frame
                        frame.pts, is_reference = kinds.pop(frame.pts, (frame.pts, True))
                    yield frame, is_reference
                if packet is None:
                    break
        except av.FFmpegError as error:
            raise OneVisionVideoError(f"{name}: decoding failed after {decoded} frames ({error}).") from error


def iter_frames(video, export_motion_vectors: bool) -> Iterator[DecodedFrame]:
    """Decode the video stream (`video_stream`) once, in display order, with motion-vector export when asked."""
    index = 0
    for index, (frame, is_reference) in enumerate(decode_packets(video, export_motion_vectors), start=1):
        yield DecodedFrame(index - 1, frame, is_reference)
    if index == 0:
        raise OneVisionVideoError(f"{source_name(video)}: no frame could be decoded.")


def upright(array: np.ndarray, quarter_turns: int) -> np.ndarray:
    """Rotate an (H, W, ...) array counter-clockwise by ``quarter_turns`` x 90 degrees."""
    return np.rot90(array, k=quarter_turns) if quarter_turns else array
