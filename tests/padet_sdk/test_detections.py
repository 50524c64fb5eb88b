"""The Detections container: views over one packed array, iteration, serialisation, drawing."""
from __future__ import annotations

import json

import numpy as np

from padet_sdk.detections import DETECTION_DTYPE, Detection, Detections, Timing


def _dets() -> Detections:
    data = np.zeros(3, DETECTION_DTYPE)
    data["box"] = [[10, 20, 50, 60], [0, 0, 5, 5], [30.5, 40.25, 99, 79]]
    data["score"] = [0.9, 0.5, 0.25]
    data["class_id"] = [1, 0, 1]
    data["anchor"] = [7, 3, 11]
    return Detections(data, ("cat", "dog"), (80, 100), Timing(1.0, 2.0, 0.5))


def test_named_fields_are_views_of_the_packed_array():
    d = _dets()
    for view in (d.boxes, d.scores, d.class_ids, d.anchor_ids):
        assert np.shares_memory(view, d.data)
    assert d.boxes.shape == (3, 4) and d.boxes.dtype == np.float32
    assert d.class_ids.dtype == np.int32
    assert d.labels == ["dog", "cat", "dog"]


def test_iteration_yields_small_records():
    d = _dets()
    items = list(d)
    assert len(d) == 3 and len(items) == 3
    assert items[0] == Detection((10.0, 20.0, 50.0, 60.0), items[0].score, 1, "dog")
    assert abs(items[0].score - 0.9) < 1e-6  # float32 0.9 is 2.4e-8 off
    assert d[2].class_name == "dog"


def test_to_dict_and_json_round_trip():
    d = _dets()
    doc = json.loads(d.to_json())
    assert doc == d.to_dict()
    assert doc["image_size"] == {"height": 80, "width": 100}
    assert doc["detections"][2] == {"box": [30.5, 40.25, 99.0, 79.0], "score": 0.25, "class_id": 1, "class_name": "dog"}
    assert doc["timing"]["total_ms"] == 3.5


def test_filter_keeps_min_score_and_classes():
    d = _dets()
    assert len(d.filter(0.3)) == 2
    assert d.filter(class_ids=[0]).labels == ["cat"]


def test_draw_copies_by_default_and_draws_in_place_on_request():
    d = _dets()
    frame = np.zeros((80, 100, 3), np.uint8)
    out = d.draw(frame)
    assert out is not frame and frame.max() == 0 and out.max() > 0
    assert out[20, 30].any()  # top edge of the first box
    same = d.draw(frame, copy=False)
    assert same is frame and frame.max() > 0


def test_empty_detections():
    e = Detections.empty(("a",), (10, 10))
    assert len(e) == 0 and list(e) == [] and e.to_dict()["detections"] == []
    assert e.boxes.shape == (0, 4)
