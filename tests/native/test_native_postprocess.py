"""The whole single-image pipeline: Cython == numpy on 18,400-anchor outputs, and its invariants."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic import ssd_anchors, synthetic_outputs

from padet_sdk import native, postprocess_numpy
from padet_sdk.options import PostprocessOptions

ARG_NAMES = ("anchors", "apm_scores", "apm_deltas", "cls_scores", "det_deltas")


def run_both(native_ext, outputs: dict, **overrides):
    """(numpy result, Cython result) of postprocess with the default options changed by ``overrides``."""
    options = PostprocessOptions().replace(**overrides)
    args = [outputs[k] for k in ARG_NAMES]
    return postprocess_numpy.postprocess(*args, options, (0.1, 0.2)), native_ext.postprocess(*args, options, (0.1, 0.2))


def assert_same_detections(ref, nat):
    ref_boxes, ref_scores, ref_labels, ref_anchor = ref
    boxes, scores, labels, anchor = nat
    np.testing.assert_array_equal(anchor, ref_anchor)
    np.testing.assert_array_equal(labels, ref_labels)
    # the same float64-then-float32 arithmetic in both (see test_soft_nms.SCORE_ATOL): measured
    # bit-equal on AVX-512 and AVX2 (qemu EPYC-Rome); the bounds absorb a rare 1-ulp difference of exp
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(boxes, ref_boxes, rtol=0, atol=1e-6)
    assert (boxes.dtype, scores.dtype, labels.dtype, anchor.dtype) == (np.float32, np.float32, np.int64, np.int64)
    assert boxes.shape == (len(scores), 4) == (len(labels), 4) == (len(anchor), 4)


def without_apm(outputs: dict, drop: tuple[str, ...]) -> dict:
    return {k: (None if k in drop else v) for k, v in outputs.items()}


@pytest.fixture(scope="module")
def anchors():
    a = ssd_anchors()
    assert a.shape == (18400, 4)
    return a


@pytest.mark.parametrize("num_classes", [3, 80])
@pytest.mark.parametrize("kind", ["peaky", "uniform"])
@pytest.mark.parametrize("drop", [(), ("apm_scores", "apm_deltas"), ("apm_scores",), ("apm_deltas",)])
def test_cython_matches_numpy_on_18400_anchors(native_ext, anchors, num_classes, kind, drop):
    outputs = without_apm(synthetic_outputs(num_classes, seed=num_classes, kind=kind, anchors=anchors), drop)
    ref, nat = run_both(native_ext, outputs)
    assert len(ref[1]) > 0
    assert_same_detections(ref, nat)


@pytest.mark.parametrize("nms", ["soft-gaussian", "hard"])
@pytest.mark.parametrize("seed", [1, 2])
def test_cython_matches_numpy_with_other_soft_nms_methods(native_ext, anchors, nms, seed):
    outputs = synthetic_outputs(3, seed=seed, anchors=anchors)
    assert_same_detections(*run_both(native_ext, outputs, nms=nms, max_det=1000))


def test_peaky_outputs_give_realistic_candidate_counts(anchors):
    """Guards the test data: enough candidates to exercise NMS, far fewer than N*C."""
    outputs = synthetic_outputs(80, seed=0, anchors=anchors)
    valid = outputs["apm_scores"] >= np.float32(0.01)
    candidates = int(((outputs["cls_scores"][:, 1:] >= np.float32(0.01)) & valid[:, None]).sum())
    assert 1000 < candidates < 0.05 * 18400 * 80


def test_uniform_scores_saturate_top_k_with_the_lowest_flat_indices(native_ext, anchors):
    """All 18,400 x 80 scores tie: the stable rule keeps flat indices 0..999, i.e. anchors 0..12."""
    outputs = without_apm(synthetic_outputs(80, kind="uniform", anchors=anchors), ("apm_scores",))
    ref, nat = run_both(native_ext, outputs, max_det=1000)
    assert_same_detections(ref, nat)
    assert nat[3].max() <= 999 // 80
    assert len(nat[1]) <= 1000


def test_single_class(native_ext, anchors):
    ref, nat = run_both(native_ext, synthetic_outputs(1, seed=5, anchors=anchors))
    assert len(nat[1]) > 0 and set(nat[2].tolist()) == {1}
    assert_same_detections(ref, nat)


@pytest.mark.parametrize("where", ["cls", "apm"])
def test_all_below_threshold_gives_empty_arrays(native_ext, anchors, where):
    outputs = synthetic_outputs(3, seed=6, anchors=anchors)
    if where == "cls":
        outputs["cls_scores"][:, 1:] = np.float32(0.009)
    else:
        outputs["apm_scores"][:] = np.float32(0.009)
    for boxes, scores, labels, anchor in run_both(native_ext, outputs):
        assert boxes.shape == (0, 4) and scores.shape == labels.shape == anchor.shape == (0,)
        assert labels.dtype == anchor.dtype == np.int64


def test_no_anchors_gives_empty_arrays(native_ext):
    empty = {k: np.zeros((0, 4), np.float32) for k in ("anchors", "apm_deltas", "det_deltas")}
    empty |= {"apm_scores": np.zeros(0, np.float32), "cls_scores": np.zeros((0, 4), np.float32)}
    for result in (*run_both(native_ext, empty), native.postprocess(*[empty[k] for k in ARG_NAMES])):
        assert [r.shape for r in result] == [(0, 4), (0,), (0,), (0,)]


@pytest.mark.parametrize("max_det", [1, 5, 300])
def test_max_det_keeps_the_best_prefix(native_ext, anchors, max_det):
    outputs = synthetic_outputs(80, seed=7, anchors=anchors)
    full = run_both(native_ext, outputs, max_det=10**6)[1]
    ref, nat = run_both(native_ext, outputs, max_det=max_det)
    assert len(full[1]) > 300
    assert len(nat[1]) == max_det
    assert_same_detections(ref, nat)
    for got, whole in zip(nat, full):
        np.testing.assert_array_equal(got, whole[:max_det])


@pytest.mark.parametrize("num_classes", [1, 3, 80])
def test_outputs_are_well_formed(native_ext, anchors, num_classes):
    boxes, scores, labels, anchor = native.postprocess(
        *[synthetic_outputs(num_classes, seed=8, anchors=anchors)[k] for k in ARG_NAMES]
    )
    assert len(scores) > 0
    assert labels.min() >= 1 and labels.max() <= num_classes  # 0 is background: never returned
    assert np.all(np.diff(scores) <= 0) and scores.min() >= np.float32(0.001)
    assert boxes.min() >= 0 and boxes.max() <= 1 and np.all(boxes[:, 2:] >= boxes[:, :2])
    assert anchor.min() >= 0 and anchor.max() < 18400


def test_wrapper_converts_engine_outputs_of_other_dtypes_and_layouts(native_ext, anchors):
    outputs = synthetic_outputs(3, seed=9, anchors=anchors)
    expected = run_both(native_ext, outputs)[1]
    odd = {k: np.asfortranarray(v.astype(np.float64)) for k, v in outputs.items()}
    for got, want in zip(native.postprocess(*[odd[k] for k in ARG_NAMES]), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cls_scores": np.zeros((18400, 1), np.float32)}, r"C >= 1"),
        ({"det_deltas": np.zeros((18399, 4), np.float32)}, "det_deltas has 18399 rows"),
        ({"apm_scores": np.zeros((18400, 1), np.float32)}, r"apm_scores must have shape \(N\)"),
        ({"anchors": np.zeros((18400, 2), np.float32)}, r"anchors must have shape \(N, 4\)"),
    ],
)
def test_wrapper_rejects_bad_shapes_with_clear_messages(anchors, change, message):
    outputs = synthetic_outputs(3, seed=10, anchors=anchors) | change
    with pytest.raises(ValueError, match=message):
        native.postprocess(*[outputs[k] for k in ARG_NAMES])


def test_wrapper_takes_only_an_options_object(anchors):
    outputs = synthetic_outputs(3, seed=10, anchors=anchors)
    with pytest.raises(TypeError, match="PostprocessOptions"):
        native.postprocess(*[outputs[k] for k in ARG_NAMES], {"max_det": 5})


@pytest.mark.parametrize("nms", ["soft-linear", "soft-gaussian", "hard"])
def test_every_field_reaches_the_kernels(native_ext, anchors, nms):
    """Each field changes the Cython result, and in the same way as the numpy one: none is
    dropped or swapped on the way through the kernels' struct."""
    outputs = synthetic_outputs(3, seed=12, anchors=anchors)
    base = dict(nms=nms, max_det=1000)  # every survivor of NMS is returned, so each field shows
    changes = dict(theta=0.3, conf=0.2, iou=0.6, nms_floor=0.05, pre_nms_top_k=50, max_det=20)
    if nms == "soft-gaussian":  # it decays every overlap: sigma matters, iou does not
        del changes["iou"]
        changes["sigma"] = 0.1
    base_result = run_both(native_ext, outputs, **base)[1]
    for name, value in changes.items():
        ref, nat = run_both(native_ext, outputs, **(base | {name: value}))
        assert_same_detections(ref, nat)
        assert not all(np.array_equal(a, b) for a, b in zip(nat, base_result)), name
