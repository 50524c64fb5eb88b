"""What ``padet info MODEL`` prints: the model's metadata (read from the file, no engine
loaded) and the engines and devices this machine can run it on, so that a user can see what a
file is, and what it will run on, before writing code."""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

from .cpu import describe_cpu
from .model_file import read_metadata, resolve_model_path


def model_info(path: str | Path | None) -> dict[str, Any]:
    """The metadata of a PADet file as a plain dict (``path`` None: the embedded model)."""
    resolved = resolve_model_path(path)
    meta = read_metadata(resolved)
    return {
        "file": str(resolved),
        "size_mb": round(sum(p.stat().st_size for p in (resolved, resolved.with_suffix(".bin")) if p.is_file()) / 1e6, 2),
        "preset": meta.preset,
        "model_version": meta.model_version,
        "trained": meta.trained,
        "classes": list(meta.class_names),
        "input_size": meta.input_size,
        "pixel_order": meta.pixel_order,
        "mean": list(meta.mean),
        "std": list(meta.std),
        "anchors": {
            "count": meta.num_anchors,
            "feature_sizes": list(meta.feature_sizes),
            "scales": list(meta.anchor_scales),
            "extra_ratios": [list(r) for r in meta.anchor_extra_ratios],
            "variances": list(meta.variances),
        },
        "precision": meta.precision,
        "quant_scheme": meta.quant_scheme or None,
        "quant_target_cpu": meta.quant_target_cpu or None,
        "postprocess": meta.postprocess.to_dict(),
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def engines() -> list[dict[str, Any]]:
    """Each registered engine: installed or not, its version and the devices it reports."""
    from .backends.registry import _REGISTRY

    rows = []
    for name, entry in _REGISTRY.items():
        installed = entry.requires is None or importlib.util.find_spec(entry.requires) is not None
        row: dict[str, Any] = {"engine": name, "installed": installed, "files": list(entry.suffixes),
                               "version": _version(entry.requires) if entry.requires else None, "devices": []}  # fmt: skip
        if installed:
            try:
                row["devices"] = _devices(name)
            except Exception as e:  # noqa: BLE001 - an engine that cannot list devices still shows
                row["devices"] = [f"(cannot list: {e})"]
        rows.append(row)
    return rows


def _devices(engine: str) -> list[str]:
    if engine == "openvino":
        import openvino as ov

        core = ov.Core()
        return [f"{d} ({core.get_property(d, 'FULL_DEVICE_NAME')})" for d in core.available_devices]
    if engine == "onnxruntime":
        import onnxruntime as ort

        return list(ort.get_available_providers())
    return []


def format_info(info: dict[str, Any], engine_rows: list[dict[str, Any]]) -> str:
    """The human-readable ``padet info`` text."""
    a, pp = info["anchors"], info["postprocess"]
    quant = f", quantization {info['quant_scheme']} (for {info['quant_target_cpu']} CPUs)" if info["quant_scheme"] else ""
    lines = [
        f"model       {info['file']} ({info['size_mb']} MB{'' if info['trained'] else ', UNTRAINED'})",
        f"version     {info['model_version']} (preset {info['preset']})",
        f"classes     {len(info['classes'])}: {', '.join(info['classes'])}",
        f"input       {info['input_size']}x{info['input_size']} {info['pixel_order']}, mean {info['mean']}, std {info['std']}",
        f"anchors     {a['count']} on feature maps {a['feature_sizes']}, scales {a['scales']}, variances {a['variances']}",
        f"precision   {info['precision']}{quant}",
        f"thresholds  theta {pp['theta']}, conf {pp['conf']}, nms {pp['nms']} (iou {pp['iou']}, sigma {pp['sigma']}), "
        f"top-k {pp['pre_nms_top_k']}, max_det {pp['max_det']}",
        f"cpu         {describe_cpu()}",
        "engines",
    ]
    for e in engine_rows:
        state = f"{e['version'] or 'built in'}: {', '.join(e['devices']) or 'no devices listed'}" if e["installed"] else "not installed"
        lines.append(f"  {e['engine']:<12} {'/'.join(e['files'])}  {state}")
    return "\n".join(lines)


__all__ = ["engines", "format_info", "model_info"]
