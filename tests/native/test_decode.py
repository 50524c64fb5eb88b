"""SSD box decoding: inverse of encoding, the exp clamp, and Cython == numpy bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest

from padet_sdk import boxes as box_coding
from padet_sdk import native


def random_anchors_and_boxes(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) cxcywh anchors and boxes near them (as the matcher would pair them)."""
    rng = np.random.default_rng(seed)
    anchors = np.concatenate([rng.random((n, 2)), rng.uniform(0.02, 1.0, (n, 2))], axis=1)
    boxes = np.concatenate(
        [anchors[:, :2] + rng.normal(0, 0.05, (n, 2)), anchors[:, 2:] * rng.uniform(0.5, 2.0, (n, 2))], axis=1
    )
    return anchors.astype(np.float32), boxes.astype(np.float32)


@pytest.mark.parametrize("variances", [(0.1, 0.2), (0.2, 0.5)])
def test_decode_inverts_encode(variances):
    anchors, boxes = random_anchors_and_boxes(0)
    deltas = box_coding.encode_boxes(boxes, anchors, *variances)
    # float32 log then exp: a few ulps (1e-7 relative); measured max |diff| 7.5e-9, 0.4% of the
    # bound, on AVX-512 and AVX2 (qemu EPYC-Rome)
    np.testing.assert_allclose(box_coding.decode_boxes(deltas, anchors, *variances), boxes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(native.decode_boxes(deltas, anchors, variances), boxes, rtol=1e-5, atol=1e-6)


def test_zero_deltas_decode_to_the_anchors():
    anchors, _ = random_anchors_and_boxes(1)
    np.testing.assert_array_equal(native.decode_boxes(np.zeros_like(anchors), anchors), anchors)


def test_width_and_height_growth_is_clamped_at_log_1000_over_16(native_ext):
    anchors = np.float32([[0.5, 0.5, 0.1, 0.2]] * 3)
    # dw * v1 = 100 * 0.2 = 20 >> CLIP; exactly at CLIP; just below it.
    clip = math.log(1000 / 16)
    dwh = np.float32([100.0, clip / 0.2, 0.9 * clip / 0.2])
    deltas = np.zeros((3, 4), np.float32)
    deltas[:, 2] = deltas[:, 3] = dwh
    for out in (box_coding.decode_boxes(deltas, anchors), native_ext.decode_boxes(deltas, anchors, 0.1, 0.2)):
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out[0, 2:], [0.1 * 62.5, 0.2 * 62.5], rtol=1e-6)  # float32 exp(clip): <= 1 ulp
        np.testing.assert_allclose(out[1, 2:], out[0, 2:], rtol=1e-6)
        assert np.all(out[2, 2:] < out[0, 2:])
    assert native_ext.BBOX_XFORM_CLIP == box_coding.BBOX_XFORM_CLIP == clip


@pytest.mark.parametrize("seed", range(5))
def test_cython_decode_matches_numpy_reference_exactly(native_ext, seed):
    anchors, _ = random_anchors_and_boxes(seed)
    rng = np.random.default_rng(100 + seed)
    deltas = rng.normal(0, 3.0, anchors.shape).astype(np.float32)  # some beyond the clamp
    deltas[::50, 2:] = 80.0
    np.testing.assert_array_equal(
        native_ext.decode_boxes(deltas, anchors, 0.1, 0.2), box_coding.decode_boxes(deltas, anchors, 0.1, 0.2)
    )


def test_wrapper_decodes_float64_and_non_contiguous_inputs(native_ext):
    anchors, boxes = random_anchors_and_boxes(2, n=50)
    deltas = box_coding.encode_boxes(boxes, anchors)
    expected = native_ext.decode_boxes(deltas, anchors, 0.1, 0.2)
    np.testing.assert_array_equal(native.decode_boxes(np.asfortranarray(deltas.astype(np.float64)), anchors), expected)


def test_wrapper_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="deltas has 3 rows but there are 4"):
        native.decode_boxes(np.zeros((3, 4)), np.ones((4, 4)))
