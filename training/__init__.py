"""PADet training side (PyTorch): model, anchors, box coding, matching, losses, data, train loop."""
from .config import PRESETS, AnchorConfig, PADetConfig, make_config
from .model import PADet, PADetOutputs, build_model

__all__ = ["PRESETS", "AnchorConfig", "PADetConfig", "make_config", "PADet", "PADetOutputs", "build_model"]
