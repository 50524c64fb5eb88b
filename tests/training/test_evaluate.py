"""Evaluation: pycocotools COCO AP on our results JSON, hand-written VOC mAP on hand cases."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from training import build_model
from training.checkpoint import save_checkpoint
from training.evaluate import (
    COCO_METRICS,
    DataError,
    coco_eval,
    detections_to_coco,
    evaluate,
    main,
    open_dataset,
    voc_ap,
    voc_map,
)


def _gt_as_detections(gt: dict) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 1.0}
            for a in gt["annotations"]]  # fmt: skip


def test_ground_truth_given_as_detections_scores_ap_1(tiny_synth):
    gt_path = tiny_synth / "annotations" / "instances_val.json"
    dets = _gt_as_detections(json.loads(gt_path.read_text()))
    m = coco_eval(gt_path, dets)
    assert set(m) == set(COCO_METRICS)
    assert m["AP"] == m["AP50"] == m["AP75"] == pytest.approx(1.0)


def test_shifted_detections_score_exactly_what_pycocotools_gives_on_the_same_files(tiny_synth, tmp_path):
    gt_path = tiny_synth / "annotations" / "instances_val.json"
    rng = np.random.default_rng(0)
    dets = _gt_as_detections(json.loads(gt_path.read_text()))
    for d in dets:
        x, y, w, h = d["bbox"]
        d["bbox"] = [x + float(rng.uniform(-0.25, 0.25)) * w, y + float(rng.uniform(-0.25, 0.25)) * h, w, h]
        d["score"] = float(rng.uniform(0.1, 1.0))
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps(dets))
    ours = coco_eval(str(gt_path), det_path)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(str(det_path)), "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert [ours[k] for k in COCO_METRICS] == [float(v) for v in ev.stats]
    assert 0.0 < ours["AP"] < ours["AP50"] < 1.0


def test_no_detections_score_zero_instead_of_crashing_pycocotools(tiny_synth):
    assert coco_eval(tiny_synth / "annotations" / "instances_val.json", [])["AP50"] == 0.0


# --------------------------------------------------------------------------- VOC mAP by hand
def _voc_gt() -> dict:
    """Two images, one class; image 2 also has a difficult (iscrowd) object."""
    ann = [(1, [0, 0, 10, 10], 0), (2, [0, 0, 10, 10], 0), (2, [20, 20, 10, 10], 1)]
    return {
        "info": {},
        "images": [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.jpg"} for i in (1, 2)],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": 1, "bbox": b, "area": 100, "iscrowd": c}
                        for k, (i, b, c) in enumerate(ann)],  # fmt: skip
        "categories": [{"id": 1, "name": "thing"}],
    }


def test_voc_map_on_a_hand_case_11_point_and_area():
    """By score: TP (0.9), detection on a difficult object (0.85, ignored), FP (0.8), duplicate of
    a matched object (0.75, FP), TP (0.7). npos = 2 (the difficult one does not count).
    recall 0.5, 0.5, 0.5, 1.0; precision 1, 1/2, 1/3, 1/2.
    VOC07: recall ≥ 0..0.5 (6 points) → 1; 0.6..1.0 (5 points) → 1/2: (6 + 2.5) / 11.
    Area: 0.5 · 1 + 0.5 · 1/2 = 0.75."""
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.85},
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 9], "score": 0.75},
        {"image_id": 2, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.7},
    ]
    assert voc_map(_voc_gt(), dets, use_07_metric=True)["mAP"] == pytest.approx(8.5 / 11)
    assert voc_map(_voc_gt(), dets, use_07_metric=False)["mAP"] == pytest.approx(0.75)
    # IoU of [1, 0, 10, 10] with [0, 0, 10, 10] is 9/11 > 0.5, but not above 0.85
    assert voc_map(_voc_gt(), dets, iou_threshold=0.85)["mAP"] < 0.6


def test_voc_ap_of_a_perfect_curve_is_one_and_of_no_recall_is_zero():
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0]), True) == pytest.approx(1.0)
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0]), False) == pytest.approx(1.0)
    assert voc_ap(np.array([0.0]), np.array([0.0]), True) == 0.0


# --------------------------------------------------------------------------- running a model
def test_detections_map_labels_back_to_coco_category_ids_as_xywh_pixels():
    res = [{"boxes": torch.tensor([[10.0, 20.0, 40.0, 60.0]]), "scores": torch.tensor([0.5]), "labels": torch.tensor([2])}]
    out = detections_to_coco(res, [7], {1: 11, 2: 42})
    assert out == [{"image_id": 7, "category_id": 42, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.5}]


def test_evaluate_runs_a_model_and_writes_results_with_sparse_category_ids_in_image_pixels(tiny_synth, tmp_path):
    """Category ids 10, 20, ... (not 1..C) and a network input (96) smaller than the images (128)."""
    gt = json.loads((tiny_synth / "annotations" / "instances_val.json").read_text())
    for c in gt["categories"]:
        c["id"] *= 10
    for a in gt["annotations"]:
        a["category_id"] *= 10
    root = tmp_path / "sparse"
    (root / "annotations").mkdir(parents=True)
    (root / "val").symlink_to(tiny_synth / "val")
    (root / "annotations" / "instances_val.json").write_text(json.dumps(gt))
    torch.manual_seed(0)
    model = build_model("vgg16_384", 6, width=0.125, input_size=96)
    # an untrained network scores every class ~prior/C: take its top boxes without thresholds
    loose = {"conf": 0.0, "theta": 0.0, "pre_nms_top_k": 100, "max_det": 30}
    m = evaluate(model, open_dataset(root, "val"), results_json=tmp_path / "dets.json", progress=False, postprocess=loose)
    assert set(COCO_METRICS) <= set(m) and m["num_detections"] == 4 * 30
    dets = json.loads((tmp_path / "dets.json").read_text())
    assert len(dets) == m["num_detections"]
    assert {d["category_id"] for d in dets} <= {10, 20, 30, 40, 50, 60}
    boxes = np.array([d["bbox"] for d in dets])
    assert boxes.min() >= 0 and (boxes[:, 0] + boxes[:, 2]).max() <= 128 + 1e-3
    assert (boxes[:, 0] + boxes[:, 2]).max() > 96  # scaled to the 128-pixel image, not the 96 input
    assert {d["image_id"] for d in dets} <= {im["id"] for im in gt["images"]}


def _write_voc(root: Path, n: int = 2) -> None:
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(root / "JPEGImages" / f"im{i}.jpg"), np.full((80, 100, 3), 40 * i, np.uint8))
        (root / "Annotations" / f"im{i}.xml").write_text(
            "<annotation><size><width>100</width><height>80</height></size>"
            "<object><name>dog</name><difficult>0</difficult>"
            "<bndbox><xmin>11</xmin><ymin>6</ymin><xmax>60</xmax><ymax>50</ymax></bndbox></object>"
            "</annotation>"
        )
    (root / "ImageSets" / "Main" / "test.txt").write_text("".join(f"im{i}\n" for i in range(n)))


def test_cli_evaluates_a_checkpoint_on_voc_data_with_voc07_and_area_map(tmp_path, capsys):
    _write_voc(tmp_path / "voc")
    torch.manual_seed(0)
    model = build_model("vgg16_384", 20, width=0.125, input_size=64)
    ckpt = save_checkpoint({"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": ["x"] * 20,
                            "epoch": 0}, tmp_path / "run")  # fmt: skip
    code = main(["--checkpoint", str(ckpt), "--data", str(tmp_path / "voc"), "--format", "voc", "--quiet",
                 "--metrics-json", str(tmp_path / "m.json")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "AP50" in out and "VOC07_mAP" in out
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0.0 <= m["VOC07_mAP"] <= 1.0 and 0.0 <= m["VOC_mAP"] <= 1.0
    assert (tmp_path / "run" / "last_test_detections.json").is_file()


def test_missing_split_annotations_are_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="instances_val.json"):
        open_dataset(tmp_path, "val")
