"""Detect objects in images: writes an annotated copy and the detections as JSON beside it.

  python examples/detect_image.py street.jpg                       # -> street_det.jpg + street_det.json
  python examples/detect_image.py a.jpg b.jpg frames/ --model m.xml --output results/ --conf 0.4

For each input X.jpg (files, or every image of a folder) the annotated image is X_det.jpg and
the JSON X_det.json, in --output (a folder) or else next to the input. JSON: image size, one
entry per detection (box x1,y1,x2,y2 in pixels, score, class_id, class_name) and stage timings.
The flags are padet detect's (padet_sdk/cli_args.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from padet_sdk import Detector, PadetError  # noqa: E402
from padet_sdk.cli_args import OUTPUT_SUFFIX, add_analytics_args, add_common_args, detector_kwargs  # noqa: E402
from padet_sdk.sources import IMAGE_EXTENSIONS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detect_image", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="input image files or folders of images")
    add_common_args(p, skip=[add_analytics_args])  # tracking and counting need a video
    p.add_argument("--out-dir", dest="output", help=argparse.SUPPRESS)  # the older name of --output
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        detector = Detector(args.model, **detector_kwargs(args))
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out_dir = Path(args.output) if args.output else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    inputs = []
    for name in args.images:
        p = Path(name)
        inputs += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) if p.is_dir() else [p]
    status = 0
    for src in inputs:
        frame = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if frame is None:
            print(f"error: cannot read image {src}", file=sys.stderr)
            status = 1
            continue
        dets = detector(frame)
        folder = out_dir or src.parent
        img_path = folder / f"{src.stem}{OUTPUT_SUFFIX}{src.suffix if src.suffix.lower() in IMAGE_EXTENSIONS else '.jpg'}"
        cv2.imwrite(str(img_path), dets.draw(frame))
        img_path.with_suffix(".json").write_text(json.dumps({"image": str(src), "annotated": str(img_path), **dets.to_dict()}, indent=2))
        print(f"{src}: {len(dets)} detections in {dets.timing.total_ms:.1f} ms -> {img_path} (+ .json)", file=sys.stderr)
    detector.close()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
