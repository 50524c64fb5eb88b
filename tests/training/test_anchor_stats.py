"""Anchor statistics (paper Fig. 1/2): the designs follow the training rule; the CLI's outputs."""
from __future__ import annotations

import json

import pytest
import torch

from training import build_model
from training.anchor_stats import DESIGNS, IOU_BINS, anchor_stats, main
from training.box_coder import cxcywh_to_xyxy, decode
from training.checkpoint import save_checkpoint
from training.evaluate import open_dataset
from training.matcher import Match, ignore_easy_negatives, match


def _model(**over):
    torch.manual_seed(0)
    return build_model("vgg16_384", 6, width=0.125, input_size=128, **over)


def _set_apm(model, score_bias=None, zero_reg=False):
    with torch.no_grad():
        for a in model.apm:
            if score_bias is not None:
                a.score.weight.zero_()
                a.score.bias.fill_(score_bias)
            if zero_reg:
                a.reg.weight.zero_()
                a.reg.bias.zero_()
    return model


@pytest.fixture(scope="module")
def val(tiny_synth):
    return open_dataset(tiny_synth, "val")


def test_designs_relate_as_the_training_rule_says(val):
    """Small random APM deltas move anchors a little; the θ rule only removes negatives."""
    model = _model()
    with torch.no_grad():
        for a in model.apm:
            a.reg.weight.normal_(std=0.05)
    s = anchor_stats(model, val, progress=False)
    d = s["designs"]
    assert s["images"] == 4 and s["num_anchors"] == model.anchors.shape[0] and list(d) == list(DESIGNS)
    assert d["APM_C"]["positives"] == d["initial"]["positives"] > 0
    assert d["APM_C"]["negatives"] <= d["initial"]["negatives"]
    assert d["APM_CR"]["positives"] == d["APM_R"]["positives"] > 0
    assert d["APM_CR"]["negatives"] <= d["APM_R"]["negatives"]
    assert d["APM_R"]["positives"] != d["initial"]["positives"] or d["APM_R"]["negatives"] != d["initial"]["negatives"]
    assert s["iou_bins"] == list(IOU_BINS)
    assert sum(s["iou_hist"]["initial"]) == pytest.approx(d["initial"]["positives"])
    assert sum(s["iou_hist"]["promoted"]) == pytest.approx(d["APM_R"]["positives"])


def test_apm_cr_counts_are_the_detection_targets_of_training(val):
    """APM_CR (taken from assign_targets) equals θ rule ∘ matching of the promoted anchors."""
    model = _model().eval()
    image, target = val[0][0], val[0][1]
    s = anchor_stats(model, val, num_images=1, progress=False)
    from training.data import build_eval_transform

    x, t = build_eval_transform(128)(image, target)
    with torch.no_grad():
        out = model(x[None])
    promoted = cxcywh_to_xyxy(decode(out.apm_deltas[0], model.anchors, model.cfg.anchors.variances))
    m = ignore_easy_negatives(match(t["boxes"], promoted), torch.sigmoid(out.apm_logits[0]), model.cfg.postprocess.theta)
    assert s["designs"]["APM_CR"]["positives"] == int((m >= 0).sum())
    assert s["designs"]["APM_CR"]["negatives"] == int((m == Match.NEGATIVE).sum())


def test_zero_apm_deltas_promote_nothing_and_the_theta_rule_follows_the_apm_score(val):
    zero = anchor_stats(_set_apm(_model(), score_bias=10.0, zero_reg=True), val, progress=False)
    d = zero["designs"]
    assert d["APM_R"] == d["initial"]  # promoted anchors == initial anchors
    assert zero["iou_hist"]["promoted"] == zero["iou_hist"]["initial"]
    assert d["APM_C"] == d["initial"]  # every anchor confidently "positive": no negative is ignored
    low = anchor_stats(_set_apm(_model(), score_bias=-10.0, zero_reg=True), val, progress=False)["designs"]
    assert low["APM_C"]["negatives"] == low["APM_CR"]["negatives"] == 0  # every negative is easy


def test_designs_the_network_lacks_are_reported_as_missing(val):
    s = anchor_stats(_model(use_apm_score=False), val, progress=False)
    assert s["designs"]["APM_C"] is None and s["designs"]["APM_CR"] is None
    assert s["designs"]["APM_R"] is not None


def test_cli_prints_the_table_and_writes_json_and_png(val, tiny_synth, tmp_path, capsys):
    model = _model()
    ckpt = save_checkpoint({"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": val.class_names,
                            "epoch": 0}, tmp_path)  # fmt: skip
    assert main(["--checkpoint", str(ckpt), "--data", str(tiny_synth), "--images", "6", "--quiet"]) == 0
    out = capsys.readouterr().out
    for word in ("initial", "APM_C", "APM_R", "APM_CR", "0.9-1.0", "pos:neg"):
        assert word in out
    stats = json.loads((tmp_path / "anchor_stats.json").read_text())
    assert stats["images"] == 6 and set(stats["designs"]) == set(DESIGNS)
    assert set(stats["designs"]["initial"]) == {"positives", "negatives", "neg_per_pos"}
    assert len(stats["iou_hist"]["initial"]) == len(stats["iou_hist"]["promoted"]) == len(IOU_BINS)
    assert (tmp_path / "anchor_stats.png").stat().st_size > 1000
