"""The one table of inference engines: name → backend class and the model files it reads.

``Detector(path, backend=...)`` looks the engine up here, so an engine is added by one new
module with a :class:`~padet_sdk.backends.base.Backend` subclass and one
:func:`register_backend` line; nothing else in the SDK names engines. ``backend="auto"`` takes
the first registered engine that reads the file's suffix and whose package is installed, which
makes the order of registration the order of preference.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from .base import Backend

#: how error messages call the model file kinds that the built-in engines read
FILE_KINDS = {".xml": "OpenVINO IR", ".onnx": "ONNX"}


@dataclass(frozen=True)
class BackendEntry:
    name: str
    cls: type[Backend]
    suffixes: tuple[str, ...]  # lower case, with the dot
    requires: str | None  # importable package the engine needs; "auto" skips it when missing


_REGISTRY: dict[str, BackendEntry] = {}


def register_backend(name: str, cls: type[Backend], *, suffixes: tuple[str, ...], requires: str | None = None) -> type[Backend]:
    """Make ``cls`` the engine called ``name`` for model files ending in ``suffixes``.

    ``requires`` names the package the engine imports (``"openvino"``); ``backend="auto"``
    passes over engines whose package is not installed. Registering a name again replaces it.
    """
    if name == "auto" or not name:
        raise ValueError(f"{name!r} cannot name a backend")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"backend {name!r} must be a padet_sdk.backends.Backend subclass, got {cls!r}")
    if not suffixes or not all(s.startswith(".") for s in suffixes):
        raise ValueError(f"suffixes of backend {name!r} must be like ('.xml',), got {suffixes!r}")
    _REGISTRY[name] = BackendEntry(name, cls, tuple(s.lower() for s in suffixes), requires)
    return cls


def unregister_backend(name: str) -> None:
    """Forget the engine ``name`` (no error if it is not registered)."""
    _REGISTRY.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """What ``Detector(backend=...)`` accepts: "auto" and every registered engine."""
    return ("auto", *_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (not "auto": see :func:`choose_backend`)."""
    try:
        return _REGISTRY[name].cls
    except KeyError:
        raise ValueError(f"backend must be one of {backend_names()}, got {name!r}") from None


def backends_for(path: str | Path) -> list[str]:
    """Engines that read ``path``'s kind of file, in order of preference."""
    suffix = Path(path).suffix.lower()
    return [e.name for e in _REGISTRY.values() if suffix in e.suffixes]


def _describe(suffix: str) -> str:
    return f"{FILE_KINDS[suffix]} ({suffix})" if suffix in FILE_KINDS else f"{suffix} files"


def _installed(entry: BackendEntry) -> bool:
    return entry.requires is None or importlib.util.find_spec(entry.requires) is not None


def choose_backend(path: Path, backend: str = "auto") -> str:
    """The engine name for ``path``.

    Raises:
        ValueError: ``backend`` is neither "auto" nor a registered engine.
        ModelLoadError: no engine reads this kind of file, or ``backend`` does not.
    """
    names = backend_names()
    if backend not in names:
        raise ValueError(f"backend must be one of {names}, got {backend!r}")
    suffix = path.suffix.lower()
    readers = [e for e in _REGISTRY.values() if suffix in e.suffixes]
    if not readers:
        known = sorted({s for e in _REGISTRY.values() for s in e.suffixes})
        raise ModelLoadError(f"{path}: unsupported model file type {suffix!r}; use {' or '.join(_describe(s) for s in known)}")
    if backend == "auto":
        # with no engine installed, the first one loads and its error names the missing package
        return next((e for e in readers if _installed(e)), readers[0]).name
    if backend not in (e.name for e in readers):
        entry = _REGISTRY[backend]
        alternatives = " or ".join(f"backend={e.name!r}" for e in readers)
        raise ModelLoadError(
            f"{path}: {backend} cannot read {_describe(suffix)}; use {alternatives} or a {'/'.join(entry.suffixes)} file"
        )
    return backend


__all__ = [
    "BackendEntry", "FILE_KINDS", "backend_class", "backend_names", "backends_for", "choose_backend",
    "register_backend", "unregister_backend",
]
