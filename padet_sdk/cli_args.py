"""The command-line flags that ``padet detect`` and the example scripts share, defined once, so
that ``--conf``, ``--show`` or ``--source`` mean the same thing (and have the same default)
everywhere.

A command builds its parser with :func:`add_common_args`, which adds every group in
:data:`GROUPS`; a new feature adds one ``add_*_args(parser)`` function here and one line in
:data:`GROUPS`, and every command gets it. :func:`detector_kwargs`, :func:`collect_sources` and
:func:`annotated_path` turn the parsed flags into what the SDK takes.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .options import NMS_METHODS

#: suffix of every annotated output named after its input (``clip.mp4`` → ``clip_det.mp4``)
OUTPUT_SUFFIX = "_det"


def positive_int(text: str) -> int:
    """argparse ``type`` for counts such as ``--threads``: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_float(text: str) -> float:
    """argparse ``type`` for thresholds such as ``--conf``: a finite number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type`` for durations such as ``--read-timeout``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Which model, on which engine, with which post-processing thresholds."""
    from .backends import backend_names

    g = p.add_argument_group("model and post-processing")
    g.add_argument("--model", "-m", default=None, help="PADet .xml or .onnx (default: the embedded demo model)")
    g.add_argument("--backend", choices=backend_names(), default="auto",
                   help="inference engine (default: OpenVINO for .xml, onnxruntime for .onnx)")
    g.add_argument("--device", default="CPU", help="OpenVINO device: CPU, GPU, AUTO, ... (default CPU)")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads in all (default: the engine's for images; for video several "
                        "narrower inferences side by side, see Detector.for_video)")
    g.add_argument("--conf", type=unit_float, default=None, help="minimum score in [0, 1] (default: the model's)")
    g.add_argument("--iou", type=unit_float, default=None, help="NMS IoU threshold in [0, 1] (default: the model's)")
    g.add_argument("--nms", choices=sorted(NMS_METHODS), default=None, help="NMS method (default: the model's)")
    g.add_argument("--max-det", type=positive_int, default=None, help="detections kept per frame (default: the model's)")
    g.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                   help="keep only these classes, by name or id (default: all)")


def add_source_args(p: argparse.ArgumentParser) -> None:
    """Where frames come from: one or several sources, or a file listing them."""
    g = p.add_argument_group("sources")
    g.add_argument("--source", "-s", action="append", default=None, metavar="SRC", dest="sources",
                   help="image, image folder, video file, camera index (0) or rtsp/http URL; "
                        "repeat for several sources on one detector")
    g.add_argument("--sources-file", type=Path, default=None, metavar="TXT",
                   help="text file with one source a line (# starts a comment)")
    g.add_argument("--max-frames", type=positive_int, default=None, help="stop each source after this many frames")
    g.add_argument("--no-drop", action="store_true",
                   help="process every frame of a URL source (e.g. a file served over http) instead of "
                        "keeping only the newest frame")
    g.add_argument("--read-timeout", type=positive_float, default=None,
                   help="seconds without a frame before a live source counts as disconnected (default 10)")
    g.add_argument("--no-reconnect", action="store_true",
                   help="end a live source at its first disconnect instead of re-opening it")


def add_output_args(p: argparse.ArgumentParser) -> None:
    """What comes out: an annotated file (or folder), a window."""
    g = p.add_argument_group("output")
    g.add_argument("--output", "-o", default=None,
                   help=f"annotated image (for an image), .mp4 video (otherwise; H.264 with PyAV) or a folder; "
                        f"JSON goes beside it. Named after the input with {OUTPUT_SUFFIX!r} in a folder or "
                        "with several sources")
    g.add_argument("--show", action=argparse.BooleanOptionalAction, default=False,
                   help="show a window (needs an OpenCV with GUI support); several sources are tiled")
    g.add_argument("--quiet", "-q", action="store_true", help="only warnings and the final summary")


def point_list(text: str) -> list[tuple[float, float]]:
    """argparse ``type`` for ``--zone``/``--line``: "x,y x,y ..." pixel points."""
    try:
        pts = [tuple(float(v) for v in xy.split(",")) for xy in text.replace(";", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected points as 'x,y x,y ...', got {text!r}") from None
    if not pts or any(len(p) != 2 or not all(map(math.isfinite, p)) for p in pts):
        raise argparse.ArgumentTypeError(f"expected points as 'x,y x,y ...', got {text!r}")
    return pts  # type: ignore[return-value]


def add_analytics_args(p: argparse.ArgumentParser) -> None:
    """Video analytics on the detections: identities, counts, result files (videos, cameras, streams)."""
    g = p.add_argument_group("tracking, counting and result files (one video, camera or stream)")
    g.add_argument("--track", action="store_true",
                   help="give each object an ID kept across frames (ByteTrack, padet_sdk.track); drawn as #ID with a trail")
    g.add_argument("--zone", type=point_list, action="append", default=None, metavar="'X,Y X,Y X,Y ...'",
                   help="count objects (box bottom centre) inside this polygon each frame; repeatable")
    g.add_argument("--line", type=point_list, action="append", default=None, metavar="'X1,Y1 X2,Y2'",
                   help="count tracks crossing this line, in (left to right of its direction) and out; "
                        "needs --track; repeatable")
    g.add_argument("--save-json", default=None, metavar="JSONL",
                   help="one JSON line per frame: frame, time, boxes, scores, classes, track ids, zone counts")
    g.add_argument("--save-csv", default=None, metavar="CSV", help="one row per detection (and zone counts)")
    g.add_argument("--save-coco", default=None, metavar="JSON",
                   help="COCO results (image_id = frame + 1), for pycocotools' loadRes")
    g.add_argument("--save-txt", default=None, metavar="DIR",
                   help="YOLO txt, one file per frame: class cx cy w h score [track id], normalised")


#: the flag groups every command gets, in --help order; extend by adding a function here
GROUPS: list[Callable[[argparse.ArgumentParser], None]] = [add_model_args, add_source_args, add_output_args, add_analytics_args]

#: the --save-* flags and the sink kind of each (padet_sdk.sinks.sink_for)
SAVE_FLAGS = {"save_json": "json", "save_csv": "csv", "save_coco": "coco", "save_txt": "txt"}


def wants_analytics(args: argparse.Namespace) -> bool:
    """Whether any of :func:`add_analytics_args`' flags is set."""
    return bool(args.track or args.zone or args.line or any(getattr(args, k) for k in SAVE_FLAGS))


def analytics_kwargs(args: argparse.Namespace, source: str, tag: str | None = None) -> dict[str, Any]:
    """The :func:`~padet_sdk.stream.stream` arguments ``track``, ``zones`` and ``sinks`` of the
    analytics flags (the sinks open their files; with ``tag``, one source among several, each
    ``--save-*`` path gets ``_<tag>`` before its suffix). ValueError for a line without
    ``--track``; :class:`~padet_sdk.errors.SourceError` for a file that is the input or cannot be
    written."""
    from .output import refuse_overwriting_input
    from .sinks import sink_for
    from .zones import LineCounter, PolygonZone

    if args.line and not args.track:
        raise ValueError("--line counts tracks: add --track")
    zones: list[Any] = []
    for k, poly in enumerate(args.zone or [], 1):
        if len(poly) < 3:
            raise ValueError(f"--zone needs at least 3 points, got {len(poly)}")
        zones.append(PolygonZone(poly, name=f"zone{k}"))
    for k, pts in enumerate(args.line or [], 1):
        if len(pts) != 2:
            raise ValueError(f"--line takes 2 points, got {len(pts)}")
        zones.append(LineCounter(pts[0], pts[1], name=f"line{k}"))
    paths = {k: getattr(args, k) for k in SAVE_FLAGS if getattr(args, k)}
    if tag is not None:
        paths = {k: Path(p).with_name(f"{Path(p).stem}_{tag}{Path(p).suffix}") for k, p in paths.items()}
    refuse_overwriting_input(source, *paths.values())
    return {"track": args.track, "zones": zones, "sinks": [sink_for(path, SAVE_FLAGS[k]) for k, path in paths.items()]}


def progress_bar(results: Any, max_frames: int | None = None, quiet: bool = False) -> Any | None:
    """A tqdm bar over a :class:`~padet_sdk.stream.VideoStream` whose length is known (a file, an
    image folder); None for live sources, several sources, or ``quiet``."""
    source = getattr(results, "source", None)
    if quiet or source is None or source.live or not source.frame_count:
        return None
    from tqdm import tqdm

    total = min(max_frames or source.frame_count, source.frame_count)
    return tqdm(total=total, unit="frame", desc=Path(source.name).name[:40])


def add_common_args(p: argparse.ArgumentParser, *, skip: Sequence[Callable[[argparse.ArgumentParser], None]] = ()) -> argparse.ArgumentParser:
    """Add every group of :data:`GROUPS` (except ``skip``) to ``p``; returns ``p``."""
    for add in GROUPS:
        if add not in skip:
            add(p)
    return p


def detector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~padet_sdk.detector.Detector` arguments the flags set (None = the model's).
    ``--classes`` values that are whole numbers are class ids, the others names."""
    classes = [int(c) if c.isdigit() else c for c in args.classes] if args.classes else None
    return {
        "device": args.device, "backend": args.backend, "num_threads": args.threads, "conf": args.conf,
        "iou": args.iou, "nms": args.nms, "max_det": args.max_det, "classes": classes,
    }  # fmt: skip


def stream_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~padet_sdk.stream.stream` / :func:`~padet_sdk.multistream.multi_stream`
    arguments the source flags set."""
    return {
        "max_frames": args.max_frames, "live": False if args.no_drop else None, "read_timeout": args.read_timeout,
        "reconnect": not args.no_reconnect,
    }  # fmt: skip


def read_sources_file(path: Path) -> list[str]:
    """One source a line; blank lines and ``#`` comments skipped. OSError/ValueError if unusable."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    sources = [s for s in lines if s]
    if not sources:
        raise ValueError(f"{path} lists no sources (one a line)")
    return sources


def collect_sources(args: argparse.Namespace, positional: Sequence[str] = ()) -> list[str]:
    """Positional sources, then ``--source`` values, then the lines of ``--sources-file``."""
    sources = [*positional, *(args.sources or [])]
    if args.sources_file is not None:
        sources += read_sources_file(args.sources_file)
    return sources


def source_stem(source: str) -> str:
    """A file-name stem for a source: the file's stem, ``camera0``, or the URL's host and path."""
    if source.strip().isdigit():
        return f"camera{source.strip()}"
    if "://" in source:
        rest = source.split("://", 1)[1].split("@")[-1]
        return "".join(c if c.isalnum() else "_" for c in rest).strip("_") or "stream"
    p = Path(source)
    return p.stem if p.suffix else p.name


def annotated_path(source: str, output: str | None, *, suffix: str, several: bool = False) -> Path | None:
    """Where the annotated copy of ``source`` goes: ``output`` itself for one source and a file
    name, ``output/<stem>_det<suffix>`` when ``output`` has no suffix (a folder) or several
    sources share it; None without ``output``."""
    if output is None:
        return None
    out = Path(output)
    if several or not out.suffix:
        return out / f"{source_stem(source)}{OUTPUT_SUFFIX}{suffix}"
    return out


__all__ = [
    "GROUPS", "OUTPUT_SUFFIX", "SAVE_FLAGS", "add_analytics_args", "add_common_args", "add_model_args", "add_output_args",
    "add_source_args", "analytics_kwargs", "annotated_path", "collect_sources", "detector_kwargs", "point_list",
    "positive_float", "positive_int", "progress_bar", "read_sources_file", "source_stem", "stream_kwargs", "unit_float",
    "wants_analytics",
]
