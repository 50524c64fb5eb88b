"""Exception types of the SDK, so that callers can tell a bad model from a bad frame.

Each type also derives from the builtin exception a caller would naturally catch
(``OSError`` for files, ``ValueError`` for bad values), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

from .metadata import MetadataError


class PadetError(Exception):
    """Base class of every error raised on purpose by :mod:`padet_sdk`."""


class ModelLoadError(PadetError, OSError):
    """The model file cannot be used: unreadable, corrupt, wrong format or wrong backend."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The model file does not exist."""


class MissingMetadataError(ModelLoadError, MetadataError):
    """The model loads but carries no (or unusable) PADet metadata, e.g. it was not exported by
    ``export/`` or it was converted by hand without copying the metadata."""


class InvalidFrameError(PadetError, ValueError):
    """A frame is not an HxWx3 uint8 BGR image (wrong rank, channels, dtype, empty, None)."""


class FramePathError(InvalidFrameError, TypeError):
    """A path (str, bytes, os.PathLike) was passed where a frame belongs: read it with
    ``cv2.imread`` first. Also a ``TypeError``, since a str is not a frame at all."""


class DetectorClosedError(PadetError, RuntimeError):
    """The :class:`~padet_sdk.detector.Detector` was closed: calls and submits started after
    ``close()`` raise this (inferences already running finish), on every engine."""


class SourceError(PadetError, OSError):
    """A video source or output file cannot be opened."""


__all__ = [
    "PadetError",
    "ModelLoadError",
    "ModelNotFoundError",
    "MissingMetadataError",
    "InvalidFrameError",
    "FramePathError",
    "DetectorClosedError",
    "SourceError",
]
