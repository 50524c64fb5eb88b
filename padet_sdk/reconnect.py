"""Re-opening live sources: cameras drop (a Wi-Fi blip, an NVR restart, an RTSP server timing
out), so a live :class:`~padet_sdk.sources.FrameSource` re-opens with bounded exponential
back-off instead of ending, and says so with a :class:`SourceEvent`.

:class:`ReconnectPolicy` holds the numbers; :func:`retry` is the loop that waits and re-opens.
Files never reconnect: their end is the end.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

log = logging.getLogger("padet_sdk.stream")

T = TypeVar("T")
EventKind = Literal["disconnected", "reconnected", "failed"]


@dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    """How a live source re-opens after it stops delivering frames.

    Attempt ``k`` (1-based) waits ``min(max_delay, initial_delay * factor**(k-1))`` seconds
    first, so a server that is back at once costs half a second, and one that stays down is
    not hammered. After ``attempts`` failed attempts in a row the source ends with
    :class:`~padet_sdk.errors.SourceError` (None: retry for ever, e.g. for an unattended box).
    ``open_timeout``: seconds one attempt may take to connect (FFmpeg's open timeout).
    The defaults give up after about 25 s of back-off.
    """

    attempts: int | None = 6
    initial_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    open_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts is not None and (isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1):
            raise ValueError(f"attempts must be an integer >= 1 or None, got {self.attempts!r}")
        for name in ("initial_delay", "max_delay", "open_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.factor, (int, float)) and math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"factor must be a finite number >= 1, got {self.factor!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.initial_delay * self.factor ** (attempt - 1)))

    def total_delay(self) -> float:
        """Seconds of back-off before giving up (inf when ``attempts`` is None)."""
        return math.inf if self.attempts is None else sum(self.delay(k) for k in range(1, self.attempts + 1))


def as_policy(reconnect: bool | ReconnectPolicy | None) -> ReconnectPolicy | None:
    """``True`` → the default policy, ``False``/None → no reconnecting, a policy → itself."""
    if isinstance(reconnect, ReconnectPolicy):
        return reconnect
    if reconnect is True:
        return ReconnectPolicy()
    if reconnect in (False, None):
        return None
    raise TypeError(f"reconnect must be a bool or a ReconnectPolicy, got {reconnect!r}")


@dataclass(frozen=True)
class SourceEvent:
    """A disconnect, a reconnect or giving up, on one source.

    ``time`` is wall-clock (``time.time()``); ``gap_s`` (on "reconnected" and "failed") is how
    long the source delivered nothing; ``attempt`` is the attempt that succeeded or the last one.
    """

    kind: EventKind
    source: str
    time: float
    attempt: int = 0
    gap_s: float = 0.0
    message: str = ""

    def __str__(self) -> str:
        extra = f" after {self.gap_s:.1f} s (attempt {self.attempt})" if self.kind != "disconnected" else ""
        return f"{self.source} {self.kind}{extra}" + (f": {self.message}" if self.message else "")


def retry(open_once: Callable[[], T | None], policy: ReconnectPolicy, *, name: str, stop: threading.Event | None = None,
          wait_first: bool = True) -> tuple[T | None, int, str]:  # fmt: skip
    """Call ``open_once`` until it returns something other than None (an exception counts as a
    failed attempt), waiting :meth:`ReconnectPolicy.delay` before each attempt (``wait_first``
    False: the first attempt runs at once). Returns ``(opened or None, attempts made, last
    failure)``; None also when ``stop`` is set meanwhile."""
    why = "no attempt made"
    attempt = 0
    while policy.attempts is None or attempt < policy.attempts:
        attempt += 1
        if wait_first or attempt > 1:
            wait = policy.delay(attempt if wait_first else attempt - 1)
            if stop is not None:
                if stop.wait(wait):
                    return None, attempt - 1, "stopped"
            else:
                time.sleep(wait)
        try:
            opened = open_once()
        except Exception as e:  # noqa: BLE001 - a failed attempt, reported with the next event
            opened, why = None, f"{type(e).__name__}: {e}"
        else:
            why = "could not be opened"
        if opened is not None:
            return opened, attempt, ""
        log.info("re-opening %s: attempt %d%s failed (%s)", name, attempt,
                 f" of {policy.attempts}" if policy.attempts else "", why)  # fmt: skip
    return None, attempt, why


__all__ = ["ReconnectPolicy", "SourceEvent", "as_policy", "retry"]
