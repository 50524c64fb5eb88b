"""CocoDetection: label mapping, crowd/degenerate handling, RGB images, loader batching."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training.data import (
    CLASS_NAMES,
    CocoDetection,
    build_eval_transform,
    build_train_transform,
    detection_collate,
)


@pytest.fixture()
def handmade(tmp_path: Path) -> tuple[Path, Path]:
    """Three images; sparse category ids; a crowd box, two degenerate boxes, one box that
    leaves the image, and an image without annotations."""
    images = tmp_path / "images"
    images.mkdir()
    sizes = {1: (40, 50), 2: (30, 30), 3: (20, 64)}  # id: (h, w)
    for image_id, (h, w) in sizes.items():
        pixels = np.zeros((h, w, 3), np.uint8)
        pixels[..., 2] = 200  # red in BGR, so RGB channel 0 is 200
        cv2.imwrite(str(images / f"{image_id}.png"), pixels)
    anns = [
        (1, 5, [10, 5, 20, 10], 0),  # kept
        (1, 3, [0, 0, 40, 30], 1),  # crowd: not a target
        (1, 3, [3, 3, 0.5, 10], 0),  # under 1 px wide
        (1, 17, [3, 3, 10, 0], 0),  # zero height
        (1, 17, [40, 30, 20, 20], 0),  # leaves the 50x40 image: clipped
        (3, 17, [1.5, 2.5, 4, 6], 0),
    ]
    data = {
        "images": [{"id": i, "file_name": f"{i}.png", "height": h, "width": w} for i, (h, w) in sizes.items()],
        "annotations": [
            {"id": k + 1, "image_id": img, "category_id": cat, "bbox": bbox, "area": 1.0, "iscrowd": crowd}
            for k, (img, cat, bbox, crowd) in enumerate(anns)
        ],
        "categories": [{"id": 17, "name": "zebra"}, {"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}],
    }
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps(data))
    return images, ann_file


def test_sparse_category_ids_map_to_contiguous_labels_in_id_order(handmade: tuple[Path, Path]) -> None:
    ds = CocoDetection(*handmade)
    assert ds.class_names == ["cat", "dog", "zebra"]
    assert ds.cat_ids == {1: 3, 2: 5, 3: 17}
    assert ds.label_of_cat == {3: 1, 5: 2, 17: 3}
    assert ds.num_classes == 3
    assert ds.image_ids == [1, 2, 3]


def test_crowd_and_degenerate_boxes_are_not_targets(handmade: tuple[Path, Path]) -> None:
    image, target = CocoDetection(*handmade)[0]
    assert image.shape == (40, 50, 3) and image.dtype == np.uint8
    assert (image[..., 0] == 200).all() and (image[..., 2] == 0).all()  # RGB, not BGR
    np.testing.assert_array_equal(target["boxes"], np.array([[10, 5, 30, 15], [40, 30, 50, 40]], np.float32))
    assert target["boxes"].dtype == np.float32
    assert target["labels"].tolist() == [2, 3] and target["labels"].dtype == np.int64
    assert target["image_id"] == 1 and target["orig_size"] == (40, 50)


def test_image_without_annotations_has_empty_target(handmade: tuple[Path, Path]) -> None:
    _, target = CocoDetection(*handmade)[1]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    _, target = CocoDetection(*handmade)[2]
    np.testing.assert_allclose(target["boxes"], [[1.5, 2.5, 5.5, 8.5]])


def test_skip_empty_drops_images_without_targets(handmade: tuple[Path, Path]) -> None:
    assert CocoDetection(*handmade, skip_empty=True).image_ids == [1, 3]


def test_missing_image_file_raises(handmade: tuple[Path, Path]) -> None:
    images, ann_file = handmade
    (images / "2.png").unlink()
    with pytest.raises(FileNotFoundError):
        CocoDetection(images, ann_file)[1]


def test_synth_set_reads_with_names_and_boxes_from_json(synth_root: Path) -> None:
    ds = CocoDetection(synth_root / "val", synth_root / "annotations" / "instances_val.json")
    assert len(ds) == 6
    assert ds.class_names == list(CLASS_NAMES[:6])
    assert ds.cat_ids == {k: k for k in range(1, 7)}
    data = json.loads((synth_root / "annotations" / "instances_val.json").read_text())
    for index in range(len(ds)):
        image, target = ds[index]
        assert image.shape == (160, 160, 3)
        anns = [a for a in data["annotations"] if a["image_id"] == ds.image_ids[index]]
        expected = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        np.testing.assert_array_equal(target["boxes"], np.array(expected, np.float32))
        assert target["labels"].tolist() == [a["category_id"] for a in anns]


def test_eval_transform_gives_normalised_tensors(synth_root: Path) -> None:
    ds = CocoDetection(
        synth_root / "val", synth_root / "annotations" / "instances_val.json", transform=build_eval_transform(96)
    )
    raw = CocoDetection(synth_root / "val", synth_root / "annotations" / "instances_val.json")
    image, target = ds[0]
    assert image.shape == (3, 96, 96) and image.dtype == torch.float32
    torch.testing.assert_close(target["boxes"], torch.from_numpy(raw[0][1]["boxes"] / 160.0))
    assert target["labels"].dtype == torch.int64
    assert target["orig_size"] == (160, 160)


def test_loader_batches_images_and_keeps_targets_per_image(synth_root: Path) -> None:
    ds = CocoDetection(
        synth_root / "train",
        synth_root / "annotations" / "instances_train.json",
        transform=build_train_transform(64, seed=0),
    )
    images, targets = next(iter(DataLoader(ds, batch_size=4, collate_fn=detection_collate)))
    assert images.shape == (4, 3, 64, 64)
    assert [t["image_id"] for t in targets] == ds.image_ids[:4]
    for t in targets:
        assert t["boxes"].shape == (len(t["labels"]), 4)
