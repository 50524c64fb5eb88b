"""The Detections container: views over one packed array, iteration, serialisation, drawing."""
from __future__ import annotations

import json

import numpy as np
import pytest

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


# ---- ecosystem-shaped views and indexing (#15) ---------------------------------------------------
def test_mask_slice_and_integer_indexing_give_detections():
    d = _dets()
    high = d[d.scores > 0.3]
    assert isinstance(high, Detections) and len(high) == 2
    assert high.boxes.tolist() == [[10, 20, 50, 60], [0, 0, 5, 5]]
    assert high.class_names == d.class_names and high.image_size == d.image_size and high.timing == d.timing
    assert d[:1].scores.tolist() == [np.float32(0.9)] and len(d[5:]) == 0
    picked = d[[2, 0]]
    assert picked.class_ids.tolist() == [1, 1] and picked.anchor_ids.tolist() == [11, 7]
    assert d[np.array([1])].labels == ["cat"]
    assert len(d[np.zeros(0, np.int64)]) == 0 and len(d[[]]) == 0
    assert isinstance(d[np.int64(1)], Detection) and d[-1].class_name == "dog"  # an int is still one Detection


def test_bad_indices_are_refused():
    d = _dets()
    with pytest.raises(IndexError, match=r"shape \(3,\)"):
        d[np.array([True, False])]
    with pytest.raises(IndexError, match="float"):
        d[np.array([0.5, 1.0])]


def test_xywh_and_normalised_xyxyn_match_hand_computed_values():
    d = _dets()  # frame 100 wide, 80 high
    assert d.xywh.tolist() == [[30, 40, 40, 40], [2.5, 2.5, 5, 5], [64.75, 59.625, 68.5, 38.75]]
    np.testing.assert_allclose(d.xyxyn, [[0.1, 0.25, 0.5, 0.75], [0, 0, 0.05, 0.0625], [0.305, 0.503125, 0.99, 0.9875]], rtol=1e-6)
    assert d.xywh.dtype == np.float32 and d.xyxyn.dtype == np.float32
    assert Detections.empty(("a",), (10, 10)).xywh.shape == (0, 4)


def test_filter_by_class_names_or_ids():
    d = _dets()
    assert d.filter(classes=["dog"]).anchor_ids.tolist() == [7, 11]
    assert d.filter(classes=[0]).labels == ["cat"]
    assert d.filter(0.3, classes=["dog", "cat"]).anchor_ids.tolist() == [7, 3]
    assert d.filter(0.0, [1]).anchor_ids.tolist() == [7, 11]  # the old positional form
    with pytest.raises(ValueError, match="unknown class 'cow'.*cat, dog"):
        d.filter(classes=["cow"])
    with pytest.raises(ValueError, match="unknown class 2"):
        d.filter(classes=[2])


def test_track_ids_are_an_optional_column():
    d = _dets()
    assert d.track_ids is None and d[0].track_id is None and "track_id" not in d.to_dict()["detections"][0]
    t = d.with_track_ids([5, 9, 2])
    assert t.track_ids.tolist() == [5, 9, 2] and np.shares_memory(t.track_ids, t.data)
    assert t.boxes.tolist() == d.boxes.tolist() and t.anchor_ids.tolist() == [7, 3, 11]
    assert t[1] == Detection((0.0, 0.0, 5.0, 5.0), t[1].score, 0, "cat", 9)
    assert t[t.track_ids > 4].track_ids.tolist() == [5, 9]
    assert t.filter(classes=["dog"]).track_ids.tolist() == [5, 2]
    assert [x["track_id"] for x in json.loads(t.to_json())["detections"]] == [5, 9, 2]
    with pytest.raises(ValueError, match="one track id per detection"):
        d.with_track_ids([1, 2])
    assert d.draw(np.zeros((80, 100, 3), np.uint8)).sum() != t.draw(np.zeros((80, 100, 3), np.uint8)).sum()  # "#5 ..." labels


def test_to_supervision_or_a_clear_import_error():
    t = _dets().with_track_ids([5, 9, 2])
    try:
        import supervision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install supervision"):
            t.to_supervision()
        return
    sv = t.to_supervision()
    assert sv.xyxy.tolist() == t.boxes.tolist() and sv.tracker_id.tolist() == [5, 9, 2]
    assert sv.class_id.tolist() == [1, 0, 1] and list(sv.data["class_name"]) == ["dog", "cat", "dog"]


def test_detector_keeps_only_the_requested_classes():
    from padet_sdk import Detector
    from training.data.synth_clip import render_clip_frames

    frame = next(render_clip_frames(1, seed=3))[0]
    with Detector() as det:
        every = det(frame)
        names = sorted(set(every.labels))
        assert len(names) >= 2, names  # the frame shows several classes
        only = det(frame, classes=[names[0]])
        assert len(only) > 0 and set(only.labels) == {names[0]}
        assert only.boxes.tolist() == every.filter(classes=[names[0]]).boxes.tolist()
        narrowed = det.with_options(classes=[names[1]])
        assert set(narrowed(frame).labels) == {names[1]} and set(narrowed.submit(frame).result().labels) == {names[1]}
        assert narrowed(frame, classes=[names[0]]).labels == only.labels  # a call's classes win
        with pytest.raises(ValueError, match="unknown class 'unicorn'"):
            det(frame, classes=["unicorn"])
