"""Every input that decodes gets a correct answer; every one that does not raises OneVisionVideoError."""

import threading

import av
import numpy as np
import pytest
from conftest import SCENE_FRAMES
from PIL import Image

from onevision_hf import OneVisionVideoError, OneVisionVideoProcessor
from onevision_hf.processors import video_selection
from onevision_hf.processors.video_decoding import DecodedFrame, iter_frames, probe_stream
from onevision_hf.synthetic_video import moving_patches, moving_recall, render_scene, write_video


@pytest.mark.parametrize("name, method", [
    ("h264.mp4", "codec-mv"),
    ("mpeg4.avi", "codec-mv"),
    ("h264-10bit.mp4", "codec-mv"),
    ("h264-vfr.mp4", "codec-mv"),
    ("hevc.mp4", "pixel-block-matching"),
    ("vp9.webm", "pixel-block-matching"),
    ("mjpeg.avi", "pixel-block-matching"),
    ("png.mov", "pixel-block-matching"),
])
def test_every_codec_finds_the_moving_object_and_says_how(video_files, moving_scene, name, method):
    selection = OneVisionVideoProcessor(num_frames=16, budget=0.25).select(video_files[name])
    assert selection.method == method
    assert (selection.fallback_reason is None) == (method == "codec-mv")
    assert selection.source_frame_count == SCENE_FRAMES
    truth = moving_patches(moving_scene, selection.frame_indices, selection.geometry)
    assert moving_recall(selection.patch_mask(), truth) >= 0.85


def test_webm_without_a_header_frame_count_is_counted_from_packets(video_files):
    info = probe_stream(video_files["vp9.webm"])
    assert (info.frame_count, info.frame_count_source) == (SCENE_FRAMES, "packets")


def test_b_frames_export_past_and_future_vectors(video_files):
    kinds = set()
    for frame in iter_frames(video_files["h264.mp4"], export_motion_vectors=True):
        vectors = frame.motion_vectors()
        if vectors is not None:
            kinds.update(np.unique(vectors["source"]).tolist())
    assert kinds == {-1, 1}


@pytest.mark.parametrize("suffix, container_format", [(".h264", "h264"), (".mpg", "mpeg")])
def test_h264_without_a_timestamp_per_packet_knows_its_reference_pictures(tmp_path, video_files, moving_scene,
                                                                          suffix, container_format):
    """A raw H.264 stream carries no timestamps, an MPEG program stream only some: each frame still learns from
    its own packet whether it is a reference picture (before, every frame of the raw stream counted as a
    non-reference one, no vector found its reference, and the moving object scored nothing: recall 0)."""
    path = tmp_path / f"h264{suffix}"
    write_video(path, moving_scene.frames, codec="libx264", options={"bf": "2"}, container_format=container_format)
    kinds = [[(frame.is_reference, int(frame.frame.pict_type)) for frame in iter_frames(source, True)]
             for source in (video_files["h264.mp4"], path)]
    assert kinds[1] == kinds[0] and not all(is_reference for is_reference, _ in kinds[0])
    selection = OneVisionVideoProcessor(num_frames=16, budget=0.25).select(path)
    assert selection.method == "codec-mv"
    truth = moving_patches(moving_scene, selection.frame_indices, selection.geometry)
    assert moving_recall(selection.patch_mask(), truth) >= 0.85


def test_ten_bit_luma_is_read_at_eight_bit_scale(video_files):
    eight, ten = (next(iter_frames(video_files[name], False)).luma() for name in ("h264.mp4", "h264-10bit.mp4"))
    assert ten.dtype == np.uint8 and ten.shape == eight.shape
    assert np.abs(ten.astype(int) - eight.astype(int)).mean() < 3


def test_frames_without_a_luma_plane_are_converted_on_many_threads_at_once(video_files):
    """An RGB-coded frame (PNG in MOV) is converted to luma by swscale. A reference frame is read by up to two
    sampled frames on different threads: with the frame's own swscale context driven by two threads at once,
    the selection of such a clip hung within a few hundred runs. Each thread converts with its own context,
    and the frame keeps the result."""
    expected = [frame.frame.to_ndarray(format="gray") for frame in iter_frames(video_files["png.mov"], False)]
    for _ in range(10):  # fresh frames, nothing converted yet, read by 8 threads released together
        frames = list(iter_frames(video_files["png.mov"], False))
        start, lumas = threading.Barrier(8), {}

        def read(reader, frames=frames, start=start, lumas=lumas):
            start.wait()
            lumas[reader] = [frame.luma() for frame in frames]

        readers = [threading.Thread(target=read, args=(reader,), daemon=True) for reader in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=60)
        assert not any(reader.is_alive() for reader in readers), "a thread hung converting a shared frame"
        for read_lumas in lumas.values():
            for luma, truth in zip(read_lumas, expected, strict=True):
                np.testing.assert_array_equal(luma, truth)
        assert all(frame.luma() is frame.luma() for frame in frames)  # converted once per frame


def test_luma_honours_line_padding():
    frame = next(iter_frames(__import__("paths").MEDIA / "beach-portrait-h264.mp4", False))
    assert frame.frame.planes[0].line_size > frame.frame.width  # 384-byte rows for 360 pixels
    planes = frame.frame.to_ndarray()  # yuv420p: (H * 3 / 2, W), PyAV strips the row padding itself
    np.testing.assert_array_equal(frame.luma(), planes[:640])


@pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                    reason="writing rotation metadata needs PyAV >= 15")
def test_rotated_phone_video_is_selected_upright(tmp_path, moving_scene):
    upright = [np.ascontiguousarray(frame[:, :128]) for frame in moving_scene.frames]  # (112, 128) landscape
    coded = [np.ascontiguousarray(np.rot90(frame, k=-1)) for frame in upright]  # stored sideways, (128, 112)
    path = tmp_path / "rotated.mp4"
    write_video(path, coded, codec="libx264", rotation=90)
    selection = OneVisionVideoProcessor(num_frames=4, budget=0.5, patch_size=16).select(path, keep_frames=True)
    assert selection.geometry.source_size == (112, 128)
    first = selection.frames[0].astype(int)
    error_upright = np.abs(first - upright[0]).mean()
    error_upside_down = np.abs(first - np.rot90(upright[0], k=2)).mean()
    assert error_upright < 0.5 * error_upside_down


def test_video_shorter_than_the_requested_frames_uses_every_frame(tmp_path, moving_scene):
    path = tmp_path / "short.mp4"
    write_video(path, moving_scene.frames[:5], codec="libx264")
    selection = OneVisionVideoProcessor(num_frames=64).select(path)
    np.testing.assert_array_equal(selection.frame_indices, np.arange(5))
    np.testing.assert_array_equal(selection.temporal_positions, [0, 15, 31, 47, 63])
    assert len(selection.positions) == 5 * np.prod(selection.geometry.grid_size)  # 12.5 % of 64 frames > 5 frames


def test_odd_sized_video_is_placed_on_whole_patches(tmp_path):
    scene = render_scene(12, 97, 131, object_size=24, seed=2)
    path = tmp_path / "odd.mp4"
    write_video(path, scene.frames, codec="libx264", pix_fmt="yuv444p")
    selection = OneVisionVideoProcessor(num_frames=6, budget=0.25).select(path)
    assert selection.geometry.source_size == (97, 131)
    assert all(side % 14 == 0 for side in selection.geometry.canvas_size)
    assert selection.patches.shape[1:] == (3, 14, 14)


def test_wrong_header_frame_count_is_corrected_by_the_decode(video_files, monkeypatch):
    real_probe = video_selection.probe_stream

    def overcounting_probe(video):
        info = real_probe(video)
        return type(info)(info.name, info.codec, info.frame_count + 20, "header", info.exports_motion_vectors)

    monkeypatch.setattr(video_selection, "probe_stream", overcounting_probe)
    selection = OneVisionVideoProcessor(num_frames=8).select(video_files["h264.mp4"])
    assert selection.source_frame_count == SCENE_FRAMES
    np.testing.assert_array_equal(selection.frame_indices, np.floor(np.linspace(0, SCENE_FRAMES - 1, 8)))


def _audio_only(path, cover_art: bool = False):
    with av.open(str(path), "w") as container:
        still = _add_still(container, attached_picture=True) if cover_art else None
        stream = container.add_stream("aac", rate=16000)
        if still is not None:
            _write_still(container, still)
        samples = np.zeros((1, 1024), np.float32)
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _add_still(container, attached_picture: bool):
    """A one-frame 64 x 64 MJPEG video stream (cover art when ``attached_picture``) added to ``container``."""
    still = container.add_stream("mjpeg", rate=1)
    still.width, still.height, still.pix_fmt = 64, 64, "yuvj420p"
    if attached_picture:
        still.disposition = av.stream.Disposition.attached_pic
    return still


def _write_still(container, still) -> None:
    picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, np.uint8), format="rgb24")
    for packet in [*still.encode(picture), *still.encode()]:
        container.mux(packet)


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such video file"),
    ("empty", "cannot be opened"),
    ("text", "cannot be opened"),
    ("corrupt", "cannot be opened"),
    ("truncated", "cannot be opened"),
    ("audio-only", "has no video stream"),
    ("audio with cover art", r"has no video stream \(found: an attached picture \(cover art\), audio\)"),
])
def test_undecodable_files_raise_one_error_naming_file_and_problem(tmp_path, video_files, kind, message):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = video_files["h264.mp4"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind.startswith("audio"):
        path = tmp_path / ("audio-with-cover-art.mp4" if "cover" in kind else "audio-only.m4a")
        _audio_only(path, cover_art="cover" in kind)
    with pytest.raises(OneVisionVideoError, match=message) as error:
        OneVisionVideoProcessor(num_frames=4, budget=0.5).select(path)
    assert str(path) in str(error.value)


def test_a_still_stream_before_the_video_is_not_read_as_the_video(tmp_path, moving_scene):
    """A file may list a one-frame still (a thumbnail, cover art) as its first video stream: the selection reads
    the stream FFmpeg's own tools play, the clip itself."""
    path = tmp_path / "still-first.mkv"
    with av.open(str(path), "w") as container:
        still = _add_still(container, attached_picture=False)
        video = container.add_stream("libx264", rate=30)
        video.height, video.width = moving_scene.frames[0].shape[:2]
        _write_still(container, still)
        for pixels in moving_scene.frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
    selection = OneVisionVideoProcessor(num_frames=8, budget=0.25).select(path)
    assert (selection.method, selection.source_frame_count) == ("codec-mv", SCENE_FRAMES)
    assert selection.geometry.source_size == moving_scene.frames[0].shape[:2]


@pytest.mark.parametrize("image_format, suffix, decoder", [("GIF", ".gif", "gif"), ("PNG", ".png", "apng")])
def test_animated_images_are_read_as_videos(tmp_path, moving_scene, image_format, suffix, decoder):
    """An animated GIF or PNG (APNG) is a self-contained video without motion vectors: FFmpeg decodes it, the
    selection runs on its pixels and says so. One frame is a still image; animated WebP, which FFmpeg does not
    decode, is refused with what to do instead."""
    pictures = [Image.fromarray(frame) for frame in moving_scene.frames]
    path = tmp_path / f"animated{suffix}"
    pictures[0].save(path, format=image_format, save_all=True, append_images=pictures[1:], duration=40, loop=0)
    selection = OneVisionVideoProcessor(num_frames=16, budget=0.25).select(path)
    assert (selection.method, selection.source_frame_count) == ("pixel-block-matching", SCENE_FRAMES)
    assert selection.fallback_reason == f"the {decoder} decoder exports no motion vectors"
    truth = moving_patches(moving_scene, selection.frame_indices, selection.geometry)
    assert moving_recall(selection.patch_mask(), truth) >= 0.85
    still = tmp_path / f"still{suffix}"
    pictures[0].save(still, format=image_format)
    with pytest.raises(OneVisionVideoError, match=rf"still\{suffix}: .*a still image \({image_format}\), not a video"):
        OneVisionVideoProcessor().select(still)


def test_animated_webp_is_refused_saying_what_to_do(tmp_path, moving_scene):
    pictures = [Image.fromarray(frame) for frame in moving_scene.frames[:5]]
    path = tmp_path / "animated.webp"
    pictures[0].save(path, format="WEBP", save_all=True, append_images=pictures[1:], duration=40)
    with pytest.raises(OneVisionVideoError, match=r"animated WEBP image \(5 frames\), which FFmpeg does not decode; "
                                                  r"convert it to a video file, or pass its frames decoded"):
        OneVisionVideoProcessor().select(path)


def test_decoded_frame_reader_matches_pyav_rgb(video_files):
    frame = next(iter_frames(video_files["h264.mp4"], False))
    assert isinstance(frame, DecodedFrame) and frame.is_intra
    np.testing.assert_array_equal(frame.rgb(), frame.frame.to_ndarray(format="rgb24"))
