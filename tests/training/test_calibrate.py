"""training.calibrate: the default score threshold is the best-F1 one on held-out data."""
from __future__ import annotations

from training.calibrate import best_f1_threshold, match_detections


def _gt(objects):
    anns = [{"id": i + 1, "image_id": im, "category_id": c, "bbox": b, "iscrowd": crowd}
            for i, (im, c, b, crowd) in enumerate(objects)]  # fmt: skip
    return {"images": [{"id": 1}, {"id": 2}], "annotations": anns, "categories": [{"id": 1}, {"id": 2}]}


def _det(im, c, b, s):
    return {"image_id": im, "category_id": c, "bbox": b, "score": s}


def test_matching_counts_each_object_once_per_class_and_ignores_crowd():
    gt = _gt([(1, 1, [0, 0, 10, 10], 0), (1, 2, [20, 20, 10, 10], 0), (2, 1, [0, 0, 10, 10], 1)])
    dets = [
        _det(1, 1, [0, 0, 10, 10], 0.9),  # TP
        _det(1, 1, [1, 0, 10, 10], 0.8),  # duplicate of the same object: FP
        _det(1, 1, [20, 20, 10, 10], 0.7),  # right place, wrong class: FP
        _det(2, 1, [0, 0, 10, 10], 0.6),  # on a crowd region: ignored
    ]
    scores, tp, n = match_detections(gt, dets)
    assert n == 2
    assert sorted(zip(scores.tolist(), tp.tolist())) == [(0.7, False), (0.8, False), (0.9, True)]


def test_best_f1_threshold_sits_between_the_true_and_the_false_scores():
    # 10 objects found with scores 0.6..0.915, 10 false alarms at 0.10..0.37: any threshold in (0.37, 0.6]
    # gives F1 = 1; the grid's first such value is 0.38
    objects = [(1, 1, [30 * i, 0, 20, 20], 0) for i in range(10)]
    dets = [_det(1, 1, [30 * i, 0, 20, 20], 0.6 + 0.035 * i) for i in range(10)]
    dets += [_det(1, 1, [30 * i, 100, 20, 20], 0.1 + 0.03 * i) for i in range(10)]
    best = best_f1_threshold(_gt(objects), dets)
    assert best["f1"] == 1.0 and best["precision"] == 1.0 and best["recall"] == 1.0
    assert 0.37 < best["conf"] <= 0.6
    # one object only found at 0.3: keeping it costs more false alarms than it gains
    dets.append(_det(1, 2, [0, 200, 20, 20], 0.3))
    best = best_f1_threshold(_gt(objects + [(1, 2, [0, 200, 20, 20], 0)]), dets)
    assert 0.37 < best["conf"] <= 0.6 and abs(best["recall"] - 10 / 11) < 1e-9
