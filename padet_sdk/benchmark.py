"""Latency of PADet model files on this machine, end to end (pre-process, inference, native
post-processing), for ``padet benchmark``. Median of ``runs`` calls after ``warmup`` calls, one
frame at a time, on a fixed synthetic frame so that every model sees the same input."""
from __future__ import annotations

import statistics
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
