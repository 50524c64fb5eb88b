"""Training checkpoints → models for export, with errors that say what is wrong with the file.

Reading (``weights_only``, format version, the ``config``/``model`` entries) is
:func:`training.checkpoint.load_checkpoint`'s job; this module adds what export needs on top:
the class names, a config that builds, and a state dict that fits it exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.checkpoint import CheckpointError, load_checkpoint as read_checkpoint
from training.config import PADetConfig
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
    ckpt = read_checkpoint(path)
    if "class_names" not in ckpt:
        raise CheckpointError(f"{path} has no 'class_names' entry: the exported model could not name its classes")
    try:
        # never re-load ImageNet weights at export time: the checkpoint already holds the encoder
        cfg = PADetConfig.from_dict({**ckpt["config"], "backbone_weights": None})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid PADet config: {e}") from e
    class_names = [str(c) for c in ckpt["class_names"]]
    if len(class_names) != cfg.num_classes:
        raise CheckpointError(f"{path}: {len(class_names)} class names but the config has {cfg.num_classes} classes")
    state = ckpt["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'model' must be a state dict, got {type(state).__name__}")
    model = PADet(cfg)
    where = f"{path}: state dict does not match its config ({cfg.name}, width={cfg.width}, fam={cfg.fam})"
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches raise even with strict=False
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        raise CheckpointError(f"{where}: {len(lines)} shape mismatches, e.g. {lines[:2]}") from e
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: {len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )
    info = {k: v for k, v in ckpt.items() if k not in ("config", "model", "class_names")}
    info["path"] = str(path)
    return model.eval(), class_names, info
