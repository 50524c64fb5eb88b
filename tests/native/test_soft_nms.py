"""soft_nms / nms: hand-checked answers, the contract's tie rules, and Cython == numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from nms_cases import random_nms_case

from padet_sdk import native, postprocess_numpy

METHOD_CODES = {"linear": 0, "gaussian": 1, "hard": 2}

# Two 10x10 boxes shifted by 5: inter 50, union 150, IoU 1/3 (> Nt = 0.3).
PAIR = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)
PAIR_SCORES = np.array([0.9, 0.8], dtype=np.float32)
#: Cython and numpy compute every decay in float64 and round it to float32 once; their exp (libm vs
#: numpy's SIMD loop) may differ by one float64 ulp, which changes the float32 score with probability
#: ~2^-29. Measured: bit-equal on AVX-512 and on AVX2 (qemu -cpu EPYC-Rome); 1e-5 (80 float32 ulps
#: at 1.0) only absorbs such a rare ulp. The keep lists are compared exactly.
SCORE_ATOL = 1e-5


def both_backends(native_ext, boxes, scores, method, **kw):
    """(numpy result, Cython result) of soft_nms with the same arguments."""
    p = dict(iou_threshold=0.3, sigma=0.5, score_threshold=0.001) | kw
    ref = postprocess_numpy.soft_nms(boxes, scores, method, **p)
    nat = native_ext.soft_nms(boxes, scores, METHOD_CODES[method], p["iou_threshold"], p["sigma"], p["score_threshold"])
    return ref, nat


@pytest.mark.parametrize("impl", ["numpy", "cython"])
@pytest.mark.parametrize(
    "method, expected_second",
    [("linear", 0.8 * (1 - 1 / 3)), ("gaussian", 0.8 * math.exp(-(1 / 9) / 0.5))],
)
def test_overlapping_pair_decays_second_score_by_hand_value(native_ext, impl, method, expected_second):
    ref, nat = both_backends(native_ext, PAIR, PAIR_SCORES, method)
    keep, scores = ref if impl == "numpy" else nat
    np.testing.assert_array_equal(keep, [0, 1])
    np.testing.assert_allclose(scores, [0.9, expected_second], rtol=1e-6)  # float32 inputs and result: ~1e-7 relative


def test_linear_leaves_boxes_at_or_below_iou_threshold_untouched(native_ext):
    for keep, scores in both_backends(native_ext, PAIR, PAIR_SCORES, "linear", iou_threshold=0.34):
        np.testing.assert_array_equal(keep, [0, 1])
        np.testing.assert_array_equal(scores, PAIR_SCORES)


def test_hard_is_classic_nms(native_ext):
    # A overlaps B (IoU 1/3), B overlaps C, A and C are disjoint: classic NMS keeps A and C.
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [11, 0, 21, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    for keep, kept_scores in both_backends(native_ext, boxes, scores, "hard"):
        np.testing.assert_array_equal(keep, [0, 2])
        np.testing.assert_array_equal(kept_scores, scores[[0, 2]])
    np.testing.assert_array_equal(postprocess_numpy.nms(boxes, scores, 0.3), [0, 2])
    np.testing.assert_array_equal(native_ext.nms(boxes, scores, 0.3), [0, 2])


@pytest.mark.parametrize("seed", range(20))
def test_hard_soft_nms_equals_greedy_nms_when_all_scores_pass(native_ext, seed):
    boxes, scores = random_nms_case(seed)
    scores = scores + np.float32(0.01)  # all above score_threshold, so only IoU suppresses
    keep, _ = native_ext.soft_nms(boxes, scores, METHOD_CODES["hard"], 0.3, 0.5, 0.001)
    np.testing.assert_array_equal(keep, native_ext.nms(boxes, scores, 0.3))


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_exact_ties_pick_the_lowest_index_first(native_ext, method):
    # Disjoint boxes, scores tied at 0.9 for indices 1 and 3, then two identical boxes tied.
    boxes = np.array(
        [[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1], [8, 0, 9, 1], [8, 0, 9, 1]], dtype=np.float32
    )
    scores = np.array([0.5, 0.9, 0.2, 0.9, 0.7, 0.7], dtype=np.float32)
    for keep, _ in both_backends(native_ext, boxes, scores, method):
        assert list(keep[:4]) == [1, 3, 4, 0]  # 4 before its duplicate 5 (decayed or dropped)
    np.testing.assert_array_equal(native_ext.nms(boxes, scores, 0.3), [1, 3, 4, 0, 2])


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_empty_input_returns_empty_arrays_of_the_right_dtype(native_ext, method):
    boxes, scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    for keep, kept_scores in [*both_backends(native_ext, boxes, scores, method), native.soft_nms(boxes, scores, method)]:
        assert keep.shape == (0,) and keep.dtype == np.int64
        assert kept_scores.shape == (0,) and kept_scores.dtype == np.float32
    assert native.nms(boxes, scores).dtype == np.int64 and native.nms(boxes, scores).shape == (0,)


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_all_scores_below_threshold_keep_nothing(native_ext, method):
    for keep, kept_scores in both_backends(native_ext, PAIR, np.float32([0.0005, 0.0009]), method):
        assert keep.size == 0 and kept_scores.size == 0


def test_score_exactly_at_threshold_is_kept(native_ext):
    scores = np.float32([0.001, 0.0])
    far = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], dtype=np.float32)
    for keep, _ in both_backends(native_ext, far, scores, "linear"):
        np.testing.assert_array_equal(keep, [0])


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_single_box_is_returned_with_its_score(native_ext, method):
    for keep, kept_scores in both_backends(native_ext, PAIR[:1], PAIR_SCORES[:1], method):
        np.testing.assert_array_equal(keep, [0])
        np.testing.assert_array_equal(kept_scores, PAIR_SCORES[:1])


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_callers_arrays_are_not_modified(native_ext, method):
    boxes, scores = random_nms_case(3)
    boxes_before, scores_before = boxes.copy(), scores.copy()
    both_backends(native_ext, boxes, scores, method)
    native.soft_nms(boxes, scores, method)
    native_ext.nms(boxes, scores, 0.3)
    np.testing.assert_array_equal(boxes, boxes_before)
    np.testing.assert_array_equal(scores, scores_before)


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_keep_is_ordered_by_emitted_score_descending(native_ext, method):
    for seed in range(10):
        boxes, scores = random_nms_case(seed)
        for keep, kept_scores in both_backends(native_ext, boxes, scores, method):
            assert np.all(np.diff(kept_scores) <= 0)
            assert len(np.unique(keep)) == len(keep)


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
@pytest.mark.parametrize("seed", range(40))
def test_cython_matches_numpy_reference_on_random_cases(native_ext, method, seed):
    boxes, scores = random_nms_case(1000 + seed)
    (ref_keep, ref_scores), (nat_keep, nat_scores) = both_backends(native_ext, boxes, scores, method)
    np.testing.assert_array_equal(nat_keep, ref_keep)
    np.testing.assert_allclose(nat_scores, ref_scores, rtol=0, atol=SCORE_ATOL)


@pytest.mark.parametrize("seed", range(20))
def test_cython_nms_matches_numpy_reference(native_ext, seed):
    boxes, scores = random_nms_case(2000 + seed)
    np.testing.assert_array_equal(native_ext.nms(boxes, scores, 0.5), postprocess_numpy.nms(boxes, scores, 0.5))


def test_wrapper_accepts_float64_and_non_contiguous_inputs(native_ext):
    boxes, scores = random_nms_case(7)
    wide = np.zeros((len(boxes), 8), np.float64)
    wide[:, ::2] = boxes  # a strided float64 view
    keep, kept = native.soft_nms(wide[:, ::2], scores.astype(np.float64), "gaussian")
    ref_keep, ref_scores = native_ext.soft_nms(boxes, scores, 1, 0.3, 0.5, 0.001)
    np.testing.assert_array_equal(keep, ref_keep)
    np.testing.assert_array_equal(kept, ref_scores)


@pytest.mark.parametrize(
    "boxes, scores, kw, message",
    [
        (np.zeros((3, 5)), np.zeros(3), {}, r"boxes must have shape \(N, 4\)"),
        (np.zeros((3, 4)), np.zeros((3, 1)), {}, r"scores must have shape \(N\)"),
        (np.zeros((3, 4)), np.zeros(2), {}, "scores has 2 rows but there are 3"),
        (np.zeros((3, 4)), np.zeros(3), {"method": "soft"}, "method must be one of"),
        (np.zeros((3, 4)), np.zeros(3), {"method": "gaussian", "sigma": 0.0}, "sigma must be > 0"),
        (np.zeros((3, 4), dtype=object), np.zeros(3), {}, "real numeric array"),
    ],
)
def test_wrapper_rejects_bad_inputs_with_clear_messages(boxes, scores, kw, message):
    with pytest.raises(ValueError, match=message):
        native.soft_nms(boxes, scores, **kw)


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
@pytest.mark.parametrize(
    "params",
    [
        dict(iou_threshold=0.5, sigma=0.2, score_threshold=0.05),
        dict(iou_threshold=0.0, sigma=2.0, score_threshold=0.0),
        dict(iou_threshold=-0.1, sigma=0.5, score_threshold=0.001),  # hard: zeroes even disjoint boxes
    ],
)
def test_cython_matches_numpy_reference_with_other_parameters(native_ext, method, params):
    for seed in range(10):
        boxes, scores = random_nms_case(3000 + seed)
        (ref_keep, ref_scores), (nat_keep, nat_scores) = both_backends(native_ext, boxes, scores, method, **params)
        np.testing.assert_array_equal(nat_keep, ref_keep)
        np.testing.assert_allclose(nat_scores, ref_scores, rtol=0, atol=SCORE_ATOL)
