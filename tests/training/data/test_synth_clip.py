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


def test_objects_keep_their_identity_in_coco_json_and_mot_gt(tmp_path):
    from training.data.synth_clip import mot_gt_path, render_clip_objects

    frames = list(render_clip_objects(30, (200, 150), seed=2, num_objects=4))
    for (f, b, lab, c, ids, vis), (f2, b2, lab2, c2) in zip(frames, render_clip_frames(30, (200, 150), seed=2, num_objects=4)):
        assert np.array_equal(b, b2) and np.array_equal(lab, lab2) and len(ids) == len(set(ids.tolist())) == len(b)
        assert ((vis > 0) & (vis <= 1)).all() and ((vis < 0.3) == c).all()
    # an identity keeps its class: the same mover throughout
    label_of: dict[int, set[int]] = {}
    for _, _, lab, _, ids, _ in frames:
        for i, l in zip(ids.tolist(), lab.tolist()):
            label_of.setdefault(i, set()).add(l)
    assert set(label_of) == {1, 2, 3, 4} and all(len(v) == 1 for v in label_of.values())

    video, gt = write_clip(tmp_path / "clip.mp4", num_frames=10, size=(160, 128), seed=1, progress=False)
    anns = json.loads(gt.read_text())["annotations"]
    rows = [line.split(",") for line in mot_gt_path(video).read_text().splitlines()]
    assert len(rows) == len(anns) and mot_gt_path(video).name == "clip_gt.txt"
    for a, r in zip(anns, rows):
        assert int(r[0]) == a["image_id"] and int(r[1]) == a["track_id"] and int(r[7]) == a["category_id"]
        assert np.allclose([float(v) for v in r[2:6]], a["bbox"]) and int(r[6]) == 1 - a["iscrowd"]


def test_clip_frames_data_set_matches_the_clip_and_keeps_splits_apart(tmp_path):
    """Training frames of demo-like clips: the boxes and crowd flags are those of the clip at that
    frame, train and val come from different clips, and crowd objects are no training targets."""
    import pytest

    from training.data.coco import CocoDetection
    from training.data.synth_clip import generate_clip_dataset, render_clip_objects

    out = generate_clip_dataset(tmp_path / "cf", 5, 3, seed=1000, frames_per_clip=3, frame_stride=4,
                                size=(160, 120), progress=False)  # fmt: skip
    train = json.loads((out / "annotations" / "instances_train.json").read_text())
    val = json.loads((out / "annotations" / "instances_val.json").read_text())
    assert [im["file_name"] for im in train["images"]] == [
        "s01000_f0000.jpg", "s01000_f0004.jpg", "s01000_f0008.jpg", "s01001_f0000.jpg", "s01001_f0004.jpg"]
    assert [im["file_name"] for im in val["images"]] == ["s01002_f0000.jpg", "s01002_f0004.jpg", "s01002_f0008.jpg"]
    frames = list(render_clip_objects(12, (160, 120), seed=1000))
    _, boxes, labels, crowd, _, _ = frames[8]
    anns = [a for a in train["annotations"] if a["image_id"] == 3]
    assert [a["category_id"] for a in anns] == labels.tolist()
    assert [a["iscrowd"] for a in anns] == crowd.astype(int).tolist()
    np.testing.assert_allclose([a["bbox"][:2] for a in anns], boxes[:, :2])
    image = cv2.imread(str(out / "train" / "s01000_f0008.jpg"))
    assert image.shape == (120, 160, 3) and np.abs(image.astype(int) - frames[8][0]).mean() < 8  # JPEG q92 of that noisy frame
    everything = train["annotations"]
    img_id = next(a["image_id"] for a in everything if a["iscrowd"])  # this set has one occluded object
    ds = CocoDetection(out / "train", out / "annotations" / "instances_train.json")
    n_targets = len(ds[ds.image_ids.index(img_id)][1]["labels"])  # crowd objects are ignored, not targets
    assert n_targets == sum(1 for a in everything if a["image_id"] == img_id and not a["iscrowd"])
    with pytest.raises(ValueError, match="evaluation clips"):
        generate_clip_dataset(tmp_path / "bad", 10, 0, seed=95, frames_per_clip=2, progress=False)
