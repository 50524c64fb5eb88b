"""Session-wide pytest setup: a header saying which CPU and which engines a run used.

Several tests compare floating-point results of different code paths (ONNX Runtime, OpenVINO,
the Cython kernels, torch). oneDNN and MLAS choose their kernels from the CPU's SIMD flags
(AVX2, AVX-512, VNNI, AMX), so summation orders, and INT8 saturation, differ between CPUs. A
failure report must say where it ran: the header prints the CPU model, the flags that matter and
the engine versions. It imports no torch when torch is missing (the SDK's tests must run
without it) and no engine at all: versions come from the installed distributions.
"""
from __future__ import annotations

import importlib.util
import os
import platform
from importlib import metadata

def cpu_line() -> str:
    from padet_sdk.cpu import REPORTED_FLAGS as SIMD_FLAGS, proc_cpuinfo  # torch-free, like this file

    model, flags = proc_cpuinfo()
    if not model and not flags:
        return (f"cpu: {platform.processor() or platform.machine() or 'unknown'} ({platform.system()}; "
                f"no /proc/cpuinfo, SIMD flags not read), {os.cpu_count()} logical cores")  # fmt: skip
    shown = " ".join(f for f in SIMD_FLAGS if f in flags) or "none of " + ", ".join(SIMD_FLAGS)
    return f"cpu: {model or platform.machine()}, {os.cpu_count()} logical cores; /proc/cpuinfo flags: {shown}"


def cpuid_line() -> str | None:
    """What the process itself detects (cpuid, through padet_sdk.cpu / numpy): it differs from
    /proc/cpuinfo under an emulator such as ``qemu-x86_64 -cpu EPYC-Rome``, whose cpuinfo is the host's."""
    try:
        from padet_sdk.cpu import describe_cpu

        return f"cpuid (padet_sdk.cpu): {describe_cpu()}"
    except Exception as exc:  # the header must never stop a run
        return f"cpuid (padet_sdk.cpu): not available ({type(exc).__name__}: {exc})"


def versions_line() -> str:
    parts = []
    for dist, module in (("torch", "torch"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"),
                         ("numpy", "numpy")):  # fmt: skip
        if importlib.util.find_spec(module) is None:
            parts.append(f"{dist} absent")
            continue
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} (version unknown)")
    return "engines: " + ", ".join(parts)


#: environment variables that change which kernels run (set to emulate another CPU's arithmetic)
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS", "PADET_CPU_FLAGS")


def env_line() -> str | None:
    set_ = [f"{k}={os.environ[k]}" for k in KERNEL_ENV if k in os.environ]
    return "kernel overrides: " + " ".join(set_) if set_ else None


def pytest_report_header(config):  # noqa: ARG001 (pytest's hook signature)
    return [line for line in (cpu_line(), cpuid_line(), versions_line(), env_line()) if line]
