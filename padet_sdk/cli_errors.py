"""How the command line reports errors: one line on stderr and exit status 2 for anything the
user can fix; a traceback only with ``--debug`` (or ``PADET_DEBUG=1``).

``--debug`` may stand anywhere on the ``padet`` command line; it is taken out before the
subcommand parses its options and passed on through the environment, so delegated subcommands
(``padet train``, ``padet export``, ...) see it too.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

DEBUG_ENV = "PADET_DEBUG"
#: exit status of an error the user can fix (bad option, file, model, source), as argparse's
EXIT_USAGE = 2
#: exit status of an unexpected exception (a bug): distinct from a usage error
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def take_debug_flag(argv: list[str]) -> list[str]:
    """``argv`` without ``--debug``; when it was there, turn debugging on for this process and
    its children."""
    if "--debug" not in argv:
        return argv
    os.environ[DEBUG_ENV] = "1"
    return [a for a in argv if a != "--debug"]


def report(prog: str, error: object, code: int = EXIT_USAGE) -> int:
    """Print ``prog: error`` (one line) and return ``code``; with debugging on, and inside an
    ``except`` block, the traceback of the exception being handled comes first."""
    if debug_enabled() and sys.exc_info()[0] is not None:
        traceback.print_exc()
    text = " ".join(str(error).split("\n")) if isinstance(error, BaseException) else str(error)
    print(f"{prog}: {text}", file=sys.stderr, flush=True)
    return code


def guard(prog: str, run: Callable[[], int]) -> int:
    """``run()``'s status; an exception nobody handled becomes one line (the traceback with
    ``--debug``) and :data:`EXIT_INTERNAL`, Ctrl-C a short note and :data:`EXIT_INTERRUPTED`."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the whole point: no traceback for the user
        if debug_enabled():
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"{prog}: unexpected {type(e).__name__}{': ' + first if first else ''} "
              "(rerun with --debug for the traceback, and report it if it is not your input)",
              file=sys.stderr, flush=True)  # fmt: skip
        return EXIT_INTERNAL


class GracefulInterrupt:
    """``with GracefulInterrupt(results):`` the first Ctrl-C asks ``results.stop()`` to end the
    stream after the frames in flight (outputs finished, requests back in their pool) and sets
    :attr:`requested`; a second one raises KeyboardInterrupt at once. A KeyboardInterrupt
    raised anywhere inside the pipeline could land between taking a resource and giving it
    back (seen: an inference request lost, and ``close()`` waiting two minutes for it)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # os.write, not print: a handler that prints while the main thread prints raises
        os.write(2, b"\nstopping after the frames in flight (Ctrl-C again to quit at once)\n")
        self.target.stop()

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
