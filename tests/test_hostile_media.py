"""Hostile or careless media: a video or image input never opens the network or another file, and every input the
package refuses gets one `OneVisionInputError` naming the source and what to do instead."""

import http.server
import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

from onevision_hf import OneVisionInputError, OneVisionVideoError, OneVisionVideoProcessor
from onevision_hf.processors.image_loading import load_image
from onevision_hf.processors.video_decoding import LocalPlaylist
from onevision_hf.synthetic_video import write_video


@pytest.fixture(scope="module")
def segment(tmp_path_factory, moving_scene) -> tuple[bytes, os.PathLike]:
    """An MPEG-TS file (what HLS playlists list) of the moving scene: its bytes and its path."""
    path = tmp_path_factory.mktemp("hls") / "segment.ts"
    write_video(path, moving_scene.frames[:16], container_format="mpegts")
    return path.read_bytes(), path


@pytest.fixture
def counting_server(segment):
    """A loopback HTTP server that serves the segment for any URL and counts the requests it gets."""
    data, requests = segment[0], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/segment.ts", requests
    server.shutdown()
    server.server_close()


def hls_playlist(url: str) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{url}\n#EXT-X-ENDLIST\n".encode()


@pytest.fixture(scope="module")
def processor():
    return OneVisionVideoProcessor(num_frames=8, budget=0.25)


def named_bytes_io(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


@pytest.mark.parametrize("kind", ["file object named .m3u8", "bytes", "path"])
def test_hls_playlist_of_a_remote_segment_makes_no_request(tmp_path, processor, counting_server, kind):
    url, requests = counting_server
    playlist = hls_playlist(url)
    path = tmp_path / "remote.m3u8"
    path.write_bytes(playlist)
    video = {"file object named .m3u8": named_bytes_io(playlist, "remote.m3u8"), "bytes": playlist,
             "path": path}[kind]
    with pytest.raises(OneVisionVideoError, match="HLS playlist.*LocalPlaylist") as error:
        processor.select(video)
    assert "remote.m3u8" in str(error.value) or kind == "bytes"
    assert requests == []


def test_local_playlist_opt_in_still_makes_no_request(tmp_path, processor, counting_server):
    url, requests = counting_server
    path = tmp_path / "remote.m3u8"
    path.write_bytes(hls_playlist(url))
    with pytest.raises(OneVisionVideoError, match=r"lists 'http://127\.0\.0\.1.*not a regular local file"):
        processor.select(LocalPlaylist(path))
    assert requests == []


@pytest.mark.parametrize("kind, listing", [
    pytest.param("HLS playlist", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n",
                 id="hls"),
    pytest.param("FFmpeg concat list", "ffconcat version 1.0\nfile '{segment}'\n", id="concat"),
])
def test_playlist_listing_a_local_file_is_refused_unless_opted_in(tmp_path, processor, segment, kind, listing):
    path = tmp_path / "local.m3u8"
    path.write_text(listing.format(segment=segment[1].name if "concat" in kind else segment[1]))
    os.link(segment[1], tmp_path / segment[1].name)  # the concat list names it relative to its own folder
    with pytest.raises(OneVisionVideoError, match=f"{path}: cannot be opened as a video: it is an {kind}"):
        processor.select(path)
    opted_in = processor.select(LocalPlaylist(path))
    direct = processor.select(segment[1])
    np.testing.assert_array_equal(opted_in.positions, direct.positions)
    np.testing.assert_array_equal(opted_in.patches, direct.patches)


def test_still_image_renamed_mp4_is_refused_as_an_image(tmp_path, processor):
    path = tmp_path / "photo.mp4"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, format="PNG")
    with pytest.raises(OneVisionVideoError, match=r"photo\.mp4: .*still image \(PNG\), not a video.*image"):
        processor.select(path)
    with pytest.raises(OneVisionVideoError, match=r"still image \(PNG\)"):
        processor.select(path.read_bytes())


def test_pipes_are_refused_naming_the_source(tmp_path, processor):
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    with pytest.raises(OneVisionVideoError, match=r"stream\.mp4: is not a regular file"):
        processor.select(fifo)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe, os.fdopen(write_end, "wb"):
        with pytest.raises(OneVisionVideoError, match=r"<file descriptor \d+>: is not seekable"):
            processor.select(pipe)


def test_text_mode_file_object_asks_for_binary_mode(video_files, processor):
    with open(video_files["h264.mp4"], encoding="latin-1") as text:
        with pytest.raises(OneVisionVideoError, match=r"h264\.mp4: is a text-mode file object; open it in binary"):
            processor.select(text)


def test_self_contained_videos_still_open_from_paths_bytes_and_file_objects(video_files, processor):
    path = video_files["h264.mp4"]
    reference = processor.select(path)
    with open(path, "rb") as file:
        for video in (path.read_bytes(), file):
            np.testing.assert_array_equal(processor.select(video).positions, reference.positions)


def test_image_formats_that_run_programs_are_not_decoded():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto 8 8 lineto stroke\nshowpage\n"
    with pytest.raises(OneVisionInputError, match="not an image file of an accepted format"):
        load_image(eps)
