"""Detect objects in a video file: writes an annotated mp4 and one JSON line per frame.

  python examples/detect_video.py clip.mp4                          # -> clip_det.mp4 + clip_det.jsonl
  python examples/detect_video.py clip.mp4 --model m.xml --output out.mp4 --jsonl out.jsonl

Every frame is processed (none dropped), several frames in flight at once. Each JSON line:
{"frame": i, "image_size": ..., "detections": [{box, score, class_id, class_name}...], "timing": ...}.
The output uses the mp4v codec (the H.264 encoder is not in the pip OpenCV wheels).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from padet_sdk import Detector, PadetError, stream  # noqa: E402
from padet_sdk.cli import positive_int  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detect_video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="input video file (or image folder)")
    p.add_argument("--model", "-m", default=None, help="PADet .xml or .onnx (default: the embedded model)")
    p.add_argument("--output", "-o", default=None, help="annotated video (default: <video>_det.mp4)")
    p.add_argument("--jsonl", default=None, help="per-frame detections (default: <video>_det.jsonl)")
    p.add_argument("--conf", type=float, default=None, help="minimum score (default: the model's)")
    p.add_argument("--nms", choices=("soft-linear", "soft-gaussian", "hard"), default=None, help="NMS method (default: the model's)")
    p.add_argument("--backend", choices=("auto", "openvino", "onnxruntime"), default="auto", help="inference engine")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads in all (default: Detector.for_video's, several narrower "
                        "inferences side by side)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    src = Path(args.video)
    stem = src.with_suffix("") if src.suffix else src
    output = args.output or f"{stem}_det.mp4"
    jsonl = Path(args.jsonl or f"{stem}_det.jsonl")
    try:
        detector = Detector.for_video(args.model, backend=args.backend, conf=args.conf, nms=args.nms,
                                      num_threads=args.threads)
        frames = stream(detector, src, output=output, max_frames=args.max_frames, live=False)
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with frames, jsonl.open("w") as f:
        for res in frames:
            f.write(json.dumps({"frame": res.index, **res.detections.to_dict()}) + "\n")
    detector.close()
    print(f"{frames.stats.summary()}\nwrote {output} and {jsonl}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
