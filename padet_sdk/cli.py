"""``padet`` — one command for the whole life of a PADet model, in the Ultralytics/OpenVINO
spirit. Every subcommand has its own ``--help``.

  padet detect SOURCE... [--model M] [--output OUT]  images, folders, videos, cameras, URLs (several at once)
  padet info [MODEL]                               classes, input, anchors, precision, thresholds; engines, devices
  padet benchmark [MODEL ...] [--mode throughput]  latency (or throughput) per engine/precision on this machine
  padet train ...          (needs [train])         python -m training.train
  padet eval ...           (needs [train])         python -m training.evaluate
  padet stats ...          (needs [train])         python -m training.anchor_stats (Figures 1–2)
  padet experiments ...    (needs [train])         python -m training.experiments (Tables 1–4)
  padet export ...         (needs [train,export])  export/to_openvino.py (--format onnx for ONNX)
  padet quantize ...       (needs [train,export])  export/quantize.py (INT8, NNCF or onnxruntime)

The runtime commands (detect, info, benchmark) need only the base install; the others import the
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
from .cli_errors import guard, report, take_debug_flag
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


def _info(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="padet info", description="What a PADet model file holds (classes, input size, "
                                "anchors, precision and quantization scheme, thresholds) and the engines and devices "
                                "this machine can run it on.")  # fmt: skip
    p.add_argument("model", nargs="?", default=None, help="PADet .xml or .onnx (default: the embedded demo model)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = p.parse_args(argv)

    from . import PadetError
    from .model_info import engines, format_info, model_info

    try:
        info = model_info(args.model)
    except (PadetError, ValueError) as e:
        return report("padet info", e)
    rows = engines()
    print(json.dumps({**info, "engines": rows}, indent=1) if args.json else format_info(info, rows))
    return 0


def _benchmark(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="padet benchmark", description="Speed of PADet model files on every engine that "
                                "can run them, end to end (pre-process, inference, native post-processing). "
                                "--mode latency: one frame at a time, median per stage, speed-up relative to the "
                                "first row. --mode throughput: frames per second with several inferences in flight "
                                "(Detector.for_video), on synthetic frames or those of --source.")  # fmt: skip
    p.add_argument("models", nargs="*", help="model files (.xml/.onnx); default: the embedded demo model")
    p.add_argument("--mode", choices=("latency", "throughput"), default="latency")
    p.add_argument("--runs", type=positive_int, default=30, help="latency: timed calls per row (median reported)")
    p.add_argument("--warmup", type=int, default=5, help="latency: untimed calls first")
    p.add_argument("--frames", type=positive_int, default=300, help="throughput: frames per row")
    p.add_argument("--requests", type=positive_int, default=None,
                   help="throughput: inferences in flight (default: the detector's for_video set-up)")
    p.add_argument("--source", default=None, help="throughput: take the frames from this video/folder (decoded first)")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: the engine's)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)

    from . import PadetError
    from .benchmark import backends_for, format_rows, format_throughput_rows, measure, measure_throughput
    from .detector import DEFAULT_MODEL

    models = args.models or [str(DEFAULT_MODEL)]
    rows: list = []
    try:
        for m in models:
            for backend in backends_for(m):
                print(f"timing {m} on {backend} ({args.mode}) ...", file=sys.stderr, flush=True)
                if args.mode == "latency":
                    rows.append(measure(m, backend, runs=args.runs, warmup=args.warmup, num_threads=args.threads))
                else:
                    rows.append(measure_throughput(m, backend, frames=args.frames, source=args.source,
                                                   num_requests=args.requests, num_threads=args.threads))  # fmt: skip
    except (PadetError, OSError) as e:
        return report("padet benchmark", e)
    print(format_rows(rows) if args.mode == "latency" else format_throughput_rows(rows))
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__, "fps": r.fps} for r in rows], indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="padet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["detect", "info", "benchmark", *DELEGATED], help="what to do")
    p.add_argument("--version", action="version", version="padet 0.1.0")
    p.epilog = ("Errors are one line with exit status 2 (1 for an unexpected exception); add --debug anywhere "
                "(or set PADET_DEBUG=1) to see the traceback.")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help", "--version"):
        parser.parse_args(argv or ["--help"])  # prints and exits 0
    return guard(f"padet {argv[0]}", lambda: _dispatch(parser, argv[0], argv[1:]))


def _dispatch(parser: argparse.ArgumentParser, command: str, rest: list[str]) -> int:
    if command == "detect":
        from .cli_detect import main as detect_main

        return detect_main(rest)
    if command == "info":
        return _info(rest)
    if command == "benchmark":
        return _benchmark(rest)
    if command in DELEGATED:
        return _delegate(command, rest)
    parser.parse_args([command])  # prints the usage error
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
