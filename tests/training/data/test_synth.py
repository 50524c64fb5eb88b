"""The synthetic-shapes generator: deterministic, valid COCO, boxes that mean what they say."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from training.data import synth
from training.data.synth import CLASS_NAMES, generate_dataset, main, render_scene


def _load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_json_and_images(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", 5, 2, size=96, seed=3, progress=False)
    b = generate_dataset(tmp_path / "b", 5, 2, size=96, seed=3, progress=False)
    files_a, files_b = _tree_bytes(a), _tree_bytes(b)
    assert len(files_a) == 5 + 2 + 2
    assert files_a == files_b


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", 3, 1, size=96, seed=3, progress=False)
    b = generate_dataset(tmp_path / "b", 3, 1, size=96, seed=4, progress=False)
    assert (a / "train" / "000000.jpg").read_bytes() != (b / "train" / "000000.jpg").read_bytes()


def test_render_scene_same_generator_state_gives_same_pixels() -> None:
    img1, boxes1, labels1 = render_scene(np.random.default_rng(11), 128)
    img2, boxes2, labels2 = render_scene(np.random.default_rng(11), 128)
    np.testing.assert_array_equal(img1, img2)
    np.testing.assert_array_equal(boxes1, boxes2)
    np.testing.assert_array_equal(labels1, labels2)


def test_annotations_load_with_pycocotools_and_match_image_files(synth_root: Path) -> None:
    for split, n in (("train", 40), ("val", 6)):
        coco = _load(synth_root / "annotations" / f"instances_{split}.json")
        assert len(coco.getImgIds()) == n
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES[:6])
        for info in coco.loadImgs(coco.getImgIds()):
            image = cv2.imread(str(synth_root / split / info["file_name"]))
            assert image is not None and image.shape == (info["height"], info["width"], 3)
        ann_ids = [a["id"] for a in coco.dataset["annotations"]]
        assert len(set(ann_ids)) == len(ann_ids)


def test_boxes_lie_inside_their_images(synth_root: Path) -> None:
    coco = _load(synth_root / "annotations" / "instances_train.json")
    assert len(coco.dataset["annotations"]) > 40
    for ann in coco.dataset["annotations"]:
        info = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1
        assert x + w <= info["width"] and y + h <= info["height"]
        assert ann["area"] == pytest.approx(w * h)
        assert ann["iscrowd"] == 0


def test_every_class_appears(synth_root: Path) -> None:
    coco = _load(synth_root / "annotations" / "instances_train.json")
    assert {a["category_id"] for a in coco.dataset["annotations"]} == set(range(1, 7))


def test_scales_range_from_small_to_large(synth_root: Path) -> None:
    coco = _load(synth_root / "annotations" / "instances_train.json")
    areas = np.array([a["area"] for a in coco.dataset["annotations"]])
    assert (areas < 32**2).sum() >= 5  # COCO "small" objects
    assert areas.max() > 0.15 * 160 * 160


def test_objects_per_image_between_one_and_eight(synth_root: Path) -> None:
    coco = _load(synth_root / "annotations" / "instances_train.json")
    counts = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
    assert min(counts) >= 1 and max(counts) <= 8
    assert len(set(counts)) >= 4


def test_render_scene_outputs_and_occlusion() -> None:
    overlapping = 0
    for seed in range(30):
        image, boxes, labels = render_scene(np.random.default_rng(seed), 128)
        assert image.dtype == np.uint8 and image.shape == (128, 128, 3)
        assert boxes.dtype == np.float32 and labels.dtype == np.int64
        assert 1 <= len(boxes) <= 8 and len(boxes) == len(labels)
        assert labels.min() >= 1 and labels.max() <= 6
        np.testing.assert_array_equal(boxes, np.round(boxes))  # extents of visible pixels
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                lt = np.maximum(boxes[i, :2], boxes[j, :2])
                rb = np.minimum(boxes[i, 2:], boxes[j, 2:])
                overlapping += bool((rb > lt).all())
    assert overlapping > 0


def test_boxes_hug_visible_pixels_and_no_object_is_unlabelled(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a flat background (patched in) every drawn pixel lies in some box (1 px of
    anti-aliasing aside), and each box touches drawn pixels on all four edges: boxes are the
    tight visible extent, and no occluded-but-visible object is left without a label."""
    bg = np.array([90, 140, 60], np.float32)  # RGB
    monkeypatch.setattr(synth, "_background", lambda rng, h, w: np.broadcast_to(bg, (h, w, 3)).copy())
    for seed in range(60):
        image, boxes, _ = render_scene(np.random.default_rng(seed), 128, noise_sigma=0.0)
        drawn = (image[..., ::-1] != bg.astype(np.uint8)).any(axis=-1)
        covered = np.zeros_like(drawn)
        for x1, y1, x2, y2 in boxes.astype(int):
            covered[max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1] = True
            inside = drawn[y1:y2, x1:x2]
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        assert (drawn & ~covered).sum() <= 3, f"seed {seed}: drawn pixels outside every box"


def test_non_square_size_is_width_height() -> None:
    image, boxes, _ = render_scene(np.random.default_rng(0), (200, 120))
    assert image.shape == (120, 200, 3)
    assert (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 120).all()


def test_classes_option_limits_categories(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path, 8, 1, size=96, seed=0, num_classes=3, progress=False)
    data = json.loads((root / "annotations" / "instances_train.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["circle", "square", "triangle"]
    assert {a["category_id"] for a in data["annotations"]} <= {1, 2, 3}


def test_cli_writes_coco_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--train", "3", "--val", "2", "--size", "96", "--seed", "1", "--quiet"]) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert len(list((out / "val").glob("*.jpg"))) == 2
    assert (out / "annotations" / "instances_val.json").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--classes" in capsys.readouterr().out
