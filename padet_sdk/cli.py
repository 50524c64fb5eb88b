"""``padet`` — one command for the whole life of a PADet model, in the Ultralytics/OpenVINO
spirit. Every subcommand has its own ``--help``.

  padet detect SOURCE [--model M] [--output OUT]   image, folder, video, camera index or URL
  padet benchmark [MODEL ...]                      latency per backend/precision on this machine
  padet train ...          (needs [train])         python -m training.train
  padet eval ...           (needs [train])         python -m training.evaluate
  padet stats ...          (needs [train])         python -m training.anchor_stats (Figures 1–2)
  padet experiments ...    (needs [train])         python -m training.experiments (Tables 1–4)
  padet export ...         (needs [train,export])  export/to_openvino.py (--format onnx for ONNX)
  padet quantize ...       (needs [train,export])  export/quantize.py (INT8, NNCF or onnxruntime)

The runtime commands (detect, benchmark) need only the base install; the others import the
training and export packages when they run, and say which extra to install if they are missing.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .cli_args import positive_int, unit_float  # noqa: F401 - re-exported for the example scripts
from .extras import run_entry_point

#: subcommand → (module whose ``main(argv)`` runs it, pip extra it needs, one-line help)
DELEGATED = {
    "train": ("training.train", "train", "train a PADet (torchrun for several GPUs)"),
    "eval": ("training.evaluate", "train", "COCO AP / VOC mAP of a checkpoint (pycocotools)"),
    "stats": ("training.anchor_stats", "train", "positive/negative anchor statistics (paper Figures 1–2)"),
    "experiments": ("training.experiments", "train", "the paper's ablation tables as commands"),
    "export": ("export.to_openvino", "train,export", "checkpoint → OpenVINO IR (or ONNX with --format onnx)"),
    "quantize": ("export.quantize", "train,export", "INT8 quantization (NNCF or onnxruntime)"),
}


def _make_parent(path: Path) -> str | None:
    """Create the folder of an output file; the reason it cannot be created, or None."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((a for a in (path.parent, *path.parent.parents) if a.exists() and not a.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (e.strerror or str(e))
        return f"cannot create the output folder {path.parent}: {why}"
    return None


def _delegate(name: str, argv: list[str]) -> int:
    module, extra, _ = DELEGATED[name]
    if name == "export" and "--format" in argv:
        i = argv.index("--format")
        fmt = argv[i + 1] if i + 1 < len(argv) else ""
        if fmt not in ("onnx", "openvino"):
            print("padet export: --format must be onnx or openvino", file=sys.stderr)
            return 2
        argv = argv[:i] + argv[i + 2 :]
        module = "export.to_onnx" if fmt == "onnx" else module
    # the import inside run_entry_point: a missing torch/onnx/nncf, at import or later, is the one-line hint
    return run_entry_point(lambda: importlib.import_module(module).main(argv), extras=extra)


def train_main(argv: Sequence[str] | None = None) -> int:
    """``padet-train``: ``padet train`` under its own name, with the same one line when [train] is missing
    (pointing the script at ``training.train:main`` would import torch before anything could say so)."""
    return _delegate("train", list(sys.argv[1:] if argv is None else argv))


def _detect(argv: list[str]) -> int:
    from .backends import backend_names

    p = argparse.ArgumentParser(prog="padet detect", description="Detect objects in an image, an image folder, a "
                                "video file, a camera (index) or an RTSP/HTTP stream.")  # fmt: skip
    p.add_argument("source", help="image, folder, video file, camera index (0) or rtsp/http URL")
    p.add_argument("--model", "-m", default=None, help="PADet .xml or .onnx (default: the embedded demo model)")
    p.add_argument("--output", "-o", default=None,
                   help="annotated image (for an image) or .mp4 video (otherwise); JSON goes beside it")
    p.add_argument("--show", action="store_true", help="show a window (needs an OpenCV with GUI support)")
    p.add_argument("--conf", type=unit_float, default=None, help="minimum score in [0, 1] (default: the model's)")
    p.add_argument("--backend", choices=backend_names(), default="auto")
    p.add_argument("--device", default="CPU", help="OpenVINO device (CPU, GPU, AUTO)")
    p.add_argument("--max-frames", type=positive_int, default=None)
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads in all (default: the engine's for an image; for video several "
                        "narrower inferences side by side, see Detector.for_video)")
    args = p.parse_args(argv)

    import cv2

    from . import Detector, PadetError, stream
    from .display import WINDOW, gui_problem
    from .errors import SourceError
    from .output import refuse_overwriting_input
    from .sources import IMAGE_EXTENSIONS

    show = args.show
    if show and (problem := gui_problem()):
        print(f"note: {problem}; continuing without a window", file=sys.stderr)
        show = False
    src = Path(args.source)
    is_image = src.suffix.lower() in IMAGE_EXTENSIONS and src.is_file()
    if is_image:
        out = Path(args.output) if args.output else src.with_name(f"{src.stem}_padet{src.suffix}")
        outputs = [out, out.with_suffix(".json")]
    else:
        outputs = [Path(args.output), Path(args.output).with_suffix(".jsonl")] if args.output else []
    try:  # before anything is loaded or written
        refuse_overwriting_input(args.source, *outputs)
    except SourceError as e:
        print(f"padet detect: {e}", file=sys.stderr)
        return 2
    if is_image and outputs[0].suffix.lower() not in IMAGE_EXTENSIONS:
        print(f"padet detect: the input is an image, so --output must be an image file ({', '.join(IMAGE_EXTENSIONS)}), "
              f"got {outputs[0]}", file=sys.stderr)  # fmt: skip
        return 2
    if outputs and (problem := _make_parent(outputs[0])):
        print(f"padet detect: {problem}", file=sys.stderr)
        return 2
    make = Detector if is_image else Detector.for_video
    try:
        det = make(args.model, device=args.device, backend=args.backend, conf=args.conf, num_threads=args.threads)
    except (PadetError, ValueError) as e:
        print(f"padet detect: {e}", file=sys.stderr)
        return 1
    try:
        if is_image:
            frame = cv2.imread(str(src))
            if frame is None:
                print(f"padet detect: cannot read image {src}", file=sys.stderr)
                return 1
            dets = det(frame)
            for d in dets:
                print(f"{d.class_name:<12} {d.score:.3f}  {[round(v, 1) for v in d.box]}")
            print(f"{len(dets)} detections in {dets.timing.total_ms:.1f} ms", file=sys.stderr)
            try:
                written = cv2.imwrite(str(out), dets.draw(frame))
            except cv2.error as e:
                written, why = False, f": {str(e).strip().splitlines()[-1]}"
            else:
                why = " (no permission, disk full, or a format this OpenCV cannot encode)"
            if not written:
                print(f"padet detect: cannot write image {out}{why}", file=sys.stderr)
                return 1
            out.with_suffix(".json").write_text(dets.to_json())
            print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
            if show:
                cv2.imshow(WINDOW, dets.draw(frame))
                cv2.waitKey(0)
            return 0
        results = stream(det, args.source, output=args.output, max_frames=args.max_frames)
        jsonl = open(Path(args.output).with_suffix(".jsonl"), "w") if args.output else None
        try:
            with results:
                for r in results:
                    if jsonl:
                        jsonl.write(json.dumps({"frame": r.index, **r.detections.to_dict()}) + "\n")
                    if show:
                        cv2.imshow(WINDOW, r.annotated())
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
        finally:
            if jsonl:
                jsonl.close()
        print(results.stats.summary())
        return 0
    except (PadetError, ValueError, OSError) as e:
        print(f"padet detect: {e}", file=sys.stderr)
        return 1
    finally:
        det.close()


def _benchmark(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="padet benchmark", description="End-to-end latency (pre-process, inference, "
                                "native post-processing) of PADet model files on every engine that can run them, "
                                "one frame at a time; speed-up is relative to the first row.")  # fmt: skip
    p.add_argument("models", nargs="*", help="model files (.xml/.onnx); default: the embedded demo model")
    p.add_argument("--runs", type=int, default=30, help="timed calls per row (median reported)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: the engine's)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)

    from . import PadetError
    from .benchmark import backends_for, format_rows, measure
    from .detector import DEFAULT_MODEL

    models = args.models or [str(DEFAULT_MODEL)]
    rows = []
    try:
        for m in models:
            for backend in backends_for(m):
                print(f"timing {m} on {backend} ...", file=sys.stderr, flush=True)
                rows.append(measure(m, backend, runs=args.runs, warmup=args.warmup, num_threads=args.threads))
    except PadetError as e:
        print(f"padet benchmark: {e}", file=sys.stderr)
        return 1
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__, "fps": r.fps} for r in rows], indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="padet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["detect", "benchmark", *DELEGATED], help="what to do")
    p.add_argument("--version", action="version", version="padet 0.1.0")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help", "--version"):
        parser.parse_args(argv or ["--help"])  # prints and exits 0
    command, rest = argv[0], argv[1:]
    if command == "detect":
        return _detect(rest)
    if command == "benchmark":
        return _benchmark(rest)
    if command in DELEGATED:
        return _delegate(command, rest)
    parser.parse_args([command])  # prints the usage error
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
