"""Dataset-scale precompute: a manifest of videos -> a `datasets` dataset of selections, sharded and resumable."""

import json

import datasets
import numpy as np
import pytest
import torch

from onevision_hf.cli import main
from onevision_hf.data import PrecomputeJob, run_precompute, stored_selection
from onevision_hf.data import precompute as precompute_module
from onevision_hf.data.precompute import worker_rank_and_world
from onevision_hf.errors import OneVisionInputError
from onevision_hf.processors.video_processing_onevision import OneVisionVideoProcessor

from paths import MEDIA

OVERRIDES = {"num_frames": 8}
SELECTION_COLUMNS = ("positions", "patches", "patch_size", "frame_indices", "temporal_positions", "grid_size", "method",
                     "error")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, video_files):
    """A CSV manifest: four decodable videos (relative and absolute paths), a corrupt one, an extra column."""
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (folder / "clips").mkdir()
    (folder / "clips" / "carphone.mp4").write_bytes((MEDIA / "carphone-176x144-h264.mp4").read_bytes())
    rows = [("clips/carphone.mp4", "phone"), (str(video_files["h264.mp4"]), "square"),
            ("broken.mp4", "broken"), (str(video_files["mpeg4.avi"]), "square-mpeg4"),
            (str(video_files["vp9.webm"]), "square-vp9")]
    path = folder / "videos.csv"
    path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    return path


def job(manifest, output, **fields) -> PrecomputeJob:
    return PrecomputeJob(manifest=manifest, output=output, overrides=OVERRIDES, shard_size=2, **fields)


@pytest.fixture(scope="module")
def single_worker_output(manifest, tmp_path_factory):
    output = tmp_path_factory.mktemp("one-worker")
    report = run_precompute(job(manifest, output), progress=False)
    return output, report


def assert_same_dataset(a, b):
    assert len(a) == len(b) and a.column_names == b.column_names
    for row_a, row_b in zip(a.with_format("numpy"), b.with_format("numpy"), strict=True):
        for column in a.column_names:
            assert np.array_equal(np.asarray(row_a[column]), np.asarray(row_b[column])), column


def test_precompute_writes_a_loadable_dataset_with_errors_recorded(single_worker_output):
    output, report = single_worker_output
    assert report.merged and report.videos_written == 5 and report.shards_written == 3
    assert [path.endswith("broken.mp4") for path, _ in report.failures] == [True]
    dataset = datasets.load_from_disk(str(output)).with_format("numpy")
    assert dataset.column_names[:2] == ["path", "label"] and set(SELECTION_COLUMNS) <= set(dataset.column_names)
    assert list(dataset["label"]) == ["phone", "square", "broken", "square-mpeg4", "square-vp9"]
    broken = dataset[2]
    assert "broken.mp4" in broken["error"] and broken["positions"].shape == (0, 3)
    for index in (0, 1, 3, 4):
        row = dataset[index]
        assert row["error"] is None
        stored = stored_selection(row)
        assert stored.patches.dtype == np.uint8 and stored.patches.shape[1:] == (3, 14, 14)
        assert len(stored.patches) == len(row["positions"]) > 0 and len(row["frame_indices"]) == 8
    assert [dataset[i]["method"] for i in (0, 1, 3, 4)] == ["codec-mv", "codec-mv", "codec-mv", "pixel-block-matching"]
    selection = json.loads(dataset[0]["selection"])
    assert selection["num_frames"] == 8 and selection["preset"] == "default"


def test_two_workers_write_exactly_what_one_worker_writes(manifest, single_worker_output, tmp_path):
    reports = [run_precompute(job(manifest, tmp_path, rank=rank, world_size=2), progress=False) for rank in (0, 1)]
    assert [r.shards_written for r in reports] == [2, 1]
    assert [r.merged for r in reports] == [False, True]  # the last worker to finish writes the index
    assert_same_dataset(datasets.load_from_disk(str(tmp_path)), datasets.load_from_disk(str(single_worker_output[0])))


def test_several_processes_write_exactly_what_one_process_writes(manifest, single_worker_output, tmp_path):
    run_precompute(job(manifest, tmp_path, num_proc=2), progress=False)
    assert_same_dataset(datasets.load_from_disk(str(tmp_path)), datasets.load_from_disk(str(single_worker_output[0])))


def test_interrupted_run_resumes_and_gives_the_same_dataset(manifest, single_worker_output, tmp_path, monkeypatch):
    select_record, calls = precompute_module.select_record, []

    def interrupted_after_three(processor, path):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return select_record(processor, path)

    monkeypatch.setattr(precompute_module, "select_record", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_precompute(job(manifest, tmp_path), progress=False)
    monkeypatch.setattr(precompute_module, "select_record", select_record)
    assert len(list((tmp_path / "shards").glob("*.arrow"))) == 1 and not (tmp_path / "state.json").exists()
    report = run_precompute(job(manifest, tmp_path), progress=False)
    assert (report.shards_skipped, report.shards_written, report.videos_written) == (1, 2, 3)
    assert_same_dataset(datasets.load_from_disk(str(tmp_path)), datasets.load_from_disk(str(single_worker_output[0])))


def test_resuming_with_other_parameters_is_refused(manifest, single_worker_output):
    output, _ = single_worker_output
    with pytest.raises(OneVisionInputError, match="other parameters"):
        run_precompute(PrecomputeJob(manifest=manifest, output=output, overrides={"num_frames": 16}, shard_size=2),
                       progress=False)


def test_precomputed_selection_equals_the_on_the_fly_processor(single_worker_output):
    dataset = datasets.load_from_disk(str(single_worker_output[0])).with_format("numpy")
    processor = OneVisionVideoProcessor(**OVERRIDES)
    row = dataset[3]
    live = processor.select(row["path"])
    stored = stored_selection(row)
    assert np.array_equal(stored.positions, live.positions) and np.array_equal(stored.patches, live.patches)
    assert np.array_equal(stored.frame_indices, live.frame_indices) and stored.method == live.method
    packed_from_dataset = processor.pack([stored_selection(dataset[0]), stored])
    packed_live = processor(videos=[dataset[0]["path"], row["path"]], return_tensors="pt")
    for key, value in packed_live.items():
        assert torch.equal(packed_from_dataset[key], value), key
    with pytest.raises(OneVisionInputError, match="broken.mp4 failed in precompute"):
        stored_selection(dataset[2])


def test_stored_patches_ending_in_black_pixels_read_back_exactly():
    patches = np.zeros((2, 3, 14, 14), np.uint8)
    patches[0, 0, 0, 0] = 7  # everything after this byte is zero
    features = datasets.Features({"patches": datasets.Value("binary"),
                                  "positions": datasets.Array2D((None, 3), "int32"),
                                  "patch_size": datasets.Value("int32"),
                                  "frame_indices": datasets.Sequence(datasets.Value("int64")),
                                  "method": datasets.Value("string"), "error": datasets.Value("string")})
    row = {"patches": patches.tobytes(), "positions": np.zeros((2, 3), np.int32), "patch_size": 14,
           "frame_indices": [0], "method": "codec-mv", "error": None}
    dataset = datasets.Dataset.from_list([row], features=features)
    for formatted in (dataset, dataset.with_format("numpy")):
        assert np.array_equal(stored_selection(formatted[0]).patches, patches)


def test_manifest_without_the_path_column(tmp_path):
    manifest = tmp_path / "videos.jsonl"
    manifest.write_text('{"file": "a.mp4"}\n')
    with pytest.raises(OneVisionInputError, match="no 'path' column.*--path-column"):
        run_precompute(PrecomputeJob(manifest=manifest, output=tmp_path / "out"), progress=False)


def test_rank_and_world_size_come_from_the_launcher_environment(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert worker_rank_and_world() == (3, 4)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert worker_rank_and_world() == (1, 2)  # torchrun / accelerate first
    assert worker_rank_and_world(0, 1) == (0, 1)  # explicit wins
    with pytest.raises(OneVisionInputError, match="rank 5"):
        worker_rank_and_world(5, 2)


def test_precompute_command(manifest, single_worker_output, tmp_path, capsys):
    assert main(["precompute", str(manifest), str(tmp_path), "--num-frames", "8", "--shard-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "5 videos in 3 shards" in printed and "1 failed" in printed and "broken.mp4" in printed
    assert_same_dataset(datasets.load_from_disk(str(tmp_path)), datasets.load_from_disk(str(single_worker_output[0])))


def worker_processes_holding(path) -> list[int]:
    """Pids of this process's multiprocessing children that have ``path`` open (are selecting it)."""
    import multiprocessing
    import os

    holding = []
    for child in multiprocessing.active_children():
        try:
            fds = os.listdir(f"/proc/{child.pid}/fd")
            if any(os.readlink(f"/proc/{child.pid}/fd/{fd}") == str(path) for fd in fds):
                holding.append(child.pid)
        except OSError:  # exited meanwhile
            pass
    return holding


def kill_workers_selecting(paths_and_kills: dict, stop) -> list:
    """Kill -9, from outside, a worker each time it opens one of the paths, up to the given number of times."""
    import os
    import signal
    import threading
    import time

    killed, pids = [], set()

    def watch():
        while not stop.is_set():
            for path, kills in paths_and_kills.items():
                if killed.count(path) < kills:
                    for pid in set(worker_processes_holding(path)) - pids:  # a dying worker still holds it a while
                        os.kill(pid, signal.SIGKILL)
                        pids.add(pid)
                        killed.append(path)
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    return killed


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="finds busy workers through /proc")
def test_killed_worker_is_retried_then_its_shard_reported_and_the_rerun_completes(tmp_path, capsys):
    import threading

    videos = [MEDIA / "beach-portrait-h264.mp4", MEDIA / "bikes-640x272-h264.mp4", MEDIA / "carphone-176x144-h264.mp4"]
    manifest = tmp_path / "videos.csv"
    manifest.write_text("path\n" + "".join(f"{path}\n" for path in videos))
    output, arguments = tmp_path / "out", ["--num-frames", "8", "--shard-size", "1", "--num-proc", "2"]
    stop = threading.Event()
    # every worker that opens the long beach video is killed: retried once, then given up; the bikes video's
    # worker is killed at most once, so its retry succeeds (when the watcher catches it: it is quick to select)
    killed = kill_workers_selecting({videos[0]: 99, videos[1]: 1}, stop)
    try:
        exit_code = main(["precompute", str(manifest), str(output), *arguments])
    finally:
        stop.set()
    printed = capsys.readouterr().out
    assert killed.count(videos[0]) == 2 and killed.count(videos[1]) <= 1
    assert exit_code == 1
    assert f"shard 0 not written: {videos[0]}: the worker process selecting it died 2 times (killed by SIGKILL)" \
        in printed and "run the same command again" in printed and "dataset ready" not in printed
    assert sorted(path.name for path in (output / "shards").glob("*.arrow")) == [
        "shard-00001-of-00003.arrow", "shard-00002-of-00003.arrow"]

    assert main(["precompute", str(manifest), str(output), *arguments]) == 0  # nothing killed: completes
    assert "dataset ready" in capsys.readouterr().out
    reference = tmp_path / "reference"
    run_precompute(PrecomputeJob(manifest=manifest, output=reference, overrides=OVERRIDES, shard_size=1),
                   progress=False)
    assert_same_dataset(datasets.load_from_disk(str(output)), datasets.load_from_disk(str(reference)))


def test_resume_refuses_edited_labels_or_added_columns_saying_what_changed(manifest, tmp_path):
    run_precompute(job(manifest, tmp_path / "out"), progress=False)
    lines = manifest.read_text().splitlines()
    edited = manifest.with_name("edited.csv")  # beside it: the relative paths stay the same
    edited.write_text("\n".join([lines[0]] + [line.replace(",phone", ",telephone") for line in lines[1:]]) + "\n")
    with pytest.raises(OneVisionInputError, match=r"manifest column value\(s\) changed: \['label'\]"):
        run_precompute(job(edited, tmp_path / "out"), progress=False)
    widened = manifest.with_name("widened.csv")
    widened.write_text("\n".join([lines[0] + ",split"] + [line + ",train" for line in lines[1:]]) + "\n")
    with pytest.raises(OneVisionInputError, match=r"manifest column\(s\) added: \['split'\]"):
        run_precompute(job(widened, tmp_path / "out"), progress=False)
    with pytest.raises(OneVisionInputError, match=r"selection parameter num_frames: 8 -> 16"):
        run_precompute(PrecomputeJob(manifest=manifest, output=tmp_path / "out", overrides={"num_frames": 16},
                                     shard_size=2), progress=False)


def test_zero_shard_size_is_refused_before_anything_is_written(manifest, tmp_path):
    assert main(["precompute", str(manifest), str(tmp_path / "out"), "--shard-size", "0"]) == 2
    assert not (tmp_path / "out").exists()


def test_interrupted_shard_writes_are_cleaned_up_by_the_next_run(manifest, tmp_path):
    leftover = tmp_path / "shards" / "shard-00001-of-00003.arrow.tmp-99999"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a shard")
    run_precompute(job(manifest, tmp_path), progress=False)
    assert not leftover.exists() and not list((tmp_path / "shards").glob("*.tmp-*"))


@pytest.mark.parametrize("content", ["", "path,label\n", "\n\n"])
def test_empty_or_header_only_manifest_gives_one_line(tmp_path, capsys, content):
    manifest = tmp_path / "videos.csv"
    manifest.write_text(content)
    assert main(["precompute", str(manifest), str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "lists no videos" in errors[0] and errors[0].startswith("onevision-hf precompute")
