import numpy as np
import pytest

from training import PRESETS, make_config
from training.anchors import generate_anchors


def test_anchor_count_at_384_is_the_papers_18400():
    # 6 anchors on 48², 24², 12², 6² + 4 anchors on 3², 1²:
    # 6·(2304+576+144+36) + 4·(9+1) = 18,360 + 40 = 18,400 (paper §3.1)
    cfg = PRESETS["vgg16_384"]
    assert cfg.feature_sizes == (48, 24, 12, 6, 3, 1)
    assert len(generate_anchors(cfg.feature_sizes, cfg.anchors)) == 18400 == cfg.num_anchors


def test_anchor_count_at_512():
    # 7 levels (64, 32, 16, 8, 4, 2, 1): 6·(4096+1024+256+64) + 4·(16+4+1) = 32,640 + 84 = 32,724
    cfg = PRESETS["vgg16_512"]
    assert cfg.feature_sizes == (64, 32, 16, 8, 4, 2, 1)
    assert len(generate_anchors(cfg.feature_sizes, cfg.anchors)) == 32724 == cfg.num_anchors


def test_resnet_presets_share_the_vgg_anchor_layout():
    assert PRESETS["resnet101_384"].num_anchors == 18400
    assert PRESETS["resnet101_512"].num_anchors == 32724


def test_first_location_anchors_golden_values():
    cfg = PRESETS["vgg16_384"]
    a = generate_anchors(cfg.feature_sizes, cfg.anchors)
    # first location of D1 (48x48): centre (0.5/48, 0.5/48); s1 = 0.07, s2 = 0.15
    c = 0.5 / 48
    s, s2 = 0.07, 0.15
    expected = np.array(
        [
            [c, c, s, s],  # ratio 1
            [c, c, np.sqrt(s * s2), np.sqrt(s * s2)],  # ratio 1'
            [c, c, s * np.sqrt(2), s / np.sqrt(2)],  # 2
            [c, c, s / np.sqrt(2), s * np.sqrt(2)],  # 1/2
            [c, c, s * np.sqrt(3), s / np.sqrt(3)],  # 3
            [c, c, s / np.sqrt(3), s * np.sqrt(3)],  # 1/3
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(a[:6], expected, rtol=1e-6)  # float32 of the same maths: <= 1 ulp (6e-8)


def test_anchor_order_is_row_major_with_anchors_of_a_location_consecutive():
    cfg = PRESETS["vgg16_384"]
    a = generate_anchors(cfg.feature_sizes, cfg.anchors)
    # anchor 6 is the first anchor of location (y=0, x=1) of D1
    np.testing.assert_allclose(a[6, :2], [1.5 / 48, 0.5 / 48], rtol=1e-6)
    # location (y=1, x=0) starts after one full row of 48 locations
    np.testing.assert_allclose(a[48 * 6, :2], [0.5 / 48, 1.5 / 48], rtol=1e-6)
    # the last anchor is on the 1x1 level: centred, ratio 1/2 of s6=0.87
    np.testing.assert_allclose(a[-1], [0.5, 0.5, 0.87 / np.sqrt(2), 0.87 * np.sqrt(2)], rtol=1e-6)


def test_narrow_small_variant_derives_levels_from_the_input_size():
    cfg = make_config("vgg16_384", 3, input_size=192, width=0.125)
    assert cfg.feature_sizes == (24, 12, 6, 3, 2, 1)
    assert cfg.num_anchors == 6 * (24**2 + 12**2 + 6**2 + 3**2) + 4 * (2**2 + 1)


def test_generate_anchors_rejects_a_level_count_mismatch():
    cfg = PRESETS["vgg16_384"]
    with pytest.raises(ValueError, match="feature maps"):
        generate_anchors((48, 24), cfg.anchors)
