"""`make demo` runs in an environment of its own with the runtime install only (`pip install .`):
no torch, onnx or nncf there, even in a clone where `make test` has installed them in .venv.

It also runs examples/demo.py on a short clip there. The test runs inside `make test`, so it
checks exactly that situation. It builds the demo environment with the real Makefile target
when it is missing or out of date (about half a minute; a no-op when the stamp is current).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_VENV = ROOT / ".venv-demo"
FORBIDDEN = ("torch", "torchvision", "onnx", "nncf")

CHECK = r"""
import importlib.util, sys
import numpy as np

FORBIDDEN = %r
found = [m for m in FORBIDDEN if importlib.util.find_spec(m) is not None]
assert not found, f"importable in the demo env: {found}"
for m in FORBIDDEN:
    try:
        __import__(m)
    except ImportError:
        pass
    else:
        raise AssertionError(f"{m} imports in the demo env")

import padet_sdk, padet_sdk.native
from padet_sdk import Detector

det = Detector()
dets = det(np.full((120, 160, 3), 127, np.uint8))
det.close()
assert type(dets).__name__ == "Detections", type(dets)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN + ("training", "export"))
assert not loaded, loaded
print("BACKEND", padet_sdk.native.BACKEND)
print("FILE", padet_sdk.__file__)
print("DETECTIONS", len(dets))
""" % (FORBIDDEN,)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_env_has_the_runtime_only_and_runs_the_detector(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    r = subprocess.run(["make", "-C", str(ROOT), "demo-env"], capture_output=True, text=True,
                       env=env, timeout=1400)  # fmt: skip
    assert r.returncode == 0, f"make demo-env failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"

    python = DEMO_VENV / "bin" / "python"
    assert python.exists() and (DEMO_VENV / ".padet-installed").exists()
    # -I and a neutral cwd: import what is installed in .venv-demo, never the checkout
    r = subprocess.run([str(python), "-I", "-c", CHECK], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert out["BACKEND"] == "cython"
    assert Path(out["FILE"]).resolve().is_relative_to(DEMO_VENV.resolve()), out["FILE"]
    assert "not built" not in r.stderr  # the numpy-fallback warning

    # examples/demo.py (what `make demo` runs) works there too: a short clip, same code path
    r = subprocess.run([str(python), str(ROOT / "examples" / "demo.py"), "--frames", "24", "--sheet-frames", "2",
                        "--out", str(tmp_path / "demo")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "frames        24 (0 dropped)" in r.stdout and "AP50" in r.stdout, r.stdout
    assert (tmp_path / "demo" / "annotated.mp4").stat().st_size > 0
    # the runtime install includes PyAV, so the demo's video is H.264 (plays in a browser), every frame
    probe = ("import av, sys; f = av.open(sys.argv[1]); s = f.streams.video[0]; "
             "print(s.codec_context.name, sum(1 for _ in f.decode(s)))")  # fmt: skip
    r = subprocess.run([str(python), "-I", "-c", probe, str(tmp_path / "demo" / "annotated.mp4")], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    assert r.stdout.split() == ["h264", "24"], r.stdout + r.stderr
    assert "not built" not in r.stderr
