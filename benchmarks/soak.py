"""Soak test of the async video pipeline: many frames from a file through ``padet_sdk.stream``.

  python benchmarks/soak.py                       # 10,000 frames, embedded demo model
  python benchmarks/soak.py --frames 2000 --model my.xml

Checks, and exits non-zero if one fails:
- resident memory (RSS) at the end is within --rss-tolerance (5 %) of RSS after warm-up;
- no frame is dropped or reordered: every frame carries its own index as a binary code in a
  strip at its top, and the pipeline must yield the codes 0, 1, 2, … in order.
The video is made here: the first frames of the synthetic demo clip, repeated.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from padet_sdk.cli import positive_int  # noqa: E402

BITS = 16
CELL = 8  # pixels per bit: survives mp4v compression


def stamp(frame: np.ndarray, index: int) -> np.ndarray:
    """Write ``index`` as BITS black/white cells along the top-left edge."""
    for b in range(BITS):
        v = 255 if (index >> b) & 1 else 0
        frame[0:CELL, b * CELL : (b + 1) * CELL] = v
    return frame


def read_stamp(frame: np.ndarray) -> int:
    cells = frame[1 : CELL - 1, :BITS * CELL].reshape(CELL - 2, BITS, CELL, 3)[:, :, 1:-1].mean(axis=(0, 2, 3))
    return int(sum(1 << b for b in range(BITS) if cells[b] > 127))


def rss_mib() -> float:
    """Resident set size of this process (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def make_video(path: Path, frames: int, size: tuple[int, int], unique: int = 200) -> None:
    from training.data.synth_clip import render_clip_frames

    base = [f for f, *_ in render_clip_frames(unique, size, seed=1)]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(frames):
        w.write(stamp(base[i % unique].copy(), i))
    w.release()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="PADet model (default: the embedded demo model)")
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--warmup", type=int, default=500, help="frames before the reference RSS is taken")
    p.add_argument("--size", default="320x240", help="frame size WxH")
    p.add_argument("--rss-tolerance", type=float, default=0.05)
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads in all (default: Detector.for_video's)")
    p.add_argument("--video", type=Path, default=None, help="reuse/keep the generated video here")
    args = p.parse_args(argv)
    if args.frames >= 2**BITS:
        p.error(f"--frames must be < {2**BITS}")
    size = tuple(int(v) for v in args.size.lower().split("x"))

    from padet_sdk import Detector, stream

    tmp = tempfile.TemporaryDirectory(prefix="padet_soak_")
    video = args.video or Path(tmp.name) / "soak.mp4"
    if not video.is_file():
        print(f"writing {args.frames} frames to {video} ...", flush=True)
        make_video(video, args.frames, size)
    det = Detector.for_video(args.model, num_threads=args.threads)
    expected, bad_order, rss_warm = 0, [], None
    t0 = time.perf_counter()
    results = stream(det, video)
    with results:
        for r in results:
            code = read_stamp(r.frame)
            if code != expected or r.index != expected:
                bad_order.append((expected, r.index, code))
            expected += 1
            if expected == args.warmup:
                rss_warm = rss_mib()
            if expected % 1000 == 0:
                print(f"  {expected} frames, {results.stats.fps:.1f} FPS, RSS {rss_mib():.1f} MiB", flush=True)
    rss_end = rss_mib()
    det.close()
    secs = time.perf_counter() - t0
    growth = (rss_end - rss_warm) / rss_warm if rss_warm else float("nan")
    print(f"\n{expected} frames in {secs:.1f} s ({expected / secs:.1f} FPS); dropped {results.stats.dropped}")
    print(f"RSS after warm-up ({args.warmup} frames) {rss_warm:.1f} MiB, at the end {rss_end:.1f} MiB: {growth:+.2%}")
    ok = True
    if expected != args.frames:
        print(f"FAIL: {expected} frames came out of {args.frames}")
        ok = False
    if bad_order:
        print(f"FAIL: {len(bad_order)} frames out of order, first (expected, index, code): {bad_order[:3]}")
        ok = False
    if not abs(growth) <= args.rss_tolerance:
        print(f"FAIL: RSS changed by {growth:+.2%} (limit ±{args.rss_tolerance:.0%})")
        ok = False
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
