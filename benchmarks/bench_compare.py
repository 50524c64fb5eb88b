"""``bench_latency.py --compare``: OpenVINO FP32 and INT8 of several networks in one run.

Every network (PADet presets with random weights, torchvision detectors with random weights,
backbone + head only) is exported to ONNX, read by OpenVINO, compiled FP32 (f32 hint) and
quantized with NNCF (the same calibration images and overflow-fix setting for all). The timing
runs in interleaved rounds (network A, B, C, A, B, C, ...) so that a change of load on a shared
machine hits every network alike; each figure is the median over all rounds.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path
from typing import Any, Callable

import numpy as np


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class _NetworkOnly:
    """torchvision SSD/SSDlite without anchors, decoding and NMS: backbone + head, as timed for PADet."""

    @staticmethod
    def build(builder: str):
        import torch
        import torchvision

        det = getattr(torchvision.models.detection, builder)(weights=None, weights_backbone=None)

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone, self.head = det.backbone, det.head

            def forward(self, x):
                out = self.head(list(self.backbone(x).values()))
                return out["cls_logits"], out["bbox_regression"]

        return Net().eval()


def _macs(model: Any, size: int) -> float:
    from training.summary import count_macs

    return count_macs(model, size)["total"] / 1e9


def _profile(compiled: Any, x: np.ndarray, runs: int) -> dict[str, Any]:
    """Per-layer-type time of ``runs`` inferences (PERF_COUNT), and the deformable convs' share."""
    req = compiled.create_infer_request()
    req.infer({0: x})
    by_type: dict[str, float] = {}
    by_exec: dict[str, str] = {}
    layers: dict[str, float] = {}
    total = 0.0
    for _ in range(runs):
        req.infer({0: x})
        for info in req.profiling_info:
            t = info.real_time.total_seconds() * 1e3
            by_type[info.node_type] = by_type.get(info.node_type, 0.0) + t
            by_exec.setdefault(info.node_type, info.exec_type)
            layers[info.node_name] = layers.get(info.node_name, 0.0) + t
            total += t
    per = {k: v / runs for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])}
    deform = sum(v for k, v in per.items() if "deform" in k.lower())
    top = sorted(layers.items(), key=lambda kv: -kv[1])[:15]
    return {
        "sum_of_layers_ms": total / runs,
        "deformable_conv_ms": deform,
        "deformable_conv_share": deform / (total / runs) if total else 0.0,
        "by_layer_type_ms": per,
        "exec_type": by_exec,
        "slowest_layers_ms": {k: v / runs for k, v in top},
    }


def check_isa_cap(core: Any, model: Any, x: np.ndarray, ov_cfg: dict[str, Any]) -> None:
    """With ``--max-isa``, RuntimeError unless every kernel OpenVINO picks stays under the cap
    (an OpenVINO build that ignores the variables would otherwise time the native ISA)."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    above = ("avx512", "amx") if isa.startswith("AVX2") else ("amx",) if isa.startswith("AVX512") else ()
    if not above:
        return
    req = core.compile_model(model, "CPU", {**ov_cfg, "PERF_COUNT": True}).create_infer_request()
    req.infer({0: x})
    bad = sorted({i.exec_type for i in req.profiling_info if any(a in i.exec_type.lower() for a in above)})
    if bad:
        raise RuntimeError(f"--max-isa {isa} did not take: OpenVINO still runs {', '.join(bad)}")
    log(f"ISA capped at {isa}: no {'/'.join(above)} kernel in the first network")


#: networks under this many GMAC are the edge ones that issue #17's latency targets are for
EDGE_GMAC = 2.0


def target_ratios(med: dict[str, float], nets: dict[str, dict[str, Any]], compared: list[str]) -> dict[str, float]:
    """Issue #17's ratios for every compared edge network (``EDGE_GMAC``), as measured: vgg16_384
    INT8 over its INT8 (target >= 25) and its INT8 over SSDlite320 FP32 (target <= 1.5). ``med``
    maps "<network> int8"/"<network> fp32" to median seconds."""
    ratios = {}
    for k in compared:
        if k == "vgg16_384" or nets[k]["gmac"] >= EDGE_GMAC:
            continue
        if "vgg16_384" in nets:
            ratios[f"vgg16_384 INT8 / {k} INT8 (target >= 25)"] = med["vgg16_384 int8"] / med[f"{k} int8"]
        if "ssdlite320" in nets:
            ratios[f"{k} INT8 / ssdlite320 FP32 (target <= 1.5)"] = med[f"{k} int8"] / med["ssdlite320 fp32"]
    return ratios


def compare(args: Namespace) -> int:
    import logging

    import nncf
    import openvino as ov
    import torch

    from bench_latency import PEERS, cpu_flags, cpu_model, isa_note, write_synthetic_images
    from export.graph import build_metadata
    from export.onnx_export import export_onnx
    from export.quantize import NNCF_OVERFLOW_FIX, find_images, quantize_openvino, resolve_target_cpu
    from padet_sdk.ov_extensions import read_onnx_with_extensions
    from training.model import build_model

    nncf.set_log_level(logging.WARNING)
    torch.set_num_threads(args.threads)
    core = ov.Core()
    ov_cfg = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    fix = NNCF_OVERFLOW_FIX[resolve_target_cpu("auto")]
    load_start = os.getloadavg()[0]
    nets: dict[str, dict[str, Any]] = {}  # name -> gmac, input, fns
    with tempfile.TemporaryDirectory(prefix="padet_cmp_") as tmp:
        d = Path(tmp)
        (d / "calib").mkdir()
        write_synthetic_images(d / "calib", args.calib_images)
        images = find_images(d / "calib", args.calib_images)
        for preset in args.compare:
            torch.manual_seed(0)
            log(f"{preset}: building (random weights), exporting, quantizing")
            name, _, width = preset.partition("@")
            over = {"width": float(width)} if width else {}
            if getattr(args, "input_size", None):
                over["input_size"] = args.input_size
            model = build_model(name, args.num_classes, **over).eval()
            meta = build_metadata(model, [f"class_{i}" for i in range(args.num_classes)], trained=False)
            onnx_path = export_onnx(model, d / f"{preset.replace('@', '_')}.onnx", meta)
            int8 = quantize_openvino(read_onnx_with_extensions(core, onnx_path), meta, images,
                                     d / f"{preset.replace('@', '_')}_int8.xml")  # fmt: skip
            s = model.cfg.input_size
            nets[preset] = {"input": s, "gmac": _macs(model, s), "fp32": read_onnx_with_extensions(core, onnx_path),
                            "int8": str(int8), "kind": "PADet"}  # fmt: skip
        for peer in args.peer:
            builder, s = PEERS[peer]
            log(f"{peer}: torchvision {builder} (random weights, network only), exporting, quantizing")
            torch.manual_seed(0)
            net = _NetworkOnly.build(builder)
            path = d / f"{peer}.onnx"
            torch.onnx.export(net, (torch.zeros(1, 3, s, s),), str(path), input_names=["images"], opset_version=17,
                              dynamo=False)  # fmt: skip
            fp32 = core.read_model(str(path))
            calib = [np.random.default_rng(i).standard_normal((1, 3, s, s)).astype(np.float32) for i in range(len(images))]
            q = nncf.quantize(core.read_model(str(path)), nncf.Dataset(calib), subset_size=len(calib),
                              advanced_parameters=nncf.AdvancedQuantizationParameters(
                                  overflow_fix=nncf.OverflowFix(fix)))  # fmt: skip
            nets[peer] = {"input": s, "gmac": _macs(net, s), "fp32": fp32, "int8": q, "kind": f"torchvision {builder}"}

        requests: dict[str, Callable[[], object]] = {}
        inputs: dict[str, np.ndarray] = {}
        compiled_int8: dict[str, Any] = {}
        for name, n in nets.items():
            x = np.random.default_rng(0).standard_normal((1, 3, n["input"], n["input"])).astype(np.float32)
            inputs[name] = x
            for prec in ("fp32", "int8"):
                c = core.compile_model(n[prec], "CPU", ov_cfg)
                if prec == "int8":
                    compiled_int8[name] = c
                req = c.create_infer_request()
                requests[f"{name} {prec}"] = (lambda r, xx: (lambda: r.infer({0: xx})))(req, x)
        first = next(iter(nets))
        check_isa_cap(core, nets[first]["int8"], inputs[first], ov_cfg)
        times: dict[str, list[float]] = {k: [] for k in requests}
        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds}: {len(requests)} rows x ({args.warmup} warm-up + {args.runs} runs)")
            for key, fn in requests.items():
                for _ in range(args.warmup):
                    fn()
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t0)
        profile = None
        if args.profile:
            log(f"profiling {args.profile} INT8 (PERF_COUNT)")
            c = core.compile_model(nets[args.profile]["int8"], "CPU", {**ov_cfg, "PERF_COUNT": True})
            profile = _profile(c, inputs[args.profile], args.runs)

    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    p90 = {k: sorted(v)[int(0.9 * (len(v) - 1))] * 1e3 for k, v in times.items()}
    load_end = os.getloadavg()[0]
    machine = (f"{cpu_model()}, {os.cpu_count()} logical cores, threads={args.threads}, "
               f"flags: {cpu_flags() or '-'}{isa_note()}")  # fmt: skip
    print(f"\nOpenVINO {ov.__version__} CPU, batch 1, random weights, network only; {machine}")
    print(f"load average (1 min) {load_start:.2f} at start, {load_end:.2f} at the end; "
          f"median of {args.rounds} x {args.runs} runs (interleaved rounds)\n")  # fmt: skip
    print("| network | input | GMAC | OV FP32 ms | OV INT8 ms | INT8 speed-up |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, n in nets.items():
        f, i = med[f"{name} fp32"], med[f"{name} int8"]
        print(f"| {name} | {n['input']} | {n['gmac']:.2f} | {f:.1f} | {i:.1f} | {f / i:.2f}x |")
    # the ratios' targets are for the presets at their own input size
    ratios = {} if getattr(args, "input_size", None) else target_ratios(med, nets, args.compare)
    if ratios:
        print()
        for k, v in ratios.items():
            print(f"{k}: {v:.2f}")
    if profile:
        print(f"\n{args.profile} INT8 profile: sum of layers {profile['sum_of_layers_ms']:.2f} ms, deformable convs "
              f"{profile['deformable_conv_ms']:.2f} ms ({100 * profile['deformable_conv_share']:.1f} %)")  # fmt: skip
        for t, ms in list(profile["by_layer_type_ms"].items())[:10]:
            print(f"  {t:<28} {ms:7.3f} ms  ({profile['exec_type'][t]})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "machine": machine, "openvino": ov.__version__, "torch": torch.__version__,
            "load_average": [load_start, load_end], "runs": args.runs, "rounds": args.rounds,
            "num_classes": args.num_classes,
            "networks": {name: {"kind": n["kind"], "input": n["input"], "gmac": n["gmac"],
                                "ov_fp32_ms": med[f"{name} fp32"], "ov_int8_ms": med[f"{name} int8"],
                                "ov_fp32_p90_ms": p90[f"{name} fp32"], "ov_int8_p90_ms": p90[f"{name} int8"]}
                         for name, n in nets.items()},
            "ratios": ratios, "profile": {"preset": args.profile, **profile} if profile else None,
        }  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"\nwrote {args.json}")
    return 0
