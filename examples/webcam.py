"""Live PADet detection on a camera, video file or stream, with boxes, labels and an FPS/latency
overlay.

  python examples/webcam.py                                  # camera 0, embedded model
  python examples/webcam.py --model padet_vgg384.xml --source 0
  python examples/webcam.py --source clip.mp4 --output annotated.mp4 --no-show
  python examples/webcam.py --source rtsp://user:pw@10.0.0.5/stream1 --conf 0.4

A window opens when this OpenCV has GUI support and a display is available; q or ESC quits.
With opencv-python-headless (no GUI) it says so and keeps going if --output is given. Live
sources (cameras, rtsp/http) drop stale frames instead of building up latency; files are
processed frame by frame. FPS and latency are printed at the end.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file from a checkout: make padet_sdk importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from padet_sdk import Detector, PadetError, stream  # noqa: E402
from padet_sdk.cli import positive_int  # noqa: E402
from padet_sdk.display import WINDOW, gui_problem  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="webcam", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", default=None, help="PADet .xml or .onnx (default: the embedded model)")
    p.add_argument("--source", "-s", default="0",
                   help="camera index (0), video file, rtsp/http URL or image folder (default 0)")
    p.add_argument("--output", "-o", default=None, help="write the annotated video here (.mp4, mp4v codec)")
    p.add_argument("--no-show", action="store_true", help="do not open a window")
    p.add_argument("--conf", type=float, default=None, help="minimum score (default: the model's)")
    p.add_argument("--nms", choices=("soft-linear", "soft-gaussian", "hard"), default=None, help="NMS method (default: the model's)")
    p.add_argument("--backend", choices=("auto", "openvino", "onnxruntime"), default="auto",
                   help="inference engine (default: OpenVINO for .xml, onnxruntime for .onnx)")
    p.add_argument("--device", default="CPU", help="OpenVINO device, e.g. CPU, GPU, AUTO (default CPU)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads in all (default: Detector.for_video's, several narrower "
                        "inferences side by side)")
    p.add_argument("--no-drop", action="store_true",
                   help="process every frame of a URL source (e.g. a video file served over http) instead of "
                        "keeping only the newest frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--quiet", "-q", action="store_true", help="only warnings and the final summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    show = not args.no_show
    if show:
        problem = gui_problem()
        if problem:
            print(f"note: {problem}.", file=sys.stderr)
            if not args.output:
                print("nothing to do without a window: pass --output out.mp4 (and --no-show)", file=sys.stderr)
                return 2
            print(f"continuing without a window; writing {args.output}", file=sys.stderr)
            show = False
    try:
        detector = Detector.for_video(args.model, device=args.device, backend=args.backend, conf=args.conf, nms=args.nms,
                                      num_threads=args.threads)
        detector.warmup(detector.num_requests)  # first runs are slow: keep them off the first frames
        frames = stream(detector, args.source, output=args.output, max_frames=args.max_frames,
                        live=False if args.no_drop else None)
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{detector!r}\nsource: {frames.source.name} ({'live' if frames.source.live else 'file'})", file=sys.stderr)
    try:
        with frames:
            for res in frames:
                if show:
                    cv2.imshow(WINDOW, res.annotated())
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
    except KeyboardInterrupt:
        pass
    finally:
        if show:
            cv2.destroyAllWindows()
        detector.close()
    print(frames.stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
