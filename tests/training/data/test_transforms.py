"""SSD augmentation: boxes stay inside the image and are only dropped when no longer visible,
geometry is exact, outputs are normalised and reproducible."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training.data import (
    Compose,
    Expand,
    IoURandomCrop,
    Normalize,
    PhotometricDistort,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    build_eval_transform,
    build_train_transform,
    detection_collate,
    sanitize_boxes,
    seed_worker,
)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def random_sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random image with 0..10 valid boxes (>= 1 px, inside), tiny and fractional ones
    included; label k marks input box k so survivors can be traced."""
    h, w = int(rng.integers(24, 200)), int(rng.integers(24, 200))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    k = int(rng.integers(0, 11))
    x1, y1 = rng.uniform(0, w - 1, k), rng.uniform(0, h - 1, k)
    bw = np.exp(rng.uniform(0, np.log(w), k)).clip(1, w - x1)
    bh = np.exp(rng.uniform(0, np.log(h), k)).clip(1, h - y1)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32)
    boxes, labels = sanitize_boxes(boxes, np.arange(k, dtype=np.int64), w, h)
    return image, boxes, labels


def assert_inside(image: np.ndarray, boxes: np.ndarray) -> None:
    h, w = image.shape[:2]
    assert boxes.dtype == np.float32 and boxes.shape[1:] == (4,)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert ((boxes[:, 2] - boxes[:, 0]) >= 1).all() and ((boxes[:, 3] - boxes[:, 1]) >= 1).all()


def expected_survivors(step: Any, image: np.ndarray, boxes: np.ndarray, seed: int) -> np.ndarray:
    """Which input boxes must survive ``step``: exactly those still >= 1 px visible (and, for
    the crop, with their centre in the patch, SSD's rule)."""
    if isinstance(step, IoURandomCrop):
        rect = step.sample_rect(image.shape[:2], boxes, np.random.default_rng(seed))
        if rect is None:
            return np.ones(len(boxes), bool)
        size = np.minimum(boxes[:, 2:], rect[2:]) - np.maximum(boxes[:, :2], rect[:2])
        return step.kept(boxes, rect) & (size >= 1).all(axis=1)
    if isinstance(step, Resize):
        scale = np.array([step.size / image.shape[1], step.size / image.shape[0]], np.float32)
        return (((boxes[:, 2:] - boxes[:, :2]) * scale) >= 1).all(axis=1)
    return np.ones(len(boxes), bool)


@pytest.mark.parametrize("seed", range(150))
def test_every_step_keeps_boxes_inside_and_drops_only_invisible_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image, boxes, labels = random_sample(rng)
    expand = Expand(np.multiply(MEAN, 255), p=0.7)
    steps = [PhotometricDistort(), expand, IoURandomCrop(), RandomHorizontalFlip(), Resize(48)]
    for index, step in enumerate(steps):
        step_seed = seed * 100 + index
        survive = expected_survivors(step, image, boxes, step_seed)
        out_image, out_boxes, out_labels = step(image, boxes, labels, np.random.default_rng(step_seed))
        out_boxes, out_labels = sanitize_boxes(out_boxes, out_labels, out_image.shape[1], out_image.shape[0])
        assert_inside(out_image, out_boxes)
        assert out_image.dtype == np.uint8 and out_image.shape[2] == 3
        assert out_labels.tolist() == labels[survive].tolist(), type(step).__name__
        if isinstance(step, (PhotometricDistort, Expand, RandomHorizontalFlip)):  # sizes unchanged
            # float32 pixel coordinates up to ~800 (Expand x4 of 200): each shifted one rounds by <= 3e-5
            np.testing.assert_allclose(out_boxes[:, 2:] - out_boxes[:, :2], boxes[:, 2:] - boxes[:, :2], atol=1e-4)
        image, boxes, labels = out_image, out_boxes, out_labels


@pytest.mark.parametrize("seed", range(40))
def test_train_pipeline_output_is_normalised(seed: int) -> None:
    image, boxes, labels = random_sample(np.random.default_rng(seed))
    target = {"boxes": boxes, "labels": labels, "image_id": 7, "orig_size": image.shape[:2]}
    tensor, out = build_train_transform(64, seed=seed)(image, target)
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32
    assert out["boxes"].dtype == torch.float32 and out["labels"].dtype == torch.int64
    assert out["boxes"].shape == (len(out["labels"]), 4)
    assert (out["boxes"] >= 0).all() and (out["boxes"] <= 1).all()
    assert (out["boxes"][:, 2:] > out["boxes"][:, :2]).all()
    assert set(out["labels"].tolist()) <= set(labels.tolist())
    assert out["image_id"] == 7 and out["orig_size"] == image.shape[:2]
    # pixels were 0..1 before mean/std (float32 rounding of values <= 2.7: < 1e-6, hence the 1e-5 slack)
    low, high = (0 - np.array(MEAN)) / np.array(STD), (1 - np.array(MEAN)) / np.array(STD)
    per_channel = tensor.reshape(3, -1)
    assert (per_channel.min(dim=1).values >= torch.tensor(low, dtype=torch.float32) - 1e-5).all()
    assert (per_channel.max(dim=1).values <= torch.tensor(high, dtype=torch.float32) + 1e-5).all()


def test_flip_mirrors_boxes_and_pixels() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    image[20:40, 10:30] = 255
    boxes = np.array([[10, 20, 30, 40], [0, 0, 100, 5.5]], np.float32)
    out, out_boxes, out_labels = RandomHorizontalFlip(p=1.0)(image, boxes, np.array([1, 2]), np.random.default_rng(0))
    np.testing.assert_array_equal(out_boxes, [[70, 20, 90, 40], [0, 0, 100, 5.5]])
    assert out_labels.tolist() == [1, 2]
    assert (out[20:40, 70:90] == 255).all() and out.sum() == image.sum()
    unchanged, same_boxes, _ = RandomHorizontalFlip(p=0.0)(image, boxes, np.array([1, 2]), np.random.default_rng(0))
    assert unchanged is image and same_boxes is boxes


@pytest.mark.parametrize("seed", range(10))
def test_expand_keeps_box_content_and_fills_with_mean(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    boxes = np.array([[3, 4, 20, 25], [0, 0, 40, 30]], np.float32)
    fill = np.multiply(MEAN, 255)
    out, out_boxes, _ = Expand(fill, max_ratio=3.0, p=1.0)(image, boxes, np.array([1, 2]), rng)
    assert out.shape[0] >= 30 and out.shape[1] >= 40
    for (x1, y1, x2, y2), (u1, v1, u2, v2) in zip(boxes.astype(int), out_boxes.astype(int)):
        np.testing.assert_array_equal(out[v1:v2, u1:u2], image[y1:y2, x1:x2])
    left, top = out_boxes[1, :2].astype(int)
    background = np.ones(out.shape[:2], bool)
    background[top : top + 30, left : left + 40] = False
    mean_pixel = np.round(fill).astype(np.uint8)
    np.testing.assert_array_equal(out[background], np.broadcast_to(mean_pixel, (background.sum(), 3)))


def test_photometric_changes_pixels_not_boxes() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    boxes = np.array([[1, 2, 10, 12]], np.float32)
    changed = 0
    for seed in range(20):
        out, out_boxes, _ = PhotometricDistort()(image, boxes, np.array([1]), np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(out_boxes, boxes)
        changed += not np.array_equal(out, image)
    assert changed >= 15  # 1 - 0.5^5: nearly every draw distorts something


def test_crop_keeps_boxes_with_centre_inside_and_clips_them() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 60, 60], [70, 70, 99, 99]], np.float32)
    crop = IoURandomCrop(min_ious=(0.1,))
    for seed in range(20):
        rect = crop.sample_rect((100, 100), boxes, np.random.default_rng(seed))
        assert rect is not None
        out, out_boxes, out_labels = crop(image, boxes, np.array([1, 2]), np.random.default_rng(seed))
        assert out.shape == (int(rect[3] - rect[1]), int(rect[2] - rect[0]), 3)
        kept = crop.kept(boxes, rect)
        assert out_labels.tolist() == np.array([1, 2])[kept].tolist()
        expected = np.clip(boxes[kept], np.tile(rect[:2], 2), np.tile(rect[2:], 2)) - np.tile(rect[:2], 2)
        np.testing.assert_allclose(out_boxes, expected)
    never = IoURandomCrop(min_ious=(None,))
    assert never(image, boxes, np.array([1, 2]), np.random.default_rng(0))[0] is image


def test_eval_transform_scales_boxes_to_unit_range() -> None:
    image = np.full((50, 100, 3), np.round(np.multiply(MEAN, 255)), np.uint8)
    boxes = np.array([[0, 0, 50, 25]], np.float32)
    target = {"boxes": boxes, "labels": np.array([3]), "image_id": 1, "orig_size": (50, 100)}
    tensor, out = build_eval_transform(32)(image, target)
    assert tensor.shape == (3, 32, 32)
    assert tensor.abs().max() < 0.01  # the mean pixel normalises to ~0
    torch.testing.assert_close(out["boxes"], torch.tensor([[0.0, 0.0, 0.5, 0.5]]))
    assert out["labels"].tolist() == [3]


def test_bgr_pixel_order_reorders_channels_before_mean_std() -> None:
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255  # RGB
    boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    rgb = Normalize((0, 0, 0), (1, 1, 1))(red, boxes, labels, np.random.default_rng(0))[0]
    to_bgr = Normalize((0.1, 0.2, 0.3), (0.5, 0.5, 0.5), pixel_order="BGR")
    bgr = to_bgr(red, boxes, labels, np.random.default_rng(0))[0]
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0])
    np.testing.assert_allclose(bgr[0, 0], [(0 - 0.1) / 0.5, (0 - 0.2) / 0.5, (1 - 0.3) / 0.5], rtol=1e-6)
    # BGR builds fill Expand with the mean pixel in RGB order, so the canvas still normalises to 0
    expand = build_train_transform(16, mean=(0.1, 0.2, 0.3), pixel_order="BGR").steps[1]
    np.testing.assert_allclose(expand.fill, [0.3 * 255, 0.2 * 255, 0.1 * 255])


def test_same_seed_reproduces_augmentation_and_different_seeds_differ() -> None:
    image, boxes, labels = random_sample(np.random.default_rng(3))
    target = {"boxes": boxes, "labels": labels, "image_id": 0, "orig_size": image.shape[:2]}
    runs = []
    for seed in (5, 5, 6):
        transform = build_train_transform(32, seed=seed)
        runs.append([transform(image, target)[0] for _ in range(4)])
    for a, b in zip(runs[0], runs[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(runs[0], runs[2]))


class _SameImage(torch.utils.data.Dataset):
    """Every index is the same image, so any difference between items is augmentation."""

    def __init__(self) -> None:
        self.image, self.boxes, self.labels = random_sample(np.random.default_rng(1))
        self.transform = build_train_transform(32, seed=0)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        target = {"boxes": self.boxes, "labels": self.labels, "image_id": index, "orig_size": (1, 1)}
        return self.transform(self.image, target)


def test_seed_worker_gives_workers_distinct_reproducible_streams() -> None:
    def epoch(seed: int) -> torch.Tensor:
        loader = DataLoader(
            _SameImage(),
            batch_size=1,
            num_workers=2,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=detection_collate,
        )
        return torch.cat([images for images, _ in loader])

    first, again, other = epoch(0), epoch(0), epoch(1)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first[0], first[1])  # item 0 from worker 0, item 1 from worker 1
    assert not torch.equal(first, other)


def test_compose_apply_runs_steps_on_arrays() -> None:
    image = np.zeros((10, 20, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [19.5, 0, 20, 10]], np.float32)  # the second is 0.5 px wide
    out, out_boxes, out_labels = Compose([Resize(40), ToTensor()]).apply(image, boxes, [1, 2])
    assert out.shape == (3, 40, 40)
    torch.testing.assert_close(out_boxes, torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.975, 0.0, 1.0, 1.0]]))
    assert out_labels.tolist() == [1, 2]
    shrunk = Compose([Resize(4)]).apply(image, boxes, [1, 2])
    assert shrunk[2].tolist() == [1]  # 0.5 px * 4/20 is invisible: dropped with its label
