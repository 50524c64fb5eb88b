"""PADet training side (PyTorch): model, anchors, box coding, matching, losses, data, train loop.

Public names are imported lazily so that torch-free parts (``python -m training.data.synth``,
``training.data.synth.render_scene`` for demo clips) do not pay for importing torch.
"""
from __future__ import annotations

from .lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
