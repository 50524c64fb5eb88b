"""One ``error:`` line instead of a traceback when a command needs a package that is not installed.

The SDK (``pip install .``) never needs torch; training needs the ``[train]`` extra and export and
quantization ``[train,export]`` (pyproject.toml). Every entry point that needs an extra runs its
``main`` through :func:`run_entry_point` (or :func:`run_entry_module`), so that a
ModuleNotFoundError for a package listed here, raised anywhere during the run, ends the command
with::

    error: this command needs the 'onnx' package from the [export] extra: pip install ".[train,export]"

and exit status :data:`EXIT_MISSING_EXTRA`. A missing module that is not listed here (a typo, a
missing project file, a submodule absent from an installed package) is a bug and keeps its
traceback. Standard library only, so it works in exactly the installs it reports on.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable

#: like a usage error (argparse, ``export.cli_common.EXIT_USAGE``): the command cannot run as installed
EXIT_MISSING_EXTRA = 2

#: top-level module -> (what pip installs, the extra of pyproject.toml that lists it; "" = the base
#: install). Keep in step with pyproject.toml.
PACKAGES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "train"),
    "torchvision": ("torchvision", "train"),
    "pycocotools": ("pycocotools", "train"),
    "tqdm": ("tqdm", ""),  # the base install has it (padet detect's progress bars); training uses it too
    "matplotlib": ("matplotlib", "train"),
    "onnx": ("onnx", "export"),
    "onnxscript": ("onnxscript", "export"),
    "nncf": ("nncf", "export"),
    "numpy": ("numpy", ""),
    "cv2": ("opencv-python-headless", ""),
    "openvino": ("openvino", ""),
    "onnxruntime": ("onnxruntime", ""),
    "scipy": ("scipy", ""),
    "av": ("av", ""),
}
_EXTRA_ORDER = ("train", "export", "dev")


def modules_of(extras: str) -> tuple[str, ...]:
    """The top-level modules of ``extras`` (``"train"``, ``"train,export"``), for :func:`require`."""
    wanted = {e.strip() for e in extras.split(",") if e.strip()}
    return tuple(m for m, (_, extra) in PACKAGES.items() if extra in wanted)


def missing_package(exc: BaseException) -> str | None:
    """The module of :data:`PACKAGES` that ``exc`` says is not installed, else None.

    Only the exact top-level name counts: ``No module named 'torch.foo'`` means torch is there but
    not the module the code wants (a version mismatch or a bug), which deserves its traceback.
    """
    if isinstance(exc, ModuleNotFoundError) and exc.name in PACKAGES:
        return exc.name
    return None


def install_hint(module: str, extras: str = "") -> str:
    """The one line for a missing ``module``; ``extras`` are what the whole command needs
    (``"train,export"`` for export), so that one pip command is enough, not one per package."""
    dist, extra = PACKAGES[module]
    wanted = {e.strip() for e in f"{extras},{extra}".split(",") if e.strip()}
    ordered = [e for e in _EXTRA_ORDER if e in wanted] + sorted(wanted - set(_EXTRA_ORDER))
    target = f".[{','.join(ordered)}]" if ordered else "."
    source = f"the [{extra}] extra" if extra else "the base install"
    return f'error: this command needs the {dist!r} package from {source}: pip install "{target}"'


def require(*modules: str) -> None:
    """Raise the ModuleNotFoundError an import would, now, for the first of ``modules`` that is not
    installed: for commands that would otherwise find out after minutes of work (training, then
    evaluation with pycocotools; a demo build that quantizes with nncf at the end)."""
    for m in modules:
        if importlib.util.find_spec(m) is None:
            raise ModuleNotFoundError(f"No module named {m!r}", name=m)


def run_entry_point(main: Callable[[], int | None], *, extras: str = "") -> int:
    """``main()``'s exit status; a missing package of :data:`PACKAGES` becomes :func:`install_hint`
    on stderr and :data:`EXIT_MISSING_EXTRA`. Any other exception (and SystemExit) passes through."""
    try:
        return int(main() or 0)
    except ModuleNotFoundError as e:
        module = missing_package(e)
        if module is None:
            raise
        print(install_hint(module, extras), file=sys.stderr, flush=True)
        return EXIT_MISSING_EXTRA


def run_entry_module(name: str, *, extras: str = "") -> int:
    """:func:`run_entry_point` of module ``name``'s ``main``, importing the module inside it: for
    ``python -m training.train`` and the like, whose own top-level ``import torch`` would fail
    before their ``if __name__ == "__main__"`` line. Called at the top of such a module, under
    ``if __name__ == "__main__":``, it imports that module a second time under its real name."""
    return run_entry_point(lambda: importlib.import_module(name).main(), extras=extras)


__all__ = [
    "EXIT_MISSING_EXTRA",
    "PACKAGES",
    "install_hint",
    "missing_package",
    "modules_of",
    "require",
    "run_entry_module",
    "run_entry_point",
]
