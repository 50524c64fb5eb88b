import torch

from training.matcher import Match, ignore_easy_negatives, match


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_iou_band_between_thresholds_is_ignored():
    gt = _boxes([0, 0, 10, 10])
    anchors = _boxes(
        [0, 0, 10, 10],  # IoU 1.0 → positive
        [0, 0, 10, 6],  # IoU 0.6 → positive
        [0, 0, 10, 4],  # IoU 0.4 → ignored
        [0, 0, 10, 2],  # IoU 0.2 → negative
        [50, 50, 60, 60],  # IoU 0 → negative
    )
    m = match(gt, anchors, 0.5, 0.3)
    assert m.tolist() == [0, 0, Match.IGNORE, Match.NEGATIVE, Match.NEGATIVE]


def test_best_anchor_is_forced_positive_even_below_the_positive_threshold():
    gt = _boxes([0, 0, 10, 10], [100, 100, 110, 110])
    anchors = _boxes([0, 0, 10, 10], [100, 100, 104, 104])  # second gt's best IoU is 0.16
    m = match(gt, anchors, 0.5, 0.3)
    assert m.tolist() == [0, 1]


def test_positive_takes_the_ground_truth_with_the_highest_iou():
    gt = _boxes([0, 0, 10, 10], [2, 0, 12, 10])
    anchors = _boxes([0, 0, 10, 10], [3, 0, 13, 10], [1, 0, 11, 10])
    m = match(gt, anchors, 0.5, 0.3)
    assert m.tolist()[:2] == [0, 1]


def test_no_ground_truth_makes_every_anchor_negative():
    m = match(torch.zeros(0, 4), _boxes([0, 0, 1, 1], [1, 1, 2, 2]))
    assert m.tolist() == [Match.NEGATIVE, Match.NEGATIVE]


def test_theta_rule_ignores_only_negatives_with_low_apm_probability():
    m = torch.tensor([0, Match.NEGATIVE, Match.NEGATIVE, Match.IGNORE, 1])
    p = torch.tensor([0.001, 0.001, 0.5, 0.001, 0.001])
    out = ignore_easy_negatives(m, p, theta=0.01)
    # positives stay positive whatever their APM score; the confident negative stays negative
    assert out.tolist() == [0, Match.IGNORE, Match.NEGATIVE, Match.IGNORE, 1]
