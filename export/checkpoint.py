"""Training checkpoints → models for export, with errors that say what is wrong with the file.

Reading and validating (``weights_only``, format version, a config that builds, a state dict
that fits it exactly) is :func:`training.checkpoint.model_from_checkpoint`'s job; this module
adds what export needs on top: the class names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.checkpoint import CheckpointError, model_from_checkpoint
from training.model import PADet

__all__ = ["CheckpointError", "load_checkpoint", "make_checkpoint"]


def make_checkpoint(model: PADet, class_names: list[str] | tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """The minimal checkpoint dict of ``model`` that :func:`load_checkpoint` accepts (for tests
    and for models that did not come out of ``training.train``)."""
    return {"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": list(class_names), **extra}


def load_checkpoint(path: str | Path) -> tuple[PADet, list[str], dict[str, Any]]:
    """Load a PADet checkpoint into a model in eval mode on the CPU.

    Returns:
        (model, class_names, info); info holds the other entries (e.g. ``epoch``) and ``path``.
    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: unreadable, not a PADet checkpoint, no class names, a bad config, or
            a state dict that does not fit the network its config describes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    model, ckpt = model_from_checkpoint(path)
    if "class_names" not in ckpt:
        raise CheckpointError(f"{path} has no 'class_names' entry: the exported model could not name its classes")
    class_names = [str(c) for c in ckpt["class_names"]]
    if len(class_names) != model.cfg.num_classes:
        raise CheckpointError(f"{path}: {len(class_names)} class names but the config has {model.cfg.num_classes} classes")
    info = {k: v for k, v in ckpt.items() if k not in ("config", "model", "class_names")}
    info["path"] = str(path)
    return model, class_names, info
