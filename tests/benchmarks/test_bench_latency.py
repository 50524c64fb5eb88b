"""``bench_latency --max-isa``: the instruction-set cap that stands in for an AVX2-only CPU must
really reach OpenVINO's kernels, or the AVX2 figures in the README would be the native ISA's."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
sys.path.insert(0, "benchmarks")
from bench_latency import cap_isa, isa_note
cap_isa("AVX2")
import numpy as np
import openvino as ov
from openvino import opset13 as ops
from bench_compare import check_isa_cap
x = ops.parameter([1, 16, 32, 32], np.float32)
w = ops.constant(np.random.default_rng(0).standard_normal((32, 16, 3, 3)).astype(np.float32))
model = ov.Model([ops.relu(ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]))], [x])
core = ov.Core()
cfg = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True}
req = core.compile_model(model, "CPU", cfg).create_infer_request()
req.infer({0: np.ones((1, 16, 32, 32), np.float32)})
print("KERNELS", sorted({i.exec_type for i in req.profiling_info}))
check_isa_cap(core, model, np.ones((1, 16, 32, 32), np.float32), {"INFERENCE_NUM_THREADS": 1})
print("NOTE", isa_note())
"""


def test_max_isa_avx2_runs_no_avx512_or_amx_kernel():
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "OV_CPU_MAX_ISA")}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    kernels = next(line for line in out.stdout.splitlines() if line.startswith("KERNELS"))
    assert "avx2" in kernels.lower() and "avx512" not in kernels.lower() and "amx" not in kernels.lower(), kernels
    assert "ISA CAPPED to AVX2" in out.stdout


def test_max_isa_refuses_once_openvino_is_loaded(monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_latency import cap_isa

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setitem(sys.modules, "openvino", sys.modules.get("openvino") or object())
    with pytest.raises(RuntimeError, match="before OpenVINO is imported"):
        cap_isa("AVX2")
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ  # nothing half-set


def test_latency_targets_are_reported_for_every_edge_network_including_narrow_resnets():
    """A light preset is judged by its multiply-adds, not its name: a narrow ResNet-18 gets the
    targets' ratios, the heavy references (vgg16_384 itself, a full-width ResNet) do not."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_compare import target_ratios

    nets = {"vgg16_384": {"gmac": 58.7}, "resnet18q_320": {"gmac": 0.6}, "resnet18_320": {"gmac": 6.1},
            "ssdlite320": {"gmac": 0.58}}
    med = {"vgg16_384 int8": 0.050, "resnet18q_320 int8": 0.002, "resnet18_320 int8": 0.010, "ssdlite320 fp32": 0.004}
    ratios = target_ratios(med, nets, ["vgg16_384", "resnet18q_320", "resnet18_320"])
    assert ratios == {"vgg16_384 INT8 / resnet18q_320 INT8 (target >= 25)": 25.0,
                      "resnet18q_320 INT8 / ssdlite320 FP32 (target <= 1.5)": 0.5}
    assert target_ratios(med, {k: v for k, v in nets.items() if k != "ssdlite320"}, ["resnet18q_320"]) == {
        "vgg16_384 INT8 / resnet18q_320 INT8 (target >= 25)": 25.0}
