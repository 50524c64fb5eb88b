"""PostprocessOptions.agnostic_iou: after class-wise NMS, one box per object whatever its class."""
from __future__ import annotations

import numpy as np
import pytest

from padet_sdk import native
from padet_sdk.options import PostprocessOptions


def _two_classes_on_one_object():
    """Anchors 0 and 1 on the same object (class 1 at 0.6, class 2 at 0.3), anchor 2 elsewhere (class 2)."""
    anchors = np.array([[0.3, 0.3, 0.2, 0.2], [0.31, 0.3, 0.2, 0.2], [0.8, 0.8, 0.1, 0.1]], np.float32)
    cls = np.array([[0.4, 0.6, 0.0], [0.7, 0.0, 0.3], [0.5, 0.0, 0.5]], np.float32)
    deltas = np.zeros((3, 4), np.float32)
    return anchors, cls, deltas


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_agnostic_iou_leaves_one_box_per_object(backend, monkeypatch):
    if backend == "numpy":
        monkeypatch.setattr(native, "_native", None)
        monkeypatch.setattr(native, "_warn_fallback", lambda: None)
    a, cls, d = _two_classes_on_one_object()
    base = PostprocessOptions(theta=0.0, conf=0.1)
    boxes, scores, labels, idx = native.postprocess(a, None, None, cls, d, base)
    assert sorted(labels.tolist()) == [1, 2, 2]  # class-wise NMS keeps both classes on the first object
    boxes, scores, labels, idx = native.postprocess(a, None, None, cls, d, base.replace(agnostic_iou=0.5))
    assert labels.tolist() == [1, 2] and idx.tolist() == [0, 2]  # the 0.3 box of class 2 on object 1 is gone
    np.testing.assert_allclose(scores, [0.6, 0.5])


def test_agnostic_iou_is_validated_and_off_by_default():
    assert PostprocessOptions().agnostic_iou is None
    with pytest.raises(ValueError, match="agnostic_iou"):
        PostprocessOptions(agnostic_iou=1.5)
    assert PostprocessOptions.from_dict({"conf": 0.2}).agnostic_iou is None  # metadata without the field
    assert PostprocessOptions(agnostic_iou=0.7).to_dict()["agnostic_iou"] == 0.7


def test_torch_reference_applies_the_same_step():
    torch = pytest.importorskip("torch")
    from training.postprocess import postprocess_single

    a, cls, d = _two_classes_on_one_object()
    opts = PostprocessOptions(theta=0.0, conf=0.1, agnostic_iou=0.5)
    ref = postprocess_single(torch.from_numpy(a), None, None, torch.from_numpy(cls), torch.from_numpy(d), opts)
    boxes, scores, labels, idx = native.postprocess(a, None, None, cls, d, opts)
    assert ref["labels"].tolist() == labels.tolist() and ref["anchor_idx"].tolist() == idx.tolist()
    np.testing.assert_allclose(ref["scores"].numpy(), scores, rtol=0, atol=1e-7)
