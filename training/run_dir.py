"""Choosing a training run's directory so that no earlier run is ever overwritten.

``last.pth``, ``best.pth`` and the CSV/JSONL logs of a run are rewritten in place, so training
into a directory that already holds a run would silently replace it. The rules (as Ultralytics'
``increment_path`` for the default, stricter for an explicit ``--out``):

- default directory (``runs/NAME``): the first of ``runs/NAME``, ``runs/NAME-2``, ``runs/NAME-3``,
  ... that is absent or empty; with ``--resume``/``--exist-ok`` exactly ``runs/NAME``;
- explicit ``--out``: used as given; refused when it holds anything, unless ``--resume`` (continue
  that run) or ``--exist-ok`` (write into it anyway).

In a torchrun job the main process decides and broadcasts the answer, so every process writes to
the same directory even when another run creates ``runs/NAME-2`` in between.
"""
from __future__ import annotations

from pathlib import Path

import torch.distributed as dist

from .distributed import Dist


class RunDirError(ValueError):
    """The chosen run directory holds an earlier run."""


def _holds_something(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _free(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def fresh_run_dir(base: Path) -> Path:
    """``base`` if absent or empty, else the first free ``base-N`` (N = 2, 3, ...)."""
    n = 1
    cand = base
    while not _free(cand):
        n += 1
        cand = base.with_name(f"{base.name}-{n}")
    return cand


def choose_run_dir(out: Path | None, name: str, *, resume: bool, exist_ok: bool) -> Path:
    """The directory this run writes to (see the module docstring); RunDirError when ``out``
    holds an earlier run and neither ``resume`` nor ``exist_ok`` is set."""
    if out is None:
        base = Path("runs") / name
        return base if (resume or exist_ok) else fresh_run_dir(base)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory")
    if _holds_something(out) and not (resume or exist_ok):
        shown = sorted(p.name for p in out.iterdir())
        listing = ", ".join(shown[:4]) + (f", ... ({len(shown)} entries)" if len(shown) > 4 else "")
        raise RunDirError(
            f"run directory {out} already holds a run ({listing}); pass --resume to continue it, "
            "--exist-ok to write into it anyway, or choose another --out"
        )
    return out


def agree_on_run_dir(out: Path | None, name: str, *, resume: bool, exist_ok: bool, d: Dist) -> Path:
    """:func:`choose_run_dir` on the main process, the same answer (or error) on every process."""
    answer: list[str | None] = [None, None]
    if d.main:
        try:
            answer = [str(choose_run_dir(out, name, resume=resume, exist_ok=exist_ok)), None]
        except RunDirError as e:
            answer = [None, str(e)]
    if d.enabled:
        dist.broadcast_object_list(answer, src=0)
    if answer[1] is not None:
        raise RunDirError(answer[1])
    assert answer[0] is not None
    return Path(answer[0])
