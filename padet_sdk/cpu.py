"""What the CPU this process runs on can do, for choosing (and checking) an INT8 scheme.

INT8 convolutions on x86 compute u8 x s8 products. Without VNNI the engines use ``vpmaddubsw``,
which adds two products into a saturating int16: large activations times large weights clip
there, and the model's scores drift. With VNNI (``avx512_vnni`` or ``avx_vnni``) the products
accumulate in int32 and nothing saturates. So the INT8 scheme is a property of the target CPU,
read from its flags, never guessed from the vendor.

Flags come from numpy's runtime dispatcher (it executes ``cpuid``, so it also works on Windows
and macOS and tells the truth under an emulator), completed from ``/proc/cpuinfo`` on Linux for
the flags numpy does not track (``avx_vnni``, ``amx_*``) when both sources agree on AVX-512.
``PADET_CPU_FLAGS`` (comma- or space-separated) replaces the detection, to simulate a CPU.
"""
from __future__ import annotations

import logging
import os
import platform
import threading
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("padet_sdk")

#: INT8 targets: "vnni" = int32 accumulation (no saturation); "avx2" = x86 without VNNI.
INT8_TARGETS = ("vnni", "avx2")
FLAGS_ENV = "PADET_CPU_FLAGS"

_NUMPY_NAMES = {"AVX2": "avx2", "AVX512F": "avx512f", "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni"}
#: the flags worth printing next to a measurement
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")


@lru_cache(maxsize=None)
def proc_cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo, read once; ("", frozenset()) where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "", frozenset()
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


def _numpy_flags() -> frozenset[str] | None:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        except ImportError:
            return None
    return frozenset(ours for theirs, ours in _NUMPY_NAMES.items() if feats.get(theirs))


def _sources_disagree(proc: frozenset[str], cpuid: frozenset[str]) -> bool:
    return ("avx512f" in proc) != ("avx512f" in cpuid) or ("avx2" in proc) != ("avx2" in cpuid)


@lru_cache(maxsize=None)
def _detected() -> frozenset[str]:
    _, proc = proc_cpuinfo()
    cpuid = _numpy_flags()
    if cpuid is None:
        return proc
    # /proc/cpuinfo describes the host, not an emulated CPU: trust it only where it agrees with cpuid
    return cpuid if proc and _sources_disagree(proc, cpuid) else cpuid | proc


def emulated() -> bool:
    """True when cpuid and /proc/cpuinfo disagree (qemu-user and the like): timings mean nothing."""
    _, proc = proc_cpuinfo()
    cpuid = _numpy_flags()
    return bool(proc) and cpuid is not None and _sources_disagree(proc, cpuid)


def cpu_flags() -> frozenset[str]:
    """Lower-case Linux-style flag names (``avx2``, ``avx512_vnni``, ...) of this CPU."""
    override = os.environ.get(FLAGS_ENV)
    if override is not None:
        return frozenset(f.strip().lower() for f in override.replace(",", " ").split() if f.strip())
    return _detected()


def has_vnni(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)


def int8_target(flags: frozenset[str] | None = None) -> str:
    """``"vnni"`` or ``"avx2"`` (also for non-x86 CPUs, the conservative choice)."""
    return "vnni" if has_vnni(flags) else "avx2"


def describe_cpu() -> str:
    """One line for reports: model name, the SIMD flags that matter for INT8, the INT8 target."""
    model, _ = proc_cpuinfo()
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    flags = cpu_flags()
    shown = [f for f in REPORTED_FLAGS if f in flags]
    source = f" ({FLAGS_ENV})" if os.environ.get(FLAGS_ENV) is not None else ""
    if emulated():
        source += " [EMULATED: cpuid differs from /proc/cpuinfo, whose model name is the host's]"
    return f"{model}, {os.cpu_count()} logical cores, flags: {' '.join(shown) or 'none'}{source}; INT8 target: {int8_target(flags)}"


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_if_int8_mismatch(path: str | os.PathLike[str], precision: str, target_cpu: str, scheme: str) -> bool:
    """Log one warning per model file when an INT8 model made for VNNI runs on a CPU without it.

    Returns whether this call warned (for tests). Why a warning and not an error: the model
    still runs, only its integer sums may saturate and its scores drift (README, "INT8 on CPUs
    without VNNI")."""
    if precision != "int8" or target_cpu != "vnni" or has_vnni():
        return False
    key = str(Path(path).resolve())
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    log.warning(
        "%s was quantized for CPUs with VNNI (%s), but this CPU has none (%s): its INT8 sums can saturate "
        "and lose accuracy. Re-quantize it for this CPU: python export/quantize.py --model <fp32 model> "
        "--images <calibration images> --target-cpu avx2",
        Path(path).name, scheme or "int8", describe_cpu(),
    )
    return True
