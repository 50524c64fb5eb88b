"""The SDK runs a real detection with torch (and training/export) unimportable — what an edge
device without torch sees."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sdk_helpers import model_and_files
from test_torch_free import BLOCKER  # the meta-path hook that makes torch/training/export unimportable

REPO = Path(__file__).resolve().parents[2]

CHILD = BLOCKER + r"""
import json
import numpy as np
import padet_sdk
from padet_sdk import Detector, stream
frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
out = {}
for path, backend in zip(sys.argv[1::2], sys.argv[2::2]):
    det = Detector(path, backend=backend, conf=0.4)
    dets = det(frame)
    batch = det([frame, frame])
    pending = det.submit(frame).result()
    out[f"{path}:{backend}"] = [len(dets), len(batch), len(pending), dets.to_json()[:20]]
out["torch_loaded"] = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
print(json.dumps(out))
"""


def test_detector_constructs_and_detects_with_torch_blocked():
    _, files = model_and_files()
    args = [str(files["onnx"]), "onnxruntime", str(files["onnx"]), "openvino"]
    if "xml" in files:
        args += [str(files["xml"]), "openvino"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.pop("torch_loaded") is False
    assert len(out) == len(args) // 2
    for n, nbatch, npending, _ in out.values():
        assert nbatch == 2 and npending == n
