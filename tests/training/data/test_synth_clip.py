import json

import cv2
import numpy as np
from pycocotools.coco import COCO

from training.data.synth_clip import render_clip_frames, write_clip


def test_clip_is_deterministic_by_seed():
    a = list(render_clip_frames(5, (160, 120), seed=3))
    b = list(render_clip_frames(5, (160, 120), seed=3))
    for (fa, ba, la, ca), (fb, bb, lb, cb) in zip(a, b):
        assert np.array_equal(fa, fb) and np.array_equal(ba, bb) and np.array_equal(la, lb) and np.array_equal(ca, cb)


def test_clip_boxes_stay_inside_the_frame_and_objects_move():
    frames = list(render_clip_frames(20, (200, 150), seed=0))
    for frame, boxes, labels, _ in frames:
        assert frame.shape == (150, 200, 3) and frame.dtype == np.uint8
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 150).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert ((labels >= 1) & (labels <= 6)).all()
    assert not np.array_equal(frames[0][1], frames[-1][1])


def test_written_clip_has_every_frame_and_coco_ground_truth(tmp_path):
    video, gt = write_clip(tmp_path / "clip.mp4", num_frames=12, size=(160, 128), progress=False)
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12
    coco = COCO(str(gt))
    assert len(coco.getImgIds()) == 12
    assert len(coco.getAnnIds()) > 12
    assert json.loads(gt.read_text())["images"][0]["width"] == 160
