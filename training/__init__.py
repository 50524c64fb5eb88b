"""PADet training side (PyTorch): model, anchors, box coding, matching, losses, data, train loop.

Public names are imported lazily so that torch-free parts (``python -m training.data.synth``,
``training.data.synth.render_scene`` for demo clips) do not pay for importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PRESETS": "config",
    "AnchorConfig": "config",
    "PADetConfig": "config",
    "make_config": "config",
    "PADet": "model",
    "PADetOutputs": "model",
    "build_model": "model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
