"""Live PADet detection on cameras, video files or streams, with boxes, labels and an
FPS/latency overlay; several sources run on one detector and show tiled.

  python examples/webcam.py                                  # camera 0, embedded model, a window
  python examples/webcam.py --model padet_vgg384.xml --source 0 --source rtsp://10.0.0.5/stream1
  python examples/webcam.py --source clip.mp4 --output annotated.mp4 --no-show
  python examples/webcam.py --sources-file cameras.txt --output recordings/ --no-show
  python examples/webcam.py --source clip.mp4 --track --save-csv out.csv --no-show   # IDs, one CSV row per box

The flags are padet detect's (padet_sdk/cli_args.py), with two defaults of its own: the source
is camera 0 and --show is on. A window opens when this OpenCV has GUI support and a display is
available; q or ESC quits. With opencv-python-headless (no GUI) it says so and keeps going if
--output is given. Live sources (cameras, rtsp/http) drop stale frames instead of building up
latency and reconnect after a disconnect; files are processed frame by frame. Ctrl-C stops
cleanly; FPS and latency are printed at the end.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file from a checkout: make padet_sdk importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from padet_sdk import Detector, PadetError, multi_stream, stream  # noqa: E402
from padet_sdk.cli_args import (  # noqa: E402
    add_common_args, analytics_kwargs, annotated_path, collect_sources, detector_kwargs, progress_bar, stream_kwargs,
    wants_analytics,
)
from padet_sdk.cli_errors import GracefulInterrupt  # noqa: E402
from padet_sdk.display import WINDOW, gui_problem, tile  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="webcam", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.set_defaults(show=True)  # what this example is for
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    sources = collect_sources(args) or ["0"]
    show = args.show
    if show:
        problem = gui_problem()
        if problem:
            print(f"note: {problem}.", file=sys.stderr)
            if not args.output and not wants_analytics(args):
                print("nothing to do without a window: pass --output out.mp4 or a --save-* file (and --no-show)", file=sys.stderr)
                return 2
            print("continuing without a window", file=sys.stderr)
            show = False
    several = len(sources) > 1
    if several and wants_analytics(args):
        print("error: --track, --zone, --line and --save-* take one source", file=sys.stderr)
        return 2
    try:  # bad flags and unwritable files before the model loads
        analytics = analytics_kwargs(args, sources[0]) if wants_analytics(args) else {}
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    outputs = [annotated_path(s, args.output, suffix=".mp4", several=several) for s in sources]
    try:
        detector = Detector.for_video(args.model, **detector_kwargs(args))
        detector.warmup(detector.num_requests)  # first runs are slow: keep them off the first frames
        if several:
            frames = multi_stream(detector, sources, outputs=outputs, **stream_kwargs(args))
        else:
            frames = stream(detector, sources[0], output=outputs[0], **stream_kwargs(args), **analytics)
    except (PadetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{detector!r}\nsources: {', '.join(sources)}", file=sys.stderr)
    latest = {}
    bar = None if several else progress_bar(frames, args.max_frames, args.quiet or show)  # files: known length
    try:
        with frames, GracefulInterrupt(frames):  # Ctrl-C: the frames in flight, then a clean end
            for res in frames:
                if bar is not None:
                    bar.update()
                if show:
                    latest[res.source_index] = res.annotated()
                    cv2.imshow(WINDOW, tile([latest[k] for k in sorted(latest)]) if several else latest[res.source_index])
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
    except KeyboardInterrupt:
        pass
    except PadetError as e:  # a live source that stayed down after its reconnect attempts
        print(f"error: {e}", file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
        if show:
            cv2.destroyAllWindows()
        frames.close()
        detector.close()
    print(frames.stats.summary())
    for zone in analytics.get("zones", []):
        c = zone.counts()
        print(f"{zone.name}: in {c['in']}, out {c['out']}" if "in" in c else f"{zone.name}: {c['inside']} inside in the last frame")
    for sink in analytics.get("sinks", []):
        print(f"wrote {sink.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
