"""Detect objects in a video file: writes an annotated mp4 (H.264 with PyAV) and one JSON line
per frame.

  python examples/detect_video.py clip.mp4                          # -> clip_det.mp4 + clip_det.jsonl
  python examples/detect_video.py clip.mp4 --model m.xml --output out.mp4 --jsonl out.jsonl

Every frame is processed (none dropped), several frames in flight at once. Each JSON line:
{"frame": i, "image_size": ..., "detections": [{box, score, class_id, class_name}...], "timing": ...}.
The flags are padet detect's (padet_sdk/cli_args.py), plus --jsonl.
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
from padet_sdk.cli_args import add_common_args, analytics_kwargs, annotated_path, detector_kwargs, stream_kwargs, wants_analytics  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detect_video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="input video file (or image folder, read as frames)")
    p.add_argument("--jsonl", default=None, help="per-frame detections (default: beside the video output, .jsonl)")
    add_common_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    src = Path(args.video)
    output = annotated_path(str(src), args.output or str(src.parent), suffix=".mp4")
    jsonl = Path(args.jsonl) if args.jsonl else output.with_suffix(".jsonl")
    try:
        analytics = analytics_kwargs(args, str(src)) if wants_analytics(args) else {}  # --track, --zone, --line, --save-*
        detector = Detector.for_video(args.model, **detector_kwargs(args))
        frames = stream(detector, src, output=output, **{**stream_kwargs(args), "live": False}, **analytics)
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with frames, jsonl.open("w") as f:
        for res in frames:
            f.write(json.dumps({"frame": res.index, **res.detections.to_dict()}) + "\n")
    detector.close()
    print(f"{frames.stats.summary()}\nwrote {output} and {jsonl}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
