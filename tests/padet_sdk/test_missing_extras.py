"""A command run without the extra it needs says in one line what to install (padet_sdk.extras).

Each entry point runs in a subprocess whose ``sitecustomize.py`` hides one package behind a
``sys.meta_path`` finder (importing it raises ModuleNotFoundError, as when it is not installed),
with arguments that would otherwise be valid. The hidden package makes each command stop before
any real work, so every case takes about a second.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from padet_sdk.extras import (
    EXIT_MISSING_EXTRA, PACKAGES, install_hint, missing_package, modules_of, require, run_entry_point,
)

ROOT = Path(__file__).resolve().parents[2]
SHAPES_ONNX = ROOT / "padet_sdk" / "models" / "padet_shapes.onnx"

HIDER = r'''
import importlib.abc, os, sys

_HIDDEN = tuple(filter(None, os.environ.get("PADET_TEST_HIDE", "").split(",")))


class _Hide(importlib.abc.MetaPathFinder):
    """Pretend the modules in PADET_TEST_HIDE (and their submodules) are not installed."""

    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in _HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
'''

PRESET = ["--preset", "vgg16_384", "--random-init"]
#: (id, command with {tmp}/{images}/{shapes_onnx} placeholders, hidden module, what the hint must install)
CASES = [
    ("to_openvino", ["export/to_openvino.py", *PRESET, "--output", "{tmp}/x.xml"], "torch", "train,export"),
    ("to_openvino", ["export/to_openvino.py", *PRESET, "--output", "{tmp}/x.xml"], "onnx", "train,export"),
    ("to_onnx", ["export/to_onnx.py", *PRESET, "--output", "{tmp}/x.onnx"], "torch", "train,export"),
    ("to_onnx", ["export/to_onnx.py", *PRESET, "--output", "{tmp}/x.onnx"], "onnx", "train,export"),
    ("quantize-preset", ["export/quantize.py", *PRESET, "--images", "{images}", "--output", "{tmp}/x_int8.xml"],
     "torch", "train,export"),
    ("quantize-ort", ["export/quantize.py", "--model", "{shapes_onnx}", "--images", "{images}", "--backend", "ort",
                      "--output", "{tmp}/x_int8.onnx"], "onnx", "train,export"),
    ("quantize-nncf", ["export/quantize.py", "--model", "{shapes_onnx}", "--images", "{images}",
                       "--output", "{tmp}/x_int8.xml"], "nncf", "train,export"),
    ("build_demo_model", ["export/build_demo_model.py", "--work", "{tmp}/work", "--dest", "{tmp}/dest"],
     "nncf", "train,export"),
    ("train", ["-m", "training.train", "--config", "vgg16_384", "--data", "{tmp}/data", "--out", "{tmp}/run"],
     "torch", "train"),
    ("train", ["-m", "training.train", "--config", "vgg16_384", "--data", "{tmp}/data", "--out", "{tmp}/run"],
     "matplotlib", "train"),
    ("evaluate", ["-m", "training.evaluate", "--checkpoint", "{tmp}/best.pth", "--data", "{tmp}/data"],
     "torch", "train"),
    ("anchor_stats", ["-m", "training.anchor_stats", "--checkpoint", "{tmp}/best.pth", "--data", "{tmp}/data"],
     "torch", "train"),
    ("experiments", ["-m", "training.experiments", "table1", "--data", "{tmp}/data", "--out", "{tmp}/exp",
                     "--steps", "1"], "torch", "train"),
    ("summary", ["-m", "training.summary", "--preset", "vgg16_384"], "torch", "train"),
    ("synth", ["-m", "training.data.synth", "--out", "{tmp}/synth", "--train", "1", "--val", "1"], "tqdm", "train"),
    ("padet-export", ["-m", "padet_sdk.cli", "export", *PRESET, "--output", "{tmp}/x.xml"], "onnx", "train,export"),
    ("padet-export-onnx", ["-m", "padet_sdk.cli", "export", "--format", "onnx", *PRESET, "--output", "{tmp}/x.onnx"],
     "torch", "train,export"),
    ("padet-train", ["-m", "padet_sdk.cli", "train", "--config", "vgg16_384", "--data", "{tmp}/data",
                     "--out", "{tmp}/run"], "torch", "train"),
    ("padet-eval", ["-m", "padet_sdk.cli", "eval", "--checkpoint", "{tmp}/best.pth", "--data", "{tmp}/data"],
     "torch", "train"),
    ("padet-quantize", ["-m", "padet_sdk.cli", "quantize", "--model", "{shapes_onnx}", "--images", "{images}",
                        "--output", "{tmp}/x_int8.xml"], "nncf", "train,export"),
    ("bench_latency", ["benchmarks/bench_latency.py", "--runs", "20"], "torch", "train,export"),
    ("bench_stream", ["benchmarks/bench_stream.py", "--random-model", "--frames", "2"], "torch", "train,export"),
    ("dump_real_outputs", ["benchmarks/dump_real_outputs.py", "--checkpoint", "{tmp}/best.pth",
                           "--out", "{tmp}/o.npz"], "torch", "train"),
]
#: commands that print progress lines (``[padet] ...``) before they reach the missing import
PROGRESS_FIRST = {"quantize-preset", "quantize-ort", "quantize-nncf", "padet-quantize"}


@pytest.fixture(scope="module")
def hider(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the hiding ``sitecustomize.py``, for PYTHONPATH."""
    d = tmp_path_factory.mktemp("hide")
    (d / "sitecustomize.py").write_text(HIDER)
    return d


def run_hidden(hider: Path, hidden: str, args: list[str]) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root with ``hidden`` not importable."""
    env = {**os.environ, "PYTHONPATH": str(hider), "PADET_TEST_HIDE": hidden}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def command(args: list[str], tmp: Path) -> list[str]:
    images = tmp / "images"
    images.mkdir(exist_ok=True)
    cv2.imwrite(str(images / "a.png"), np.full((64, 64, 3), 127, np.uint8))
    (tmp / "data" / "annotations").mkdir(parents=True, exist_ok=True)
    (tmp / "best.pth").write_bytes(b"")  # exists: the commands that check paths first get past that
    return [a.format(tmp=tmp, images=images, shapes_onnx=SHAPES_ONNX) for a in args]


@pytest.mark.parametrize(("name", "args", "hidden", "install"), CASES,
                         ids=[f"{c[0]}-without-{c[2]}" for c in CASES])  # fmt: skip
def test_entry_point_names_the_extra_in_one_line(hider, tmp_path, name, args, hidden, install):
    res = run_hidden(hider, hidden, command(args, tmp_path))
    assert res.returncode == EXIT_MISSING_EXTRA, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    if name in PROGRESS_FIRST:
        lines = [line for line in lines if not line.startswith("[padet] ")]
    extra = PACKAGES[hidden][1]
    source = f"the [{extra}] extra" if extra else "the base install"
    assert lines == [f"error: this command needs the '{hidden}' package from {source}: "
                     f'pip install ".[{install}]"'], res.stderr  # fmt: skip
    assert not (tmp_path / "x.xml").exists() and not (tmp_path / "x.onnx").exists()


def test_a_missing_project_module_is_a_bug_and_keeps_its_traceback(hider, tmp_path):
    res = run_hidden(hider, "export.graph", command(CASES[2][1], tmp_path))
    assert res.returncode != 0
    assert "Traceback" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1] == "ModuleNotFoundError: No module named 'export.graph'"
    assert "pip install" not in res.stderr


def test_run_entry_point_passes_other_errors_through():
    def missing_submodule() -> int:
        raise ModuleNotFoundError("No module named 'torch.nope'", name="torch.nope")  # torch there, not this

    with pytest.raises(ModuleNotFoundError):
        run_entry_point(missing_submodule, extras="train")
    with pytest.raises(SystemExit):  # --help and argparse errors keep their own exit
        run_entry_point(lambda: sys.exit(0))
    assert run_entry_point(lambda: 3) == 3 and run_entry_point(lambda: None) == 0


def test_require_raises_what_an_import_would():
    require("numpy", "cv2")
    with pytest.raises(ModuleNotFoundError) as e:
        require("numpy", "padet_no_such_module")
    assert e.value.name == "padet_no_such_module" and missing_package(e.value) is None


def test_hint_merges_the_command_extras_with_the_package_one():
    assert install_hint("onnx") == "error: this command needs the 'onnx' package from the [export] extra: " \
                                   'pip install ".[export]"'
    assert install_hint("torch", "export").endswith('pip install ".[train,export]"')  # in pyproject's order
    assert install_hint("cv2") == ("error: this command needs the 'opencv-python-headless' package from the base "
                                   'install: pip install "."')  # fmt: skip


def test_packages_match_the_extras_of_pyproject():
    """PACKAGES is a copy of pyproject.toml's lists: each extra names the same distributions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip() for r in reqs}

    base = names(project["dependencies"])
    for extra in ("train", "export"):
        listed = names(project["optional-dependencies"][extra]) - base
        assert {PACKAGES[m][0] for m in modules_of(extra)} == listed, extra
    assert {PACKAGES[m][0] for m, (_, e) in PACKAGES.items() if e == ""} == base
