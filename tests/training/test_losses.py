import math

import torch
import torch.nn.functional as F

from training import make_config
from training.box_coder import encode, xyxy_to_cxcywh
from training.losses import IGNORE_INDEX, assign_targets, padet_loss
from training.model import PADetOutputs

# Four hand-made anchors (cx, cy, w, h); ground truth sits exactly on anchor 0.
ANCHORS = torch.tensor(
    [[0.25, 0.25, 0.5, 0.5], [0.25, 0.25, 0.5, 0.25], [0.75, 0.75, 0.2, 0.2], [0.35, 0.35, 0.5, 0.5]]
)
GT = [{"boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5]]), "labels": torch.tensor([2])}]
CFG = make_config("vgg16_384", 2, input_size=192, width=0.125)


def _outputs(apm_logits=None, apm_deltas=None, cls=None, det=None):
    n = len(ANCHORS)
    return PADetOutputs(
        apm_logits=torch.zeros(1, n) if apm_logits is None else apm_logits,
        apm_deltas=torch.zeros(1, n, 4) if apm_deltas is None else apm_deltas,
        cls_logits=torch.zeros(1, n, 3) if cls is None else cls,
        det_deltas=torch.zeros(1, n, 4) if det is None else det,
    )


def test_loss_is_the_papers_formula_on_a_hand_made_case():
    """Hand values: float32 sums of a few terms against float64 maths, so rel_tol 1e-5 (~80 ulps)."""
    out = _outputs()
    parts = padet_loss(out, ANCHORS, GT, CFG)
    # IoUs with the GT: anchor0 1.0 (pos), anchor1 0.5 (pos), anchor2 0 (neg), anchor3 0.16/0.34 ≈ 0.47 (ignored)
    n = 2.0
    bce = 3 * math.log(2)  # 2 positives + 1 negative at p = 0.5
    assert math.isclose(float(parts["apm_cls"]), bce / n, rel_tol=1e-5)
    tgt1 = encode(xyxy_to_cxcywh(GT[0]["boxes"]), ANCHORS[1:2])
    l1 = F.smooth_l1_loss(torch.zeros(1, 4), tgt1, reduction="sum")  # anchor0's target is 0
    assert math.isclose(float(parts["apm_reg"]), float(l1) / n, rel_tol=1e-5)
    # detection: promoted = initial (zero deltas); θ rule: p = 0.5 ≥ 0.01 keeps the negative
    ce = 3 * math.log(3)
    assert math.isclose(float(parts["det_cls"]), ce / n, rel_tol=1e-5)
    assert math.isclose(float(parts["det_reg"]), float(l1) / n, rel_tol=1e-5)
    total = parts["apm_cls"] + parts["apm_reg"] + parts["det_cls"] + parts["det_reg"]
    assert float(parts["total"]) == float(total)  # the same float32 sum in the same order


def test_theta_rule_removes_easy_negatives_from_the_detection_loss():
    logits = torch.tensor([[5.0, 5.0, -10.0, 5.0]])  # anchor2 is an easy negative (p < 0.01)
    t = assign_targets(_outputs(apm_logits=logits), ANCHORS, GT, CFG)
    assert t.det_labels[0].tolist() == [2, 2, IGNORE_INDEX, IGNORE_INDEX]


def test_detection_matches_the_promoted_anchors():
    # anchor2 (far away) is promoted onto the ground truth by its APM deltas
    target = encode(xyxy_to_cxcywh(GT[0]["boxes"]), ANCHORS[2:3])
    deltas = torch.zeros(1, 4, 4)
    deltas[0, 2] = target[0]
    t = assign_targets(_outputs(apm_deltas=deltas), ANCHORS, GT, CFG)
    assert t.det_labels[0, 2] == 2
    assert t.apm_matches[0, 2] < 0  # while the APM still sees it as a negative


def test_zero_positives_gives_a_finite_loss():
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    parts = padet_loss(_outputs(), ANCHORS, empty, CFG)
    for k in ("apm_cls", "apm_reg", "det_cls", "det_reg", "total"):
        assert torch.isfinite(parts[k]), k
    assert float(parts["apm_reg"]) == 0.0 and float(parts["det_reg"]) == 0.0
    # N is clamped to 1: the BCE of 4 negatives at p = 0.5 is 4·ln 2
    assert math.isclose(float(parts["apm_cls"]), 4 * math.log(2), rel_tol=1e-5)


def test_ohem_keeps_three_negatives_per_positive():
    cfg = CFG.replace(neg_pos_ratio=1.0)
    cls = torch.zeros(1, 4, 3)
    cls[0, 2, 0] = -5.0  # the only negative is hard
    base = padet_loss(_outputs(cls=cls), ANCHORS, GT, CFG)
    ohem = padet_loss(_outputs(cls=cls), ANCHORS, GT, cfg)
    # two positives → up to two negatives kept; there is one, so OHEM changes nothing here
    assert float(base["det_cls"]) == float(ohem["det_cls"])  # mask of ones: the same sum, exactly
    cfg0 = CFG.replace(neg_pos_ratio=0.0)
    none = padet_loss(_outputs(cls=cls), ANCHORS, GT, cfg0)
    assert float(none["det_cls"]) < float(base["det_cls"])


def test_loss_without_apm_has_only_detection_parts():
    cfg = CFG.replace(use_apm_score=False, use_apm_reg=False, fam="none")
    out = PADetOutputs(None, None, torch.zeros(1, 4, 3), torch.zeros(1, 4, 4))
    parts = padet_loss(out, ANCHORS, GT, cfg)
    assert "apm_cls" not in parts and torch.isfinite(parts["total"])
