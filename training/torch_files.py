"""Reading ``.pth`` files safely, with messages a user can act on.

Every torch file PADet reads (checkpoints, ImageNet backbone weights) goes through
:func:`load_weights_only`: ``torch.load(weights_only=True)`` never runs code from the file. Its
own errors are long and tell the user to retry with ``weights_only=False`` — the one thing we
must not suggest for a file of unknown origin — so they are reduced to one line saying what the
file is and what to do instead.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch


class WeightsFileError(ValueError):
    """A torch file that cannot be read as tensors and plain containers."""


def _unpickler_detail(message: str) -> str:
    """The useful part of torch's weights-only error: what the unpickler refused."""
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", message, re.S)
    detail = " ".join(m.group(1).split()) if m else ""
    # "Unsupported global: GLOBAL os.system was not an allowed global by default. Please use ..."
    detail = re.split(r"\s+(?:was not an allowed global|Please use|Check the documentation)", detail)[0]
    return detail


def load_weights_only(path: str | Path, what: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure becomes one :class:`WeightsFileError`
    line naming ``what`` ("checkpoint", "backbone weights") and the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as e:
        raise WeightsFileError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if head != b"PK" and head[:1] != b"\x80":  # torch.save: a zip archive (or a legacy pickle)
        raise WeightsFileError(f"cannot read {what} {path}: not a torch file (torch.save writes a zip archive)")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ..." is noise for the user
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = _unpickler_detail(str(e))
        raise WeightsFileError(
            f"{what} {path} is not a file of plain tensors (torch's safe loader refused it"
            + (f": {detail}" if detail else "")
            + "); PADet never runs code from a file: save plain tensors with torch.save(model.state_dict(), path)"
        ) from None
    except RuntimeError as e:
        if "zip archive" in str(e) or "central directory" in str(e):
            raise WeightsFileError(f"{what} {path} is truncated or corrupted (not a complete torch zip file)") from None
        raise WeightsFileError(f"cannot read {what} {path}: {str(e).splitlines()[0]}") from None
    except (EOFError, OSError, ValueError, TypeError) as e:
        raise WeightsFileError(f"cannot read {what} {path}: {type(e).__name__}: {e}") from None
