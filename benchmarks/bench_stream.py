"""Video throughput of the asynchronous pipeline (padet_sdk.stream) against a plain synchronous
loop, on the same model, video and output settings.

The synchronous loop is what one writes first:

    while cap.read(): dets = detector(frame); writer.write(dets.draw(frame))

so decode, pre-processing, inference, post-processing, drawing and encoding add up. The
pipeline overlaps them (reader thread, >= 2 inferences in flight, writer thread). Reported:
frames/s of each, the ratio, and the pipeline's latency. Each variant runs --repeats times and
the best run counts (the machines this runs on are shared).

What to expect on 2 cores: the gain is the share of non-inference work (decode, encode,
drawing, pre/post-processing) that can overlap inference. With a small model on 720p video it
is large (1.3-1.6x measured); when inference dominates (a wide model at 320+) both loops are
inference-bound and the ratio drops towards 1.1x.

Without --model, a narrow random-init PADet is exported to a temporary OpenVINO IR (needs torch
and the training/export packages); with --model only padet_sdk is used.

  python benchmarks/bench_stream.py                       # temp model, synthetic 720p video
  python benchmarks/bench_stream.py --model m.xml --video clip.mp4 --frames 300
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from padet_sdk import Detector, stream  # noqa: E402
from padet_sdk.stream import draw_overlay  # noqa: E402


def make_video(path: Path, frames: int, width: int, height: int, fps: float = 30.0) -> Path:
    """Synthetic clip: moving coloured shapes on a textured background (decodes like real video)."""
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 8)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        img = bg.copy()
        for k in range(5):
            x = int((37 * k + 3 * i) % width)
            y = int(height * (0.2 + 0.15 * k))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            if k % 2:
                cv2.circle(img, (x, y), 20 + 6 * k, color, -1)
            else:
                cv2.rectangle(img, (x, y), (x + 40 + 10 * k, y + 30 + 8 * k), color, -1)
        w.write(img)
    w.release()
    return path


def export_temp_model(out_dir: Path, input_size: int, width: float) -> Path:
    """A narrow random-init PADet as OpenVINO IR (benchmark stand-in for a trained model)."""
    import torch

    from export.graph import build_metadata
    from export.openvino_export import export_openvino
    from training import build_model

    torch.manual_seed(0)
    model = build_model("vgg16_384", 3, width=width, input_size=input_size, prior_prob=0.1).eval()
    meta = build_metadata(model, ["circle", "square", "triangle"], trained=False)
    return export_openvino(model, out_dir / "bench.xml", meta)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def run_sync(detector: Detector, video: Path, output: Path | None, max_frames: int) -> tuple[int, float]:
    """The naive loop: everything on one thread, one frame at a time."""
    cap = cv2.VideoCapture(str(video))
    writer = None
    n = 0
    t0 = time.perf_counter()
    while n < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        t = time.perf_counter()
        dets = detector(frame)
        img = dets.draw(frame)
        draw_overlay(img, f"{n / max(time.perf_counter() - t0, 1e-9):5.1f} FPS  latency {(time.perf_counter() - t) * 1e3:5.1f} ms")
        if output is not None:
            if writer is None:
                writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (frame.shape[1], frame.shape[0]))
            writer.write(img)
        n += 1
    if writer is not None:
        writer.release()
    cap.release()
    return n, time.perf_counter() - t0


def run_async(detector: Detector, video: Path, output: Path | None, max_frames: int, depth: int | None) -> tuple[int, float, dict]:
    t0 = time.perf_counter()
    s = stream(detector, video, output=output, max_frames=max_frames, depth=depth)
    n = sum(1 for _ in s)
    dt = time.perf_counter() - t0
    st = s.stats
    return n, dt, {"latency_p50_ms": st.latency(0.5), "latency_p95_ms": st.latency(0.95)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_stream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="PADet .xml/.onnx (default: export a narrow random model to a temp dir)")
    p.add_argument("--backend", default="auto", choices=("auto", "openvino", "onnxruntime"))
    p.add_argument("--video", help="input video (default: a synthetic clip)")
    p.add_argument("--frames", type=int, default=200, help="frames per run (default 200)")
    p.add_argument("--size", default="1280x720", help="synthetic video size WxH (default 1280x720)")
    p.add_argument("--input-size", type=int, default=192, help="temp model input size (default 192)")
    p.add_argument("--width", type=float, default=0.125, help="temp model channel multiplier (default 0.125)")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant, best counts (default 3)")
    p.add_argument("--depth", type=int, default=None, help="pipeline depth (default: detector.num_requests)")
    p.add_argument("--hint", default="none",
                   help="OpenVINO performance hint of the async detector: none (device default, LATENCY on CPU) or THROUGHPUT")
    p.add_argument("--no-output", action="store_true", help="do not encode an output video")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="padet_bench_") as tmp:
        tmp_dir = Path(tmp)
        model = Path(args.model) if args.model else export_temp_model(tmp_dir, args.input_size, args.width)
        if args.video:
            video = Path(args.video)
        else:
            w, h = (int(v) for v in args.size.lower().split("x"))
            video = make_video(tmp_dir / "clip.mp4", args.frames, w, h)
        out = None if args.no_output else tmp_dir / "out.mp4"
        sync_det = Detector(model, backend=args.backend, conf=0.3)
        hint = args.hint if args.hint.lower() != "none" else None
        async_det = Detector(model, backend=args.backend, conf=0.3, performance_hint=hint)
        for d in (sync_det, async_det):
            d.warmup(3)
        best_sync = best_async = 0.0
        lat: dict = {}
        cpu_sync = cpu_async = 0.0
        for _ in range(args.repeats):
            c0 = _cpu_seconds()
            n, dt = run_sync(sync_det, video, out, args.frames)
            c1 = _cpu_seconds()
            if n / dt > best_sync:
                best_sync, cpu_sync = n / dt, (c1 - c0) / dt
            n2, dt2, lat2 = run_async(async_det, video, out, args.frames, args.depth)
            c2 = _cpu_seconds()
            if n2 != n:
                raise SystemExit(f"async pipeline produced {n2} frames, sync {n}")
            if n2 / dt2 > best_async:
                best_async, lat, cpu_async = n2 / dt2, lat2, (c2 - c1) / dt2
        res = {
            "model": str(model if args.model else f"random vgg16 width={args.width} input={args.input_size}"),
            "backend": sync_det.backend,
            "frames": n,
            "video": f"{args.size}" if not args.video else str(video),
            "output": not args.no_output,
            "sync_fps": round(best_sync, 1),
            "async_fps": round(best_async, 1),
            "ratio": round(best_async / best_sync, 2),
            "async_depth": args.depth or async_det.num_requests,
            "async_hint": hint,
            # cores this process kept busy: when it stays well under os.cpu_count() while the
            # pipeline is not faster, other processes hold the CPU (the ratio then says little)
            "sync_cores_used": round(cpu_sync, 2),
            "async_cores_used": round(cpu_async, 2),
            "cpu_count": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            **{k: round(v, 1) for k, v in lat.items()},
        }
        print(json.dumps(res, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        sync_det.close()
        async_det.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
