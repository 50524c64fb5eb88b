"""Small helpers that several SDK modules need and that belong to none of them.

Kept here, below everything else in the import graph, so that sharing them never makes two
modules import each other (``Detector.for_video`` and ``stream()`` both ask for the core count).
"""
from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may run on (affinity/cgroup-aware where the OS says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def first_line(e: BaseException) -> str:
    """The gist of an engine's exception for a one-line error message: its only line, or its
    first line and last two (engines put the cause first and the location last)."""
    text = str(e).strip() or type(e).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 else " | ".join(lines[:1] + lines[-2:])


__all__ = ["available_cores", "first_line"]
