"""Result sinks and the analytics stages of stream(): every file parses back to the numbers in
memory, COCO results score the same AP through pycocotools as the in-memory list, and a real
stream with track=True, zones and sinks fills FrameResult and draws it."""
from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest

from padet_sdk import Detector, FrameResult, stream
from padet_sdk.detections import DETECTION_DTYPE, Detections
from padet_sdk.sinks import CSV_COLUMNS, CocoSink, CsvSink, JsonlSink, YoloTxtSink, sink_for, zone_columns
from padet_sdk.zones import LineCounter, PolygonZone

from media import demo_clip


def _result(index: int, n: int, tracked: bool = True) -> FrameResult:
    rng = np.random.default_rng(index)
    data = np.zeros(n, DETECTION_DTYPE)
    xy = rng.uniform(0, 150, (n, 2))
    data["box"] = np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2))], 1)
    data["score"] = np.sort(rng.uniform(0, 1, n))[::-1]
    data["class_id"] = rng.integers(0, 2, n)
    d = Detections(data, ("car", "bike"), (120, 200))
    if tracked:
        d = d.with_track_ids(np.arange(n) + 10 * index + 1)
    r = FrameResult(index, np.zeros((120, 200, 3), np.uint8), d, 1.0, 25.0, 0, time_s=index / 25)
    r.zone_counts = {"z": {"inside": index % 3, "per_class": {"car": index % 3}}, "l": {"in": index, "out": 1, "per_class": {}}}
    return r


def _results():
    return [_result(0, 3), _result(1, 0), _result(2, 5), _result(3, 1)]


def test_jsonl_parses_back_to_the_same_numbers(tmp_path):
    results = _results()
    with JsonlSink(tmp_path / "out.jsonl") as sink:
        for r in results:
            assert sink(r) is r
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [rec["frame"] for rec in lines] == [0, 1, 2, 3] and lines[2]["time"] == 0.08
    for r, rec in zip(results, lines):
        d = r.detections
        assert np.array_equal(np.array([x["box"] for x in rec["detections"]], np.float32).reshape(-1, 4), d.boxes)
        assert np.array_equal(np.array([x["score"] for x in rec["detections"]], np.float32), d.scores)
        assert [x["class_name"] for x in rec["detections"]] == d.labels
        assert [x["track_id"] for x in rec["detections"]] == d.track_ids.tolist()
        assert rec["zones"] == r.zone_counts and rec["image_size"] == {"height": 120, "width": 200}


def test_csv_parses_back_to_the_same_numbers(tmp_path):
    results = [*_results(), _result(4, 2, tracked=False)]
    with CsvSink(tmp_path / "out.csv") as sink:
        for r in results:
            sink(r)
    rows = list(csv.DictReader((tmp_path / "out.csv").open(newline="")))
    assert list(rows[0]) == [*CSV_COLUMNS, "z.inside", "l.in", "l.out"]
    for r in results:
        mine = [row for row in rows if int(row["frame"]) == r.index]
        d = r.detections
        if not len(d):
            assert len(mine) == 1 and mine[0]["class_id"] == "" and int(mine[0]["l.in"]) == r.index
            continue
        assert np.array_equal(np.array([[float(row[k]) for k in ("x1", "y1", "x2", "y2")] for row in mine], np.float32), d.boxes)
        assert np.array_equal(np.array([float(row["score"]) for row in mine], np.float32), d.scores)
        assert [int(row["class_id"]) for row in mine] == d.class_ids.tolist()
        ids = [row["track_id"] for row in mine]
        assert ids == ([""] * len(d) if d.track_ids is None else [str(i) for i in d.track_ids.tolist()])
        assert all(int(row["z.inside"]) == r.index % 3 and float(row["time"]) == r.time_s for row in mine)
    assert zone_columns(results[0].zone_counts) == {"z.inside": 0, "l.in": 0, "l.out": 1}


def test_yolo_txt_one_file_per_frame_normalised(tmp_path):
    results = _results()
    with YoloTxtSink(tmp_path / "labels") as sink:
        for r in results:
            sink(r)
    files = sorted((tmp_path / "labels").iterdir())
    assert [f.name for f in files] == [f"frame_{i:06d}.txt" for i in range(4)]
    assert files[1].read_text() == ""
    for r, f in zip(results, files):
        d = r.detections
        rows = np.array([[float(v) for v in line.split()] for line in f.read_text().splitlines()]).reshape(-1, 7)
        assert rows[:, 0].tolist() == d.class_ids.tolist() and rows[:, 6].tolist() == d.track_ids.tolist()
        assert np.array_equal(rows[:, 1:5].astype(np.float32), d.xywh / np.array([200, 120, 200, 120], np.float32))
        assert np.array_equal(rows[:, 5].astype(np.float32), d.scores)


def test_coco_results_load_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    results = _results()
    with CocoSink(tmp_path / "res.json") as sink:
        for r in results:
            sink(r)
    doc = json.loads((tmp_path / "res.json").read_text())
    assert len(doc) == 9 and {x["image_id"] for x in doc} == {1, 3, 4}  # frame + 1
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in range(1, 5)], "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "bike"}], "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        res = gt.loadRes(str(tmp_path / "res.json"))
    first = results[0].detections
    x1, y1, x2, y2 = (float(v) for v in first.boxes[0])
    assert res.loadAnns(res.getAnnIds(imgIds=[1]))[0]["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert res.loadAnns(res.getAnnIds(imgIds=[1]))[0]["category_id"] == int(first.class_ids[0]) + 1


def test_sinks_say_clearly_what_they_cannot_do(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot write"):
        JsonlSink(tmp_path / "file" / "x.jsonl")
    with pytest.raises(ValueError, match="json, csv, coco, txt"):
        sink_for(tmp_path / "x", "xml")


def _ap(gt, dets) -> float:
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


def test_a_tracked_stream_with_zones_and_sinks(tmp_path):
    """The embedded model on the demo clip, track=True, a zone, a line and all four sinks."""
    from pycocotools.coco import COCO

    clip = demo_clip(tmp_path / "clip.mp4", frames=40, size=(320, 240), seed=0)
    zone = PolygonZone([(0, 0), (160, 0), (160, 240), (0, 240)], name="left")
    line = LineCounter((160, 240), (160, 0), name="mid")
    sinks = [JsonlSink(tmp_path / "r.jsonl"), CsvSink(tmp_path / "r.csv"), CocoSink(tmp_path / "r.json"), YoloTxtSink(tmp_path / "txt")]
    with Detector.for_video() as det, stream(det, clip, track=True, zones=[zone, line], sinks=sinks, output=tmp_path / "a.mp4") as frames:
        results = list(frames)
    assert len(results) == 40 and all(r.detections.track_ids is not None for r in results)
    assert all(r.untracked.track_ids is None and len(r.untracked) >= len(r.detections) for r in results)
    assert all(set(r.zone_counts) == {"left", "mid"} for r in results)
    assert sum(r.zone_counts["left"]["inside"] for r in results) > 0
    assert [r.time_s for r in results[:3]] == [0.0, 0.04, 0.08]  # 25 FPS video time
    ids = {i for r in results for i in r.detections.track_ids.tolist()}
    assert 0 < len(ids) < 40 and any(len(r.trails) and max(map(len, r.trails.values())) > 5 for r in results)
    # drawn: the zone outline (BGR 0, 200, 255) at its right edge, half-way down
    assert tuple(results[-1].annotated()[120, 160]) != tuple(results[-1].frame[120, 160])
    # every sink holds the yielded numbers
    recs = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [rec["zones"] for rec in recs] == [r.zone_counts for r in results]
    assert all([x["track_id"] for x in rec["detections"]] == r.detections.track_ids.tolist() for rec, r in zip(recs, results))
    rows = list(csv.DictReader((tmp_path / "r.csv").open(newline="")))
    assert sum(1 for row in rows if row["class_id"] != "") == sum(len(r.detections) for r in results)
    assert len(list((tmp_path / "txt").iterdir())) == 40
    # COCO results from the file score the same AP as the in-memory list built like examples/demo.py
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(clip.with_suffix(".json")))
    cat_of = {c["name"]: c["id"] for c in gt.dataset["categories"]}
    in_memory = [
        {"image_id": r.index + 1, "category_id": cat_of[d.class_name], "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]], "score": d.score}
        for r in results for d in r.detections
    ]  # fmt: skip
    assert det.class_names == tuple(c["name"] for c in sorted(gt.dataset["categories"], key=lambda c: c["id"]))
    ap_file, ap_mem = _ap(gt, str(tmp_path / "r.json")), _ap(gt, in_memory)
    assert ap_file == ap_mem and ap_mem > 0.3


def test_stream_refuses_a_line_without_a_tracker(tmp_path):
    clip = demo_clip(tmp_path / "clip.mp4", frames=2, size=(160, 120))
    with Detector() as det:
        with pytest.raises(ValueError, match="track=True"):
            stream(det, clip, zones=[LineCounter((0, 0), (1, 1))])
        with pytest.raises(ValueError, match="unknown class 'cow'"):
            stream(det, clip, classes=["cow"])
        with stream(det, clip, classes=[det.class_names[0]]) as frames:
            assert all(set(r.detections.labels) <= {det.class_names[0]} for r in frames)


def test_sinks_are_finished_when_a_stream_is_left_early(tmp_path):
    """A bare for loop left with break: the COCO array is closed and the CSV flushed anyway."""
    clip = demo_clip(tmp_path / "clip.mp4", frames=20, size=(160, 120))
    coco, table = CocoSink(tmp_path / "r.json"), CsvSink(tmp_path / "r.csv")
    with Detector() as det:
        for r in stream(det, clip, track=True, sinks=[coco, table]):
            if r.index == 4:
                break
    assert isinstance(json.loads((tmp_path / "r.json").read_text()), list)
    assert {int(row["frame"]) for row in csv.DictReader((tmp_path / "r.csv").open(newline=""))} == set(range(5))
