"""Training checkpoints: atomic writes, ``weights_only`` loading, config checks, RNG states.

A checkpoint is a plain dict that ``torch.load(path, weights_only=True)`` reads back (tensors,
numbers, strings, lists, tuples, dicts only — no pickled classes), so loading one never runs
code from the file. Keys every consumer may rely on (the exporter reads the first four):

- ``config``: :meth:`PADetConfig.to_dict` of the network;
- ``model``: the network's ``state_dict`` (never a DDP-wrapped one);
- ``class_names``: list of str, label ``i`` (1..C) is ``class_names[i - 1]``;
- ``epoch``: completed epochs, i.e. the epoch a resumed run continues in;

and, for resuming (:mod:`training.train`): ``epoch_step`` (batches of ``epoch`` already done),
``step`` (optimizer steps so far), ``optimizer``, ``scheduler``, ``scaler``, ``rng``,
``train_args``, ``metrics``, ``best_ap50``, ``cat_ids``, ``world_size``.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import PADetConfig
from .torch_files import WeightsFileError, load_weights_only

LAST = "last.pth"
BEST = "best.pth"
#: bumped when the layout of the dict changes incompatibly
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit what was asked for."""


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same directory, then ``os.replace``: a reader (or a
    run killed half-way) sees either the old file or the complete new one, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`_atomic_write` leaves when its process is killed
    mid-write (``.last.pth.XXXX.tmp``); called when a run (re)starts in ``out_dir``, where no
    other writer can be active. Returns the files removed."""
    removed = []
    for name in (LAST, BEST):
        for tmp in Path(out_dir).glob(f".{name}.*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def save_checkpoint(state: dict[str, Any], out_dir: str | Path, *, is_best: bool = False) -> Path:
    """Atomically write ``state`` to ``out_dir/last.pth`` and, when ``is_best``, copy it to
    ``out_dir/best.pth`` (atomically too). Returns the path of ``last.pth``."""
    missing = {"config", "model", "class_names", "epoch"} - set(state)
    if missing:
        raise ValueError(f"checkpoint state lacks required keys {sorted(missing)}")
    out_dir = Path(out_dir)
    last = out_dir / LAST
    _atomic_write(last, lambda f: torch.save({"format": FORMAT_VERSION, **state}, f))
    if is_best:
        with open(last, "rb") as src:
            _atomic_write(out_dir / BEST, lambda f: shutil.copyfileobj(src, f))
    return last


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable ``field: a != b`` lines for the config fields that differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if _plain(va) != _plain(vb):
            out.append(f"{key}: {va!r} != {vb!r}")
    return out


def _plain(v: Any) -> Any:
    """Tuples and lists compare equal (a config dict read back from disk holds lists)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", config: PADetConfig | None = None
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    ``config``: the network the caller is about to build; a checkpoint of a different network
    raises :class:`CheckpointError` naming every differing field (resuming a run with other
    ``--width``/``--input-size``/ablation switches would otherwise fail deep inside
    ``load_state_dict`` or, worse, silently train something else).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = load_weights_only(path, "checkpoint", map_location)
    except WeightsFileError as e:  # truncated file, not a torch file, or a pickled class
        raise CheckpointError(str(e)) from None
    if not isinstance(ckpt, dict) or not {"config", "model"} <= set(ckpt):
        raise CheckpointError(f"{path} is not a PADet checkpoint (needs 'config' and 'model' entries)")
    if ckpt.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {ckpt['format']}, newer than this code ({FORMAT_VERSION})")
    if config is not None:
        try:  # in the current layout (older checkpoints have flat post-processing fields)
            stored = PADetConfig.from_dict(ckpt["config"]).to_dict()
        except (TypeError, ValueError):
            stored = ckpt["config"]
        diff = config_differences(stored, config.to_dict())
        if diff:
            raise CheckpointError(
                f"checkpoint {path} was made for a different network (checkpoint != requested):\n  "
                + "\n  ".join(diff)
                + "\nPass the same options as the run that wrote it, or start a new run directory."
            )
    return ckpt


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the network stored in a checkpoint (in eval mode) and return it with the dict.

    The one loader behind evaluation, statistics, experiments and export, so each of them gives
    the same message for a broken file: a config that does not build, or a state dict that does
    not fit the network its config describes (named keys and shapes, not a torch traceback).
    """
    from .model import PADet

    path = Path(path)
    ckpt = load_checkpoint(path)
    try:
        # never re-load ImageNet weights: the checkpoint already holds the encoder
        cfg = PADetConfig.from_dict({**ckpt["config"], "backbone_weights": None})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid PADet config: {e}") from e
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
    return model.to(device).eval(), ckpt


# ---------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global) and torch (CPU and CUDA) generator states, in
    ``weights_only``-loadable form (NumPy's key array as a tensor)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
