"""``padet detect``: detections on images, image folders, videos, cameras and streams, one
or several at once, with the flags of :mod:`padet_sdk.cli_args`.

- an image gives an annotated image and a JSON file beside it; a folder of images gives one
  of each per image (in ``--output``, default ``<folder>_det/``), not a video;
- a video, camera or URL gives, with ``--output``, an annotated .mp4 (H.264 with PyAV) and one
  JSON line per frame; several sources run on one detector (:func:`~padet_sdk.multistream.multi_stream`),
  one output per source in the ``--output`` folder, and ``--show`` tiles them;
- a live source with neither ``--show`` nor ``--output`` prints one progress line a second;
- Ctrl-C ends cleanly: the outputs are finished and closed and the summary printed (exit 130).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from .cli_errors import GracefulInterrupt, report
from .cli_args import (
    OUTPUT_SUFFIX, add_common_args, analytics_kwargs, annotated_path, collect_sources, detector_kwargs, progress_bar, source_stem,
    stream_kwargs, wants_analytics,
)

PROG = "padet detect"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="SOURCE",
                   help="image, image folder, video file, camera index (0) or rtsp/http URL (several allowed)")  # fmt: skip
    return add_common_args(p)


def _error(msg: object, code: int) -> int:
    return report(PROG, msg, code)


def _make_parent(path: Path) -> str | None:
    """Create the folder of an output file; the reason it cannot be created, or None."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((a for a in (path.parent, *path.parent.parents) if a.exists() and not a.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (e.strerror or str(e))
        return f"cannot create the output folder {path.parent}: {why}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(levelname)s %(message)s")
    from .sources import IMAGE_EXTENSIONS

    try:
        sources = collect_sources(args, args.inputs)
    except (OSError, ValueError) as e:
        return _error(e, 2)
    if not sources:
        return _error("no source: give a SOURCE, --source or --sources-file", 2)
    if len(sources) == 1:
        src = Path(sources[0])
        if src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS:
            out = Path(args.output) if args.output else src.with_name(f"{src.stem}{OUTPUT_SUFFIX}{src.suffix}")
            if out.suffix.lower() not in IMAGE_EXTENSIONS:
                return _error(f"the input is an image, so --output must be an image file ({', '.join(IMAGE_EXTENSIONS)}), "
                              f"got {out}", 2)  # fmt: skip
            return _detect_images(args, [(src, out)])
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                return _error(f"folder {src} has no images ({', '.join(IMAGE_EXTENSIONS)})", 2)
            folder = Path(args.output) if args.output else src.with_name(f"{src.name}{OUTPUT_SUFFIX}")
            return _detect_images(args, [(f, folder / f"{f.stem}{OUTPUT_SUFFIX}{f.suffix}") for f in files])
    return _detect_streams(args, sources)


def _detect_images(args: argparse.Namespace, jobs: list[tuple[Path, Path]]) -> int:
    """One annotated image + JSON per input image."""
    import cv2

    from . import Detector, PadetError
    from .output import refuse_overwriting_input

    if wants_analytics(args):
        return _error("--track, --zone, --line and --save-* are for a video, camera or stream, not images", 2)
    try:  # before anything is loaded or written
        for src, out in jobs:
            refuse_overwriting_input(src, out, out.with_suffix(".json"))
    except PadetError as e:
        return _error(e, 2)
    if problem := _make_parent(jobs[0][1]):
        return _error(problem, 2)
    try:
        det = Detector(args.model, **detector_kwargs(args))
    except (PadetError, ValueError) as e:
        return _error(e, 2)
    status = 0
    try:
        for src, out in jobs:
            frame = cv2.imread(str(src))
            if frame is None:
                print(f"{PROG}: cannot read image {src}", file=sys.stderr)
                status = 1
                continue
            dets = det(frame)
            if len(jobs) == 1:
                for d in dets:
                    print(f"{d.class_name:<12} {d.score:.3f}  {[round(v, 1) for v in d.box]}")
            try:
                written = cv2.imwrite(str(out), dets.draw(frame))
            except cv2.error as e:
                written, why = False, f": {str(e).strip().splitlines()[-1]}"
            else:
                why = " (no permission, disk full, or a format this OpenCV cannot encode)"
            if not written:
                return _error(f"cannot write image {out}{why}", 2)
            out.with_suffix(".json").write_text(json.dumps({"image": str(src), **dets.to_dict()}))
            print(f"{src}: {len(dets)} detections in {dets.timing.total_ms:.1f} ms -> {out} (+ .json)", file=sys.stderr)
            if args.show:
                _show_still(dets.draw(frame))
        return status
    finally:
        det.close()


def _show_still(img: Any) -> None:
    import cv2

    from .display import WINDOW, gui_problem

    if problem := gui_problem():
        print(f"note: {problem}", file=sys.stderr)
        return
    cv2.imshow(WINDOW, img)
    cv2.waitKey(0)


def _detect_streams(args: argparse.Namespace, sources: list[str]) -> int:
    """Videos, cameras, URLs (and, among several sources, folders as frame sequences)."""
    import cv2

    from . import Detector, PadetError, multi_stream, stream
    from .display import WINDOW, gui_problem, tile
    from .output import refuse_overwriting_input

    several = len(sources) > 1
    outs = [annotated_path(s, args.output, suffix=".mp4", several=several) for s in sources]
    try:
        for s, out in zip(sources, outs):
            if out is not None:
                refuse_overwriting_input(s, out, out.with_suffix(".jsonl"))
    except PadetError as e:
        return _error(e, 2)
    for out in outs:
        if out is not None and (problem := _make_parent(out)):
            return _error(problem, 2)
    analytics: dict[str, Any] = {}
    per_source: list[dict[str, Any]] | None = None
    if wants_analytics(args):  # bad flags and unwritable files before the model loads
        try:
            if several:  # a tracker, zones and sinks per source; --save-* files get _<source stem>
                per_source = [analytics_kwargs(args, s, tag) for s, tag in zip(sources, _unique_stems(sources))]
            else:
                analytics = analytics_kwargs(args, sources[0])
        except (PadetError, ValueError) as e:
            return _error(e, 2)
    show = args.show
    if show and (problem := gui_problem()):
        print(f"note: {problem}; continuing without a window", file=sys.stderr)
        show = False
    try:
        det = Detector.for_video(args.model, **detector_kwargs(args))
    except (PadetError, ValueError) as e:
        return _error(e, 2)
    jsonl: dict[int, IO[str]] = {}
    results: Any = None
    bar: Any = None
    code = 0
    try:
        if several:
            results = multi_stream(det, sources, outputs=outs, analytics=per_source, **stream_kwargs(args))
            live = any(s is not None and s.live for s in results.sources)
        else:
            results = stream(det, sources[0], output=outs[0], **stream_kwargs(args), **analytics)
            live = results.source.live
        bar = progress_bar(results, args.max_frames, args.quiet or show)  # files and folders: known length
        for i, out in enumerate(outs):
            if out is not None:
                jsonl[i] = open(out.with_suffix(".jsonl"), "w")
        progress = live and not show and args.output is None and not args.quiet
        latest: dict[int, Any] = {}
        t_last = time.monotonic()
        stopping = GracefulInterrupt(results)
        with results, stopping:
            for r in results:
                if bar is not None:
                    bar.update()
                if (f := jsonl.get(r.source_index)) is not None:
                    f.write(json.dumps({"frame": r.index, **({"source": r.source} if several else {}), **r.detections.to_dict()}) + "\n")
                if show:
                    latest[r.source_index] = r.annotated()
                    cv2.imshow(WINDOW, tile([latest[k] for k in sorted(latest)]) if several else latest[r.source_index])
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
                if progress and (now := time.monotonic()) - t_last >= 1.0:
                    t_last = now
                    print(_progress_line(results.stats, several), file=sys.stderr, flush=True)
        if stopping.requested:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        code = 130
        print(f"\n{PROG}: interrupted", file=sys.stderr)
    except (PadetError, ValueError, OSError) as e:  # a source or output failing mid-run
        code = report(PROG, e)
    finally:
        if bar is not None:
            bar.close()
        if results is not None:
            results.close()  # outputs finished before the files are reported
        for f in jsonl.values():
            f.close()
        det.close()
        if show:
            cv2.destroyAllWindows()
    if results is not None:
        print(results.stats.summary())
        groups = [(None, analytics)] if per_source is None else list(zip(sources, per_source))
        for src, kw in groups:
            where = f" [{src}]" if src is not None else ""
            for z in kw.get("zones", []):
                c = z.counts()
                print(f"{z.name}{where}: in {c['in']}, out {c['out']}" if "in" in c
                      else f"{z.name}{where}: {c['inside']} inside in the last frame")  # fmt: skip
        sinks = [s for _, kw in groups for s in kw.get("sinks", [])]
        if sinks:
            print(f"wrote {', '.join(str(s.path) for s in sinks)}", file=sys.stderr)
        written = [str(o) for o in outs if o is not None and o.exists()]
        if written:
            print(f"wrote {', '.join(written)} (+ .jsonl)", file=sys.stderr)
    return code


def _unique_stems(sources: list[str]) -> list[str]:
    """:func:`source_stem` of each source, ``-2``, ``-3`` added where two would be the same."""
    stems, seen = [], {}
    for s in sources:
        stem = source_stem(s)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _progress_line(stats: Any, several: bool) -> str:
    if not several:
        return f"{stats.frames} frames, {stats.fps:.1f} FPS, latency p50 {stats.latency(0.5):.1f} ms, dropped {stats.dropped}"
    per = "; ".join(f"[{i}] {s.frames} f {s.fps:.1f} FPS" + (" FAILED" if s.error else "") for i, s in enumerate(stats.sources))
    return f"{stats.frames} frames: {per}"


__all__ = ["build_parser", "main"]
