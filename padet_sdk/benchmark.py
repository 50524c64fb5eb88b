"""Speed of PADet model files on this machine, end to end (pre-process, inference, native
post-processing), for ``padet benchmark``, in two modes like OpenVINO's ``benchmark_app``:

- latency (:func:`measure`): median of ``runs`` calls after ``warmup`` calls, one frame at a
  time, on a fixed synthetic frame so that every model sees the same input;
- throughput (:func:`measure_throughput`): frames per second with the detector's request pool
  full (:meth:`Detector.for_video <padet_sdk.detector.Detector.for_video>`, several
  inferences in flight), on synthetic frames or the frames of a source decoded beforehand.
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backends
from .detector import Detector


@dataclass
class LatencyRow:
    model: str
    backend: str
    precision: str
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float
    total_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")


def backends_for(path: str | Path) -> list[str]:
    """Engines that can run the file, in order of preference (OpenVINO for IR; onnxruntime and
    OpenVINO for ONNX); ``["auto"]`` for a file no engine reads, so that loading it says why."""
    return backends.backends_for(path) or ["auto"]


def measure(path: str | Path, backend: str, runs: int = 30, warmup: int = 5, frame_size: tuple[int, int] = (640, 480),
            num_threads: int | None = None) -> LatencyRow:  # fmt: skip
    """Time ``runs`` single-frame calls of one model on one engine (medians per stage)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (frame_size[1], frame_size[0], 3), dtype=np.uint8)
    det = Detector(path, backend=backend, num_threads=num_threads)
    try:
        for _ in range(warmup):
            det(frame)
        pre, inf, post, tot = [], [], [], []
        for _ in range(runs):
            det(frame)
            t = det.last_timing
            pre.append(t.preprocess_ms)
            inf.append(t.infer_ms)
            post.append(t.postprocess_ms)
            tot.append(t.total_ms)
        return LatencyRow(
            model=Path(path).name, backend=backend, precision=det.metadata.precision,
            preprocess_ms=statistics.median(pre), infer_ms=statistics.median(inf),
            postprocess_ms=statistics.median(post), total_ms=statistics.median(tot),
        )  # fmt: skip
    finally:
        det.close()


def format_rows(rows: list[LatencyRow]) -> str:
    """A table with the ratio of each row's total latency to the first row's."""
    if not rows:
        return "(no measurements)"
    base = rows[0].total_ms
    head = f"{'model':<28}{'backend':<13}{'precision':<10}{'pre ms':>8}{'infer ms':>10}{'post ms':>9}{'total ms':>10}{'FPS':>8}{'speed-up':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.model:<28}{r.backend:<13}{r.precision:<10}{r.preprocess_ms:>8.2f}{r.infer_ms:>10.2f}"
            f"{r.postprocess_ms:>9.2f}{r.total_ms:>10.2f}{r.fps:>8.1f}{base / r.total_ms:>9.2f}x"
        )
    return "\n".join(lines)


@dataclass
class ThroughputRow:
    model: str
    backend: str
    precision: str
    requests: int  # inferences in flight
    frames: int
    seconds: float
    latency_p50_ms: float  # submit -> detections, per frame
    latency_p95_ms: float
    input: str  # "synthetic WxH" or the source

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _frames_for(source: str | Path | None, count: int, frame_size: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    if source is None:
        rng = np.random.default_rng(0)
        w, h = frame_size
        return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(8)], f"synthetic {w}x{h}"
    from .sources import open_source

    with open_source(source, live=False, reconnect=False) as src:  # decoded first: the model is measured, not the decoder
        frames = [f.image for _, f in zip(range(count), src)]
    if not frames:
        from .errors import SourceError

        raise SourceError(f"{source} gave no frames")
    return frames, str(source)


def measure_throughput(path: str | Path, backend: str, *, frames: int = 300, source: str | Path | None = None,
                       num_requests: int | None = None, num_threads: int | None = None,
                       frame_size: tuple[int, int] = (640, 480)) -> ThroughputRow:  # fmt: skip
    """Run ``frames`` frames through ``Detector.for_video`` keeping ``num_requests`` (default:
    the detector's) inferences in flight; frames cycle through ``source``'s (or synthetic ones)."""
    images, what = _frames_for(source, frames, frame_size)
    det = Detector.for_video(path, backend=backend, num_requests=num_requests, num_threads=num_threads)
    try:
        depth = det.num_requests
        det.warmup(depth)
        pending: deque[tuple[float, object]] = deque()
        latencies: list[float] = []

        def take() -> None:
            t, job = pending.popleft()
            job.result()  # type: ignore[attr-defined]
            latencies.append((time.perf_counter() - t) * 1e3)

        t0 = time.perf_counter()
        for i in range(frames):
            if len(pending) >= depth:
                take()
            pending.append((time.perf_counter(), det.submit(images[i % len(images)])))
        while pending:
            take()
        seconds = time.perf_counter() - t0
        q = np.quantile(latencies, [0.5, 0.95])
        return ThroughputRow(Path(path).name, backend, det.metadata.precision, depth, frames, seconds,
                             float(q[0]), float(q[1]), what)  # fmt: skip
    finally:
        det.close()


def format_throughput_rows(rows: list[ThroughputRow]) -> str:
    if not rows:
        return "(no measurements)"
    head = f"{'model':<28}{'backend':<13}{'precision':<10}{'requests':>9}{'frames':>8}{'FPS':>9}{'p50 ms':>9}{'p95 ms':>9}  input"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.model:<28}{r.backend:<13}{r.precision:<10}{r.requests:>9}{r.frames:>8}{r.fps:>9.1f}"
                     f"{r.latency_p50_ms:>9.2f}{r.latency_p95_ms:>9.2f}  {r.input}")  # fmt: skip
    return "\n".join(lines)
