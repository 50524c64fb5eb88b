import math

import torch

from training import build_model
from training.box_coder import encode
from training.nms import soft_nms
from training.postprocess import postprocess_single

B = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 8], [20, 20, 30, 30]], dtype=torch.float32)


def test_soft_nms_linear_decays_overlapping_box_by_one_minus_iou():
    keep, s = soft_nms(B, torch.tensor([0.9, 0.8, 0.7]), "linear", 0.3)
    # IoU(0, 1) = 80/100 = 0.8 > 0.3 → 0.8·(1-0.8) = 0.16; box 2 untouched
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(s, torch.tensor([0.9, 0.7, 0.16]))


def test_soft_nms_gaussian_decays_by_exp_minus_iou_squared_over_sigma():
    keep, s = soft_nms(B, torch.tensor([0.9, 0.8, 0.7]), "gaussian", sigma=0.5)
    assert keep.tolist() == [0, 2, 1]
    assert math.isclose(float(s[2]), 0.8 * math.exp(-0.64 / 0.5), rel_tol=1e-6)


def test_soft_nms_hard_is_classic_nms():
    keep, s = soft_nms(B, torch.tensor([0.9, 0.8, 0.7]), "hard", 0.3)
    assert keep.tolist() == [0, 2]


def test_soft_nms_ties_pick_the_lowest_index_and_empty_input_is_fine():
    keep, _ = soft_nms(B[[2, 0]], torch.tensor([0.5, 0.5]), "linear")  # disjoint, tied
    assert keep.tolist() == [0, 1]
    keep, s = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert keep.numel() == 0 and s.numel() == 0


def test_soft_nms_drops_boxes_below_the_final_threshold():
    keep, _ = soft_nms(B, torch.tensor([0.9, 0.8, 0.0005]), "linear", 0.3, score_threshold=0.001)
    assert 2 not in keep.tolist()


def test_postprocess_decodes_twice_and_filters_by_theta():
    anchors = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]])
    target = torch.tensor([[0.5, 0.5, 0.4, 0.4]])
    apm_deltas = torch.zeros(2, 4)
    apm_deltas[0] = encode(torch.tensor([[0.45, 0.45, 0.3, 0.3]]), anchors[:1])[0]
    promoted0 = torch.tensor([[0.45, 0.45, 0.3, 0.3]])
    det_deltas = torch.zeros(2, 4)
    det_deltas[0] = encode(target, promoted0)[0]
    cls = torch.tensor([[0.1, 0.9], [0.1, 0.9]])
    r = postprocess_single(anchors, torch.tensor([0.5, 0.001]), apm_deltas, cls, det_deltas)
    # anchor 1 is dropped by θ = 0.01; anchor 0 decodes (twice) to the target
    assert r["anchor_idx"].tolist() == [0]
    # float32 encode/decode twice (log, exp): a few ulps of 0.7
    torch.testing.assert_close(r["boxes"], torch.tensor([[0.3, 0.3, 0.7, 0.7]]), atol=1e-5, rtol=0)
    assert r["labels"].tolist() == [1]


def test_postprocess_keeps_top_max_det_and_never_returns_background():
    torch.manual_seed(0)
    model = build_model("vgg16_384", 5, width=0.125, input_size=128, prior_prob=0.5).eval()
    with torch.no_grad():
        dets = model.postprocess(model(torch.randn(1, 3, 128, 128)), max_det=7, conf=0.0)
    assert len(dets[0]["scores"]) == 7
    assert (dets[0]["labels"] >= 1).all()
    assert torch.all(dets[0]["scores"][:-1] >= dets[0]["scores"][1:])
