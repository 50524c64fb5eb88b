"""Detect objects in images: writes an annotated copy and the detections as JSON.

  python examples/detect_image.py street.jpg                       # -> street_det.jpg + JSON on stdout
  python examples/detect_image.py a.jpg b.jpg --model m.xml --out-dir results/ --conf 0.4

For each input X.jpg the annotated image is X_det.jpg (in --out-dir, default next to the input)
and the JSON is X_det.json there too with --out-dir, else printed. JSON: image size, one entry
per detection (box x1,y1,x2,y2 in pixels, score, class_id, class_name) and stage timings.
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detect_image", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="input image files")
    p.add_argument("--model", "-m", default=None, help="PADet .xml or .onnx (default: the embedded model)")
    p.add_argument("--out-dir", "-o", default=None, help="folder for the annotated images and JSON files")
    p.add_argument("--conf", type=float, default=None, help="minimum score (default: the model's)")
    p.add_argument("--nms", choices=("soft-linear", "soft-gaussian", "hard"), default=None, help="NMS method (default: the model's)")
    p.add_argument("--backend", choices=("auto", "openvino", "onnxruntime"), default="auto", help="inference engine")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        detector = Detector(args.model, backend=args.backend, conf=args.conf, nms=args.nms)
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for name in args.images:
        src = Path(name)
        frame = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if frame is None:
            print(f"error: cannot read image {src}", file=sys.stderr)
            status = 1
            continue
        dets = detector(frame)
        folder = out_dir or src.parent
        img_path = folder / f"{src.stem}_det{src.suffix if src.suffix.lower() in ('.jpg', '.jpeg', '.png', '.bmp') else '.jpg'}"
        cv2.imwrite(str(img_path), dets.draw(frame))
        doc = {"image": str(src), "annotated": str(img_path), **dets.to_dict()}
        if out_dir:
            (out_dir / f"{src.stem}_det.json").write_text(json.dumps(doc, indent=2))
        else:
            print(json.dumps(doc))
        print(f"{src}: {len(dets)} detections in {dets.timing.total_ms:.1f} ms -> {img_path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
