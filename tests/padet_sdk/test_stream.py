"""Video pipeline: files are processed completely and in order, live sources drop stale frames,
stalled/ended sources end cleanly, and the example CLIs produce complete outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sdk_helpers import assert_detections_equal, make_frame, model_and_files, write_video

from padet_sdk import Detector, FrameSource, SourceError, open_source, stream
from padet_sdk.stream import available_cores

REPO = Path(__file__).resolve().parents[2]
N_FRAMES = 30


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", N_FRAMES)


@pytest.fixture(scope="module", params=["onnx", "xml"])
def det(request) -> Detector:
    _, files = model_and_files()
    if request.param not in files:
        pytest.skip("no IR")
    d = Detector(files[request.param], conf=0.4, performance_hint="THROUGHPUT")
    yield d
    d.close()


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_stream_of_a_file_yields_every_frame_in_order(det, video):
    decoded = list(open_source(video))
    s = stream(det, video, depth=3)
    results = list(s)
    assert [r.index for r in results] == list(range(N_FRAMES))
    assert s.stats.frames == N_FRAMES and s.stats.dropped == 0 and s.stats.end_reason == "end"
    assert s.stats.fps > 0 and s.stats.latency(0.5) > 0
    for r, f in zip(results, decoded):
        assert np.array_equal(r.frame, f.image)
    # results belong to their own frame: equal to a synchronous call on that frame
    for r in results[::7]:
        assert_detections_equal(r.detections, det(r.frame), score_tol=1e-5, box_tol=1e-2)  # same model and batch


def test_stream_keeps_several_inferences_in_flight(det, video):
    """With depth 3, the pipeline has submitted frame i+2 before frame i's result is used."""
    submitted: list[int] = []
    orig = det.submit

    def spy(frame):
        submitted.append(len(submitted))
        return orig(frame)

    det.submit = spy  # instance attribute shadows the method
    try:
        seen = []
        for r in stream(det, video, depth=3):
            seen.append((r.index, len(submitted)))
    finally:
        del det.submit
    assert all(n >= min(i + 3, N_FRAMES) for i, n in seen), seen[:5]


def test_stream_writes_annotated_output_with_all_frames(det, video, tmp_path):
    out = tmp_path / "out.mp4"
    with stream(det, video, output=out) as s:
        n = sum(1 for _ in s)
    assert n == N_FRAMES
    assert _frame_count(out) == N_FRAMES


def test_leaving_the_loop_early_closes_the_output(det, video, tmp_path):
    out = tmp_path / "partial.mp4"
    with stream(det, video, output=out) as s:
        for r in s:
            if r.index == 9:
                break
    assert _frame_count(out) == 10
    assert s.source.end_reason == "closed"


def test_stop_ends_the_stream_after_the_frames_in_flight_with_every_request_back(det, video, tmp_path):
    """stop() (what the CLI's Ctrl-C calls) ends iteration like the end of a file: the frames in
    flight still come out, the output is finished, and no inference request is lost."""
    out = tmp_path / "stopped.mp4"
    s = stream(det, video, output=out, depth=3)
    with s:
        seen = []
        for r in s:
            seen.append(r.index)
            if r.index == 4:
                s.stop()
    assert seen == list(range(len(seen))) and 5 <= len(seen) <= 5 + 3 + 1, seen  # + the in-flight ones
    assert s.stats.end_reason == "closed" and _frame_count(out) == len(seen)
    pool = getattr(det._backend, "_pool", None)
    if pool is not None:  # OpenVINO: every request is back in the pool
        assert pool.qsize() == det._backend.num_requests


def test_a_submit_interrupted_by_ctrl_c_gives_its_request_back(det):
    """A KeyboardInterrupt inside submit (here: starting the inference) must not lose the
    request: close() would wait minutes for it."""
    backend = det._backend
    if not hasattr(backend, "_pool"):
        pytest.skip("onnxruntime: worker threads, no request pool")
    frame = make_frame(240, 320, seed=3)
    blob = det.preprocess([frame])
    req_type = type(backend.compiled.create_infer_request())

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    for step in ("set_callback", "start_async"):  # each call between taking and starting a request
        orig = getattr(req_type, step)
        try:
            setattr(req_type, step, interrupted)
        except (AttributeError, TypeError):
            pytest.skip("the request type cannot be patched")
        try:
            for _ in range(backend.num_requests):
                with pytest.raises(KeyboardInterrupt):
                    backend.submit(blob)
        finally:
            setattr(req_type, step, orig)
        assert backend._pool.qsize() == backend.num_requests, step
    det(frame)  # and inference still works


def _padet_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("padet-")}


def test_breaking_out_of_a_bare_for_finalises_the_stream_at_once(det, video, tmp_path):
    """No with/close(): the output is complete and playable and the threads are gone right
    after the loop, not when the garbage collector or the interpreter exit gets to it."""
    before = _padet_threads()
    out = tmp_path / "bare.mp4"
    for r in stream(det, video, output=out):
        if r.index == 4:
            break
    assert _padet_threads() - before == set()
    assert _frame_count(out) == 5
    out2 = tmp_path / "raised.mp4"
    with pytest.raises(KeyError):
        for r in stream(det, video, output=out2):
            if r.index == 2:
                raise KeyError("in the loop body")
    assert _padet_threads() - before == set()
    assert _frame_count(out2) == 3


def test_a_live_source_stops_being_read_after_break(det):
    reads = []

    def grab():
        time.sleep(0.005)
        reads.append(1)
        return make_frame(96, 128, 1)

    for r in stream(det, FrameSource(grab, name="cam", kind="camera", live=True)):
        if r.index >= 2:
            break
    n = len(reads)
    time.sleep(0.3)
    assert len(reads) <= n + 1  # at most the read in progress at the break


ABANDON_SCRIPT = """
import sys, threading
from padet_sdk import Detector, stream
how, src, out = sys.argv[1:]
det = Detector()
s = stream(det, src, output=out) if how == "held" else None
try:
    for r in (s if s is not None else stream(det, src, output=out)):
        if r.index == 4:
            if how == "raise":
                raise KeyError("in the loop body")
            break
except KeyError:
    pass
print("threads", sorted(t.name for t in threading.enumerate() if t.name.startswith("padet-")))
"""


@pytest.mark.parametrize("how", ["break", "raise", "held"])
def test_an_abandoned_stream_exits_cleanly_and_leaves_a_playable_video(video, tmp_path, how):
    """Was: "terminate called without an active exception" (rc 134) and a 44-byte mp4. "held":
    the stream is still referenced when the script ends, so interpreter exit finalises it."""
    out = tmp_path / f"{how}.mp4"
    p = subprocess.run([sys.executable, "-c", ABANDON_SCRIPT, how, str(video), str(out)], capture_output=True,
                       text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    if how != "held":
        assert "threads []" in p.stdout, p.stdout
    assert _frame_count(out) == 5


def test_stream_refuses_an_output_that_is_its_source_file(det, video, tmp_path):
    before = video.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    for out in (video, str(video), link):
        with pytest.raises(SourceError, match="refusing to overwrite the input"):
            stream(det, str(video), output=out)
    with pytest.raises(SourceError, match="refusing to overwrite"):  # an open file source too
        with open_source(video) as src:
            stream(det, src, output=link)
    assert video.read_bytes() == before


def test_an_output_folder_that_cannot_be_created_is_a_source_error(det, video, tmp_path):
    """Was: a raw FileNotFoundError/NotADirectoryError from the writer."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SourceError, match="cannot create the folder"):
        for _ in stream(det, video, output=tmp_path / "afile" / "sub" / "o.mp4"):
            pass


def test_max_frames_and_image_folder_source(det, tmp_path):
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        cv2.imwrite(str(tmp_path / f"img{i}.png"), make_frame(60 + i, 80, i))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source(tmp_path))
    assert [f.image.shape[0] for f in frames] == [61, 62, 70]
    results = list(stream(det, tmp_path, max_frames=2))
    assert [r.detections.image_size for r in results] == [(61, 80), (62, 80)]


def test_file_source_end_marker_is_queued_even_when_the_reader_is_ahead():
    """The reader usually reaches the end of a file with its queue full. The end marker used
    to be dropped then, and the consumer noticed the end only by polling: every file stream
    ended 0.5 s late (the last frame's latency in the demo was 500 ms)."""
    frames = iter(range(5))

    def grab():
        i = next(frames, None)
        return None if i is None else np.full((4, 4, 3), i, np.uint8)

    src = FrameSource(grab, name="fake file", kind="file", live=False, prefetch=2)
    got = []
    for _ in range(5):
        deadline = time.monotonic() + 5
        while not (src._queue.full() or src._ended.is_set()) and time.monotonic() < deadline:
            time.sleep(0.001)  # let the reader get ahead: the queue is full when it hits the end
        got.append(src.read().index)
    src._thread.join(timeout=5)
    assert not src._thread.is_alive()
    assert src._queue.get_nowait() is None  # the end marker, not an empty queue to poll
    assert got == [0, 1, 2, 3, 4]
    src.close()


def test_live_source_drops_stale_frames_instead_of_queuing():
    """A camera faster than the consumer: the consumer always gets the newest frame."""
    counter = iter(range(10**9))

    def grab():
        time.sleep(0.002)
        i = next(counter)
        return np.full((8, 8, 3), i % 256, np.uint8) if i < 400 else None

    src = FrameSource(grab, name="fake camera", kind="camera", live=True, read_timeout=5)
    got = []
    while (f := src.read()) is not None:
        got.append(f.index)
        time.sleep(0.02)
    src.close()
    assert got == sorted(got) and len(set(got)) == len(got)
    assert len(got) < 200 and src.dropped > 100
    assert src.end_reason == "disconnected"


def test_stalled_live_source_times_out_instead_of_hanging(caplog):
    release = threading.Event()

    def grab():
        release.wait(10)  # a camera that stops answering
        return None

    src = FrameSource(grab, name="stuck camera", kind="camera", live=True, read_timeout=0.5)
    t = time.monotonic()
    with caplog.at_level("WARNING"):
        assert src.read() is None
    assert time.monotonic() - t < 3
    assert src.end_reason == "timeout"
    assert "no frame from stuck camera" in caplog.text
    release.set()
    src.close()


def test_stream_over_a_disconnecting_live_source_ends_cleanly(det):
    frames = iter([make_frame(48, 64, i) for i in range(5)])

    def grab():
        time.sleep(0.01)
        return next(frames, None)

    src = FrameSource(grab, name="flaky", kind="url", live=True, read_timeout=2)
    results = list(stream(det, src))
    assert 1 <= len(results) <= 5
    assert [r.index for r in results] == sorted(r.index for r in results)


def test_unopenable_sources_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot open video file"):
        open_source(tmp_path / "fake.mp4")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(empty)


def _run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_webcam_example_processes_a_file_into_an_output_video(video, tmp_path):
    _, files = model_and_files()
    model = files.get("xml", files["onnx"])
    out = tmp_path / "webcam_out.mp4"
    r = _run_example("webcam.py", "--model", str(model), "--source", str(video), "--no-show", "--output", str(out),
                     "--conf", "0.4")
    assert r.returncode == 0, r.stderr
    assert _frame_count(out) == N_FRAMES
    assert f"{N_FRAMES} frames" in r.stdout and "FPS" in r.stdout


def test_webcam_example_says_when_opencv_is_headless(video, tmp_path):
    info = cv2.getBuildInformation()
    if "GUI:                           NONE" not in info and "GUI: NONE" not in " ".join(info.split()):
        pytest.skip("this OpenCV has GUI support")
    _, files = model_and_files()
    r = _run_example("webcam.py", "--model", str(files["onnx"]), "--source", str(video), "--max-frames", "3")
    assert r.returncode == 2
    assert "headless" in r.stderr and "opencv-python" in r.stderr


def test_detect_video_and_image_examples(video, tmp_path):
    _, files = model_and_files()
    out, jsonl = tmp_path / "v.mp4", tmp_path / "v.jsonl"
    r = _run_example("detect_video.py", str(video), "--model", str(files["onnx"]), "--output", str(out), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [d["frame"] for d in lines] == list(range(N_FRAMES))
    assert _frame_count(out) == N_FRAMES
    img = tmp_path / "f.png"
    cv2.imwrite(str(img), make_frame(120, 160, 3))
    r = _run_example("detect_image.py", str(img), "--model", str(files["onnx"]), "--out-dir", str(tmp_path / "res"))
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "res" / "f_det.json").read_text())
    assert doc["image_size"] == {"height": 120, "width": 160}
    assert cv2.imread(str(tmp_path / "res" / "f_det.png")).shape == (120, 160, 3)


@pytest.mark.parametrize("script", ["webcam.py", "detect_image.py", "detect_video.py"])
def test_examples_explain_themselves(script):
    r = _run_example(script, "--help")
    assert r.returncode == 0 and "--model" in r.stdout and "usage" in r.stdout


def test_annotated_frame_draws_only_detections_above_draw_min_score():
    """The demo draws confident boxes while scoring all of them: the filter applies to drawing only."""
    from padet_sdk.detections import DETECTION_DTYPE, Detections
    from padet_sdk.stream import FrameResult

    data = np.zeros(2, DETECTION_DTYPE)
    data["box"] = [[10, 10, 60, 60], [70, 20, 120, 90]]
    data["score"] = [0.9, 0.02]
    dets = Detections(data, ("a", "b"), (128, 160))
    frame = np.full((128, 160, 3), 90, np.uint8)
    res = FrameResult(0, frame, dets, 5.0, 30.0, 0, draw_min_score=0.05)
    img = res.annotated(overlay=False)
    assert np.array_equal(img, dets.filter(0.05).draw(frame, copy=True))
    assert not np.array_equal(img, dets.draw(frame, copy=True))  # the 0.02 box is not drawn
    assert len(res.detections) == 2 and np.array_equal(frame, np.full_like(frame, 90))  # nothing filtered or drawn in place


def test_available_cores_is_what_this_process_may_use():
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("script", ["webcam.py", "detect_video.py", "demo.py"])
def test_video_examples_reject_zero_threads(script, video):
    args = ["--source", str(video), "--no-show"] if script == "webcam.py" else [str(video)] if script == "detect_video.py" else []
    r = _run_example(script, *args, "--threads", "0")
    assert r.returncode == 2 and "argument --threads: must be at least 1, got 0" in r.stderr


def test_stream_hints_at_for_video_when_the_detector_is_not_set_up_for_it(video, caplog):
    if available_cores() < 2:
        pytest.skip("one core: nothing to gain")
    _, files = model_and_files()
    for make, hinted in ((Detector, True), (Detector.for_video, False)):
        det = make(files["onnx"])
        caplog.clear()
        with caplog.at_level("INFO", logger="padet_sdk.stream"):
            with stream(det, video, max_frames=2) as s:
                assert len(list(s)) == 2
        assert ("Detector.for_video(...) is usually faster" in caplog.text) is hinted
        det.close()
