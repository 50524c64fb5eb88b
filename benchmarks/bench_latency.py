"""Latency per frame of the PADet network (batch 1, no pre/post-processing) on each CPU runtime.

Rows:
  torch eager        the PyTorch module (torch.inference_mode)
  ORT FP32           onnxruntime, the exported .onnx
  ORT INT8           onnxruntime, QDQ per-channel INT8 from export/quantize.py
  OV FP32            OpenVINO IR, INFERENCE_PRECISION_HINT=f32 (exact FP32 math)
  OV default         the same IR with OpenVINO's default precision (bf16 on CPUs with AMX/AVX512-BF16)
  OV INT8            NNCF INT8 IR, FP32 hint for the layers left unquantized (the deformable convs)

The weights are RANDOM (an untrained preset): latency does not depend on them, but the outputs
are meaningless, and the INT8 models are calibrated on generated images, which is fine for speed
but says nothing about INT8 accuracy. Each row: median (and p90) of --runs timed calls after
--warmup calls, one fixed input, --threads threads for every runtime.

On a machine shared with other jobs use --threads 1: multi-threaded torch (OpenMP barriers)
collapses when its threads do not get a core each (measured: 2.8 s/frame with 2 threads on a
busy 2-core machine vs 0.9 s with 1), which would flatter every other row.

  python benchmarks/bench_latency.py                       # vgg16_384, 30 runs, all cores
  python benchmarks/bench_latency.py --preset vgg16_512 --runs 50 --threads 1

Side by side (--compare): OpenVINO FP32 and INT8 of several presets and of torchvision's
SSDlite320-MobileNetV3-Large (random weights, backbone + head only: no anchors, decoding or NMS,
as for PADet), timed in interleaved rounds in one process so that the ratios share the machine's
state; prints GMACs and the ratios the light presets are held to, and with --profile the
per-layer OpenVINO profile (PERF_COUNT) of one preset's INT8 model, by layer type, with the
deformable convs' share of the frame. --json writes everything. --max-isa AVX2 runs OpenVINO's
AVX2 kernels on an AVX-512/AMX machine (a proxy for an AVX2-only CPU, named in the output).

  python benchmarks/bench_latency.py --compare vgg16_384 mobilenetv3_320 --peer ssdlite320 \
      --profile mobilenetv3_320 --json benchmarks/results/latency_light.json
  python benchmarks/bench_latency.py --compare vgg16_384 mobilenetv3s16_320 --peer ssdlite320 --max-isa AVX2
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                    if f in flags)


#: ``--max-isa`` values (oneDNN's names for ONEDNN_MAX_CPU_ISA)
MAX_ISA_CHOICES = ("AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16")


def cap_isa(isa: str) -> None:
    """Cap OpenVINO's kernels at ``isa``; must run before OpenVINO compiles anything (both
    libraries read the variables once)."""
    if "openvino" in sys.modules:
        raise RuntimeError("--max-isa must be set before OpenVINO is imported")
    os.environ["ONEDNN_MAX_CPU_ISA"] = os.environ["OV_CPU_MAX_ISA"] = isa


def isa_note() -> str:
    """How the instruction set is capped, for the header of a result ('' when it is not)."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f", ISA CAPPED to {isa} (ONEDNN_MAX_CPU_ISA/OV_CPU_MAX_ISA)" if isa else ""


def time_fn(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, float]:
    """(median, p90) seconds of ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def write_synthetic_images(folder: Path, n: int, seed: int = 0) -> None:
    """Rectangles on flat backgrounds: calibration input for a latency-only INT8 model."""
    import cv2

    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.full((480, 640, 3), rng.integers(0, 255, 3), np.uint8)
        for _ in range(8):
            x, y = (int(v) for v in rng.integers(0, 560, 2))
            cv2.rectangle(img, (x, y % 400), (x + int(rng.integers(20, 200)), y % 400 + int(rng.integers(20, 200))),
                          tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(folder / f"synth_{i:03d}.png"), img)


#: torchvision detectors for --peer: builder name and input size
PEERS = {"ssdlite320": ("ssdlite320_mobilenet_v3_large", 320), "ssd300": ("ssd300_vgg16", 300)}


def main(argv: list[str] | None = None) -> int:
    from training.config import PRESETS

    p = argparse.ArgumentParser(prog="bench_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="vgg16_384", choices=sorted(PRESETS), help="architecture (default vgg16_384)")
    p.add_argument("--num-classes", type=int, default=80, help="classes of the random model (default 80, COCO)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per row, >= 20 (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help=f"threads per runtime (default {os.cpu_count()})")
    p.add_argument("--calib-images", type=int, default=16, help="generated images for INT8 calibration (default 16)")
    p.add_argument("--skip", nargs="*", default=[], metavar="ROW",
                   choices=["torch", "ort", "ort-int8", "ov", "ov-default", "ov-int8"], help="rows to leave out")
    p.add_argument("--compare", nargs="+", default=None, metavar="PRESET[@WIDTH]",
                   help="time OpenVINO FP32 + INT8 of these presets side by side (instead of one preset's runtimes); "
                        "PRESET@0.125 is the preset at that channel multiplier")
    p.add_argument("--input-size", type=int, default=None, help="--compare: every preset at this input size")
    p.add_argument("--peer", nargs="*", default=[], choices=sorted(PEERS),
                   help="torchvision detectors timed alongside --compare (network only)")
    p.add_argument("--rounds", type=int, default=3, help="--compare: interleaved rounds of --runs calls each")
    p.add_argument("--profile", default=None, metavar="PRESET", help="--compare: per-layer profile of its INT8 model")
    p.add_argument("--json", type=Path, default=None, help="--compare: write the results here")
    p.add_argument("--max-isa", default=None, choices=MAX_ISA_CHOICES, type=str.upper,
                   help="cap the instruction set OpenVINO's CPU plugin and its oneDNN use (ONEDNN_MAX_CPU_ISA + "
                        "OV_CPU_MAX_ISA): AVX2 on an AVX-512/AMX machine runs the kernels an AVX2-only CPU runs "
                        "(same clock and caches, so a proxy for such a CPU, not a measurement of one)")
    args = p.parse_args(argv)
    if args.max_isa:
        cap_isa(args.max_isa)
    if args.runs < 20:
        p.error("--runs must be >= 20 for a stable median")
    if args.compare:
        bad = [c for c in args.compare if c.split("@")[0] not in PRESETS]
        if bad:
            p.error(f"unknown preset(s) {bad}; choose from {sorted(PRESETS)}")
        if args.profile and args.profile not in args.compare:
            p.error("--profile must be one of the --compare presets")
        from bench_compare import compare

        return compare(args)

    import onnxruntime as ort
    import openvino as ov
    import torch

    from export.graph import build_metadata
    from export.onnx_export import export_onnx
    from export.openvino_export import onnx_to_openvino
    from export.quantize import find_images, quantize_onnxruntime, quantize_openvino
    from padet_sdk.ov_extensions import read_onnx_with_extensions
    from training.model import build_model

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    import logging

    import nncf

    nncf.set_log_level(logging.WARNING)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    log(f"building {args.preset} with RANDOM weights ({args.num_classes} classes): latency only")
    model = build_model(args.preset, args.num_classes).eval()
    meta = build_metadata(model, [f"class_{i}" for i in range(args.num_classes)], trained=False)
    s = model.cfg.input_size
    x = np.random.default_rng(0).standard_normal((1, 3, s, s)).astype(np.float32)
    xt = torch.from_numpy(x)
    rows: list[tuple[str, float, float]] = []
    ov_cfg = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}

    def bench(name: str, fn: Callable[[], object]) -> None:
        log(f"timing {name} ({args.warmup} warm-up + {args.runs} runs)")
        med, p90 = time_fn(fn, args.runs, args.warmup)
        rows.append((name, med, p90))

    def ort_session(path: Path) -> Callable[[], object]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"images": x})

    def ov_request(model_or_path: object, extra: dict) -> Callable[[], object]:
        compiled = ov.Core().compile_model(model_or_path, "CPU", {**ov_cfg, **extra})
        req = compiled.create_infer_request()
        return lambda: req.infer({0: x})

    with tempfile.TemporaryDirectory(prefix="padet_bench_") as tmp:
        d = Path(tmp)
        if "torch" not in args.skip:
            with torch.inference_mode():
                bench("torch eager FP32", lambda: model(xt))
        log("exporting ONNX")
        onnx_path = export_onnx(model, d / "fp32.onnx", meta)
        xml_path = onnx_to_openvino(onnx_path, d / "fp32.xml", meta)
        need_calib = not {"ort-int8", "ov-int8"} <= set(args.skip)
        if need_calib:
            (d / "calib").mkdir()
            write_synthetic_images(d / "calib", args.calib_images)
            images = find_images(d / "calib", args.calib_images)
        if "ort" not in args.skip:
            bench("ORT FP32", ort_session(onnx_path))
        if "ort-int8" not in args.skip:
            log("quantizing with onnxruntime (QDQ, per-channel)")
            bench("ORT INT8", ort_session(quantize_onnxruntime(onnx_path, meta, images, d / "int8.onnx")))
        if "ov" not in args.skip:
            bench("OV FP32 (f32 hint)", ov_request(str(xml_path), {"INFERENCE_PRECISION_HINT": "f32"}))
        if "ov-default" not in args.skip:
            prec = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
            bench(f"OV default ({prec.get_type_name()} hint)", ov_request(str(xml_path), {}))
        if "ov-int8" not in args.skip:
            log("quantizing with NNCF")
            ov_fp32 = read_onnx_with_extensions(ov.Core(), onnx_path)
            int8_xml = quantize_openvino(ov_fp32, meta, images, d / "int8.xml")
            bench("OV INT8 (NNCF)", ov_request(str(int8_xml), {"INFERENCE_PRECISION_HINT": "f32"}))

    ref = next((med for name, med, _ in rows if name.startswith("torch")), None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nPADet {args.preset} ({model.cfg.num_anchors} anchors, {args.num_classes} classes, random weights), "
          f"batch 1, {s}x{s}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, threads={args.threads}, "
          f"flags: {cpu_flags() or '-'}{isa_note()}")
    print(f"load average (1 min): {load_start:.2f} at start, {load:.2f} at the end (other processes share the CPU "
          "when it is above 0)")
    print(f"versions: torch {torch.__version__}, onnxruntime {ort.__version__}, openvino {ov.__version__}")
    print(f"median of {args.runs} runs after {args.warmup} warm-up\n")
    w = max(len(name) for name, _, _ in rows) if rows else 7
    print(f"| {'runtime':<{w}} | median ms |   p90 ms | speed-up vs torch |")
    print(f"|{'-' * (w + 2)}|----------:|---------:|------------------:|")
    for name, med, p90 in rows:
        ratio = f"{ref / med:.2f}x" if ref else "-"
        print(f"| {name:<{w}} | {med * 1e3:9.1f} | {p90 * 1e3:8.1f} | {ratio:>17} |")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    sys.exit(run_entry_point(main, extras="train,export"))
