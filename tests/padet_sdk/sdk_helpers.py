"""Shared by the SDK tests: one narrow random PADet exported once per session (ONNX + IR),
synthetic frames and videos, and a detection comparison that tolerates float ties.

The model must be non-trivial: a fresh PADet predicts near-constant scores (every anchor ~prior)
and zero FAM offsets, which would let wrong pre-processing, box scaling or output order pass
unnoticed; the export tests' narrow model has spread scores and nonzero FAM offsets.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

CLASS_NAMES = ("circle", "square", "bar")
INPUT_SIZE = 192
#: post-processing used when comparing with torch: high enough that no top-k/max_det cut-off
#: splits near-equal scores (< 1000 candidates per test frame), low enough for hundreds of detections
CONF = 0.4
MAX_DET = 2000


@functools.lru_cache(maxsize=None)
def model_and_files(kind: str = "vgg") -> tuple[object, dict[str, Path]]:
    """(torch model, {"onnx": path, "xml": path}) — built and exported once per process and kind.

    The model is the export tests' narrow PADet (tests/export/export_helpers.py, ``kind`` a key
    of its ``NARROW``: "vgg", or the light "light" / "light_s16" / "light_r18"): nonzero FAM offsets and
    predictions that vary across anchors.
    """
    from export.graph import build_metadata
    from export.onnx_export import export_onnx

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
    try:
        from export_helpers import make_narrow_model
    finally:
        sys.path.pop(0)
    model = make_narrow_model(seed=0, kind=kind)
    assert model.cfg.input_size == INPUT_SIZE and model.cfg.num_classes == len(CLASS_NAMES)
    meta = build_metadata(model, CLASS_NAMES, trained=False)
    tmp = Path(tempfile.mkdtemp(prefix="padet_sdk_tests_"))
    atexit.register(shutil.rmtree, tmp, True)
    stem = "narrow" if kind == "vgg" else f"narrow_{kind}"
    files = {"onnx": export_onnx(model, tmp / f"{stem}.onnx", meta)}
    try:
        from export.openvino_export import export_openvino
    except ImportError:  # pragma: no cover - exporter not available
        pass
    else:
        files["xml"] = export_openvino(model, tmp / f"{stem}.xml", meta)
    files["dir"] = tmp
    return model, files


def make_frame(h: int, w: int, seed: int) -> np.ndarray:
    """A BGR uint8 frame with solid shapes on a smooth background."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 6)
    for _ in range(8):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(8, max(9, min(h, w) // 4))), color, -1)
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(8, w // 3)), y + int(rng.integers(8, h // 3))), color, -1)
    return img


FRAMES_SPEC = ((240, 320, 1), (480, 360, 2), (192, 192, 3), (101, 517, 4))


def frames() -> list[np.ndarray]:
    return [make_frame(h, w, s) for h, w, s in FRAMES_SPEC]


def write_video(path: Path, n: int = 30, size: tuple[int, int] = (320, 240), fps: float = 30.0) -> Path:
    """An mp4v clip whose frame i shows the number i (so order can be checked)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = make_frame(h, w, 100 + i % 5)
        cv2.putText(img, str(i), (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


def torch_reference(model, blob: np.ndarray, size: tuple[int, int], **overrides) -> dict[str, np.ndarray]:
    """``model.postprocess(model(x), image_sizes=[size])`` as numpy (boxes in frame pixels)."""
    import torch

    with torch.no_grad():
        r = model.postprocess(model(torch.from_numpy(blob)), image_sizes=[size], **overrides)[0]
    return {k: v.numpy() for k, v in r.items()}


def assert_same_detections(got, boxes, scores, class_ids, anchors, *, box_tol=0.5, score_tol=1e-4, score_threshold=0.001):
    """Detections equal up to float noise, matched by (anchor, class) — unique per detection —
    so that two near-equal scores listed in swapped order do not count as a difference. A
    detection may be missing on one side only if its score sits at the NMS score threshold.

    The defaults are for an engine (ONNX Runtime / OpenVINO f32) against torch: other float32
    kernels per CPU, then post-processing. Measured on this file's model and frames: scores within
    1.3e-6 / 1.6e-6 and boxes within 8.4e-5 / 6.1e-5 px on AVX-512 / AVX2 (qemu EPYC-Rome), with
    the same 2,052 detections on both; score_tol 1e-4 and box_tol 0.5 px are far above that and far
    below a wrong box scale or score. The 0.98 and the 1e-6 of the order check only allow for ties."""
    key_got = {(int(a), int(c)): i for i, (a, c) in enumerate(zip(got.anchor_ids, got.class_ids))}
    key_ref = {(int(a), int(c)): i for i, (a, c) in enumerate(zip(anchors, class_ids))}
    for only, src_scores in ((set(key_got) - set(key_ref), got.scores), (set(key_ref) - set(key_got), scores)):
        idx = [key_got.get(k, key_ref.get(k)) for k in only]
        near = [abs(float(src_scores[i]) - score_threshold) <= score_tol for i in idx]
        assert all(near), f"{len(only)} detections on one side only: {sorted(only)[:5]}"
    common = sorted(set(key_got) & set(key_ref))
    assert len(common) >= 0.98 * max(len(key_got), len(key_ref))
    gi = np.array([key_got[k] for k in common], dtype=int)
    ri = np.array([key_ref[k] for k in common], dtype=int)
    np.testing.assert_allclose(got.boxes[gi], boxes[ri], atol=box_tol, rtol=0)
    np.testing.assert_allclose(got.scores[gi], scores[ri], atol=score_tol, rtol=0)
    # the list is sorted by score like the reference
    assert np.all(np.diff(got.scores) <= 1e-6)


def assert_detections_equal(a, b, **kw) -> None:
    """Two SDK results equal (see :func:`assert_same_detections`)."""
    assert a.image_size == b.image_size
    assert_same_detections(a, b.boxes, b.scores, b.class_ids, b.anchor_ids, **kw)
