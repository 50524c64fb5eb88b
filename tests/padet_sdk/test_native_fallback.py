"""Without the built extension, padet_sdk.native must still work (numpy), warn once, and agree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NATIVE_TESTS = REPO / "tests" / "native"  # synthetic.py: the test outputs

# Runs in a fresh interpreter: an import hook makes `padet_sdk._native` unimportable, then the
# wrappers are called several times and their results saved for the parent to compare.
CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys, warnings
    import numpy as np

    class BlockNative(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "padet_sdk._native":
                raise ImportError("blocked by test_native_fallback")
            return None

    sys.meta_path.insert(0, BlockNative())
    sys.path.insert(0, sys.argv[2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from padet_sdk import native
        from synthetic import synthetic_outputs
        out = synthetic_outputs(3, seed=11)
        args = [out[k] for k in ("anchors", "apm_scores", "apm_deltas", "cls_scores", "det_deltas")]
        boxes, scores, labels, anchor = native.postprocess(*args)
        keep, kept = native.soft_nms(boxes, scores, "gaussian", score_threshold=0.0)
        decoded = native.decode_boxes(out["det_deltas"], out["anchors"])
        nms_keep = native.nms(boxes, scores, 0.3)
    np.savez(sys.argv[1], boxes=boxes, scores=scores, labels=labels, anchor=anchor,
             keep=keep, kept=kept, decoded=decoded, nms_keep=nms_keep)
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    print(json.dumps({"backend": native.BACKEND, "warnings": runtime}))
    """
)


@pytest.fixture(scope="module")
def fallback_run(tmp_path_factory):
    npz = tmp_path_factory.mktemp("fallback") / "numpy_results.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(npz), str(NATIVE_TESTS)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(npz)


def test_backend_is_numpy_when_extension_cannot_be_imported(fallback_run):
    info, _ = fallback_run
    assert info["backend"] == "numpy"


def test_fallback_warns_exactly_once_with_build_instructions(fallback_run):
    info, _ = fallback_run
    assert len(info["warnings"]) == 1, info["warnings"]
    message = info["warnings"][0]
    assert "pip install -e ." in message and "setup.py build_ext --inplace" in message


def test_fallback_results_equal_the_cython_ones(fallback_run):
    try:
        from padet_sdk import _native  # noqa: F401
    except ImportError:
        pytest.fail("padet_sdk._native is not built: run `python setup.py build_ext --inplace` in the repository root")
    from padet_sdk import native

    sys.path.insert(0, str(NATIVE_TESTS))
    from synthetic import synthetic_outputs

    assert native.BACKEND == "cython"
    _, got = fallback_run
    out = synthetic_outputs(3, seed=11)
    boxes, scores, labels, anchor = native.postprocess(
        *[out[k] for k in ("anchors", "apm_scores", "apm_deltas", "cls_scores", "det_deltas")]
    )
    keep, kept = native.soft_nms(boxes, scores, "gaussian", score_threshold=0.0)
    expected = dict(
        boxes=boxes, scores=scores, labels=labels, anchor=anchor, keep=keep, kept=kept,
        decoded=native.decode_boxes(out["det_deltas"], out["anchors"]), nms_keep=native.nms(boxes, scores, 0.3),
    )
    assert len(scores) > 0
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
