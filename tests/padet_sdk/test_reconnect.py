"""Live sources re-open after a disconnect, against a real server: FFmpeg serves the demo clip
live over HTTP, the test kills it mid-stream and starts it again. The stream reconnects, says
so (events on the results, in the stats and in the log), frames after the restart are
detected; a dead URL and a server that stays down end with SourceError after the configured
attempts; files never reconnect."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

from media import LiveServer, demo_clip, h264_copy

from padet_sdk import Detector, SourceError, open_source, stream
from padet_sdk.reconnect import ReconnectPolicy

pytestmark = pytest.mark.timeout(120)

#: quick back-off for tests: 0.2, 0.3, 0.45, ... capped at 1 s
FAST = dict(initial_delay=0.2, factor=1.5, max_delay=1.0, open_timeout=3.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return h264_copy(demo_clip(tmp_path_factory.mktemp("clip") / "demo.mp4", frames=50))


@pytest.fixture(scope="module")
def det():
    d = Detector.for_video()  # the embedded model: it detects the demo clip's shapes
    yield d
    d.close()


def test_policy_backs_off_exponentially_and_is_bounded():
    p = ReconnectPolicy()
    assert [p.delay(k) for k in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert p.total_delay() == 25.5
    assert ReconnectPolicy(attempts=None).total_delay() == float("inf")
    for bad in (dict(attempts=0), dict(initial_delay=-1), dict(factor=0.5), dict(max_delay=float("nan"))):
        with pytest.raises(ValueError):
            ReconnectPolicy(**bad)


def test_stream_reconnects_after_a_server_restart_and_reports_the_gap(clip, det, caplog):
    caplog.set_level(logging.INFO, logger="padet_sdk.stream")
    server = LiveServer(clip).start()
    restarted = threading.Event()
    try:
        results = stream(det, server.url, read_timeout=3, reconnect=ReconnectPolicy(attempts=20, **FAST))
        before, after, marked = [], [], []
        with results:
            for r in results:
                if r.events:
                    marked.append(r)
                if server.starts == 1 and len(before) < 15:
                    before.append(r)
                    if len(before) == 15:  # kill mid-stream; restart 1.5 s later
                        server.stop()
                        threading.Timer(1.5, lambda: (server.start(), restarted.set())).start()
                elif marked:  # frames buffered before the kill are neither
                    after.append(r)
                    if len(after) == 20:
                        break
        assert len(before) == 15 and len(after) == 20
        kinds = [e.kind for e in marked[0].events]
        assert kinds == ["disconnected", "reconnected"], kinds
        gap = marked[0].events[1]
        assert gap.gap_s >= 1.0 and gap.attempt >= 2  # the server was down 1.5 s: the first attempts failed
        assert [e.kind for e in results.stats.events] == kinds
        assert after[0].index > before[-1].index  # indices keep counting across the gap
        assert sum(len(r.detections.filter(0.3)) > 0 for r in after) >= 15  # frames after the restart are detected
        log = caplog.text
        assert "disconnected" in log and "reconnected after" in log
        assert "reconnected 1x" in results.stats.summary()
    finally:
        restarted.wait(5)
        server.stop()


def test_a_stalled_server_times_out_and_the_stream_reconnects(clip, det):
    """A server that stops sending without closing (SIGSTOP: a hung NVR) is noticed after
    read_timeout by FFmpeg's own read timeout, then re-opened like a dropped one."""
    server = LiveServer(clip).start()
    stalled = threading.Event()

    def restart() -> None:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.start()  # kills the hung one, serves again on the same port

    try:
        results = stream(det, server.url, read_timeout=1.5, reconnect=ReconnectPolicy(attempts=20, **FAST))
        got, events = 0, []
        with results:
            for r in results:
                got += 1
                events += r.events
                if got == 10:
                    os.kill(server.proc.pid, signal.SIGSTOP)
                    stalled.set()
                    threading.Timer(3.0, restart).start()
                if any(e.kind == "reconnected" for e in events) and got >= 20:
                    break
        kinds = [e.kind for e in events]
        assert kinds == ["disconnected", "reconnected"], kinds
        assert events[1].gap_s >= 1.0  # stalled 3 s; noticed after 1.5 s, then re-opened
    finally:
        if server.proc is not None and stalled.is_set():
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def test_a_server_that_stays_down_ends_the_stream_with_source_error(clip, det):
    server = LiveServer(clip).start()
    try:
        results = stream(det, server.url, read_timeout=3, reconnect=ReconnectPolicy(attempts=3, **FAST))
        got = 0
        with pytest.raises(SourceError, match="3 reconnect attempts"):
            for _ in results:
                got += 1
                if got == 10:
                    server.stop()
        assert got >= 10
        assert results.stats.end_reason == "reconnect failed"
        assert [e.kind for e in results.stats.events] == ["disconnected", "failed"]
    finally:
        server.stop()


def test_without_reconnect_a_disconnect_ends_the_stream(clip, det):
    server = LiveServer(clip).start()
    try:
        results = stream(det, server.url, read_timeout=3, reconnect=False)
        got = 0
        for _ in results:
            got += 1
            if got == 10:
                server.stop()
        assert results.stats.end_reason == "disconnected" and results.stats.events == []
    finally:
        server.stop()


def test_a_dead_url_is_a_source_error_after_the_configured_attempts():
    url = LiveServer(None).url  # nothing listens on this free port
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match=r"cannot open stream .*: 3 attempts over 0\.5 s of back-off failed"):
        open_source(url, reconnect=ReconnectPolicy(attempts=3, **FAST))
    assert time.perf_counter() - t0 >= 0.5  # it did wait between attempts (0.2 + 0.3 s, see FAST)
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source(url, reconnect=False)


def test_files_never_reconnect(clip):
    src = open_source(clip)
    assert src.reconnect is None
    frames = list(src)
    assert len(frames) == 50 and src.end_reason == "end" and src.events == []
