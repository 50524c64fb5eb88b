"""SSD data augmentation (Liu et al. 2016, as in the reference Caffe/PyTorch SSD) on numpy/OpenCV.

Every step is a callable ``step(image, boxes, labels, rng) -> (image, boxes, labels)`` with
image HxWx3 (uint8 RGB until :class:`Normalize`), boxes float32 (K, 4) xyxy **in pixels**,
labels int64 (K,), and ``rng`` a ``numpy.random.Generator``: all randomness comes from it, so
a seed reproduces an augmentation exactly. :class:`Compose` runs the steps and, after each,
clips boxes to the image and drops those under 1 px wide or high (with their labels).
:class:`ToTensor` ends a pipeline: CHW float32 tensor, boxes xyxy **normalised to 0..1**.

Pixel convention (the one the exporter writes into model files): RGB, pixels scaled to 0..1,
then ImageNet mean/std. ``mean``, ``std`` and ``pixel_order`` are parameters with those defaults.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from padet_sdk.boxes import box_iou
from training.config import IMAGENET_MEAN, IMAGENET_STD

Step = Callable[[Any, np.ndarray, np.ndarray, np.random.Generator], tuple[Any, np.ndarray, np.ndarray]]


def sanitize_boxes(
    boxes: np.ndarray, labels: np.ndarray, width: float, height: float, min_size: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy pixel boxes (K, 4) to the image and drop those whose visible part is under
    ``min_size`` pixels wide or high, with their labels."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    return boxes[keep], np.asarray(labels).reshape(-1)[keep]


class PhotometricDistort:
    """SSD's colour jitter, each part with probability 0.5, in SSD's order: brightness
    (+U(-32, 32)); then contrast (×U(0.5, 1.5)) either first or last; saturation (×U(0.5, 1.5))
    and hue (+U(-18°, 18°)) in HSV; finally a random channel permutation. Boxes are unchanged.
    Works in float32 but returns uint8 (rounded, clipped), so the Expand canvas stays small."""

    def __init__(
        self,
        brightness_delta: float = 32.0,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: float = 18.0,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    def _contrast(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            img = img * np.float32(rng.uniform(*self.contrast_range))
        return img

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        img = image.astype(np.float32)
        if rng.random() < 0.5:
            img = img + np.float32(rng.uniform(-self.brightness_delta, self.brightness_delta))
        contrast_first = rng.random() < 0.5
        if contrast_first:
            img = self._contrast(img, rng)
        saturation = rng.uniform(*self.saturation_range) if rng.random() < 0.5 else None
        hue = rng.uniform(-self.hue_delta, self.hue_delta) if rng.random() < 0.5 else None
        if saturation is not None or hue is not None:
            # float32 HSV in OpenCV: H in [0, 360), S in [0, 1], V in the input's range
            hsv = cv2.cvtColor(np.clip(img, 0, 255), cv2.COLOR_RGB2HSV)
            if saturation is not None:
                hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(saturation), 0, 1)
            if hue is not None:
                hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(hue), 360)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if not contrast_first:
            img = self._contrast(img, rng)
        if rng.random() < 0.5:
            img = img[..., rng.permutation(3)]
        return np.clip(np.round(img), 0, 255).astype(np.uint8), boxes, labels


class _RandomStep:
    """A step applied with probability ``p`` (one ``rng.random()`` draw decides), else a no-op."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if rng.random() >= self.p:
            return image, boxes, labels
        return self.apply(image, boxes, labels, rng)

    def apply(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


class Expand(_RandomStep):
    """SSD's zoom out: with probability ``p`` place the image at a random integer offset on a
    canvas ``U(1, max_ratio)`` times larger, filled with ``fill`` (the mean pixel, so it
    normalises to 0). Makes large objects small: it is how SSD learns small objects."""

    def __init__(self, fill: Sequence[float], max_ratio: float = 4.0, p: float = 0.5) -> None:
        super().__init__(p)
        self.fill = np.asarray(fill, np.float32)
        self.max_ratio = max_ratio

    def apply(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        ratio = rng.uniform(1.0, self.max_ratio)
        out_h, out_w = int(h * ratio), int(w * ratio)
        left, top = int(rng.uniform(0, out_w - w)), int(rng.uniform(0, out_h - h))
        canvas = np.empty((out_h, out_w, image.shape[2]), image.dtype)
        canvas[:] = np.round(self.fill).astype(image.dtype) if image.dtype == np.uint8 else self.fill
        canvas[top : top + h, left : left + w] = image
        return canvas, boxes + np.array([left, top, left, top], np.float32), labels


class IoURandomCrop:
    """SSD's random crop. Pick a mode from ``min_ious``: ``None`` keeps the whole image; a
    number m asks for a patch (side U(min_scale, 1) of the image's, aspect h/w in
    ``aspect_range``, integer corners) whose IoU with at least one box is >= m, as in the
    original Caffe SSD sampler (requiring *every* box would almost never crop crowded images).
    Up to ``max_trials`` patches per mode; a patch must keep >= 1 box. Boxes whose centre is
    inside the patch are kept and clipped to it, the others dropped. After ``max_modes``
    fruitless modes the image is returned unchanged."""

    def __init__(
        self,
        min_ious: Sequence[float | None] = (None, 0.1, 0.3, 0.5, 0.7, 0.9),
        max_trials: int = 50,
        min_scale: float = 0.3,
        aspect_range: tuple[float, float] = (0.5, 2.0),
        max_modes: int = 10,
    ) -> None:
        self.min_ious = tuple(min_ious)
        self.max_trials = max_trials
        self.min_scale = min_scale
        self.aspect_range = aspect_range
        self.max_modes = max_modes

    @staticmethod
    def kept(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
        """(K,) bool: box centre strictly inside the xyxy rectangle."""
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        return (centres > rect[:2]).all(axis=1) & (centres < rect[2:]).all(axis=1)

    def sample_rect(self, image_hw: tuple[int, int], boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """The crop (4,) xyxy int pixels that ``__call__`` with the same ``rng`` state makes, or
        None for no crop."""
        h, w = image_hw
        for _ in range(self.max_modes):
            min_iou = self.min_ious[int(rng.integers(len(self.min_ious)))]
            if min_iou is None:
                return None
            for _ in range(self.max_trials):
                cw, ch = rng.uniform(self.min_scale * w, w), rng.uniform(self.min_scale * h, h)
                if not self.aspect_range[0] <= ch / cw <= self.aspect_range[1]:
                    continue
                left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
                rect = np.array([int(left), int(top), int(left + cw), int(top + ch)], np.float32)
                if rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
                    continue
                if len(boxes) == 0:
                    return rect
                if box_iou(boxes, rect[None])[:, 0].max() < min_iou:
                    continue
                inside = self.kept(boxes, rect)
                if not inside.any():
                    continue
                sizes = np.minimum(boxes[inside, 2:], rect[2:]) - np.maximum(boxes[inside, :2], rect[:2])
                if (sizes >= 1).all(axis=1).any():
                    return rect
        return None

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rect = self.sample_rect(image.shape[:2], boxes, rng)
        if rect is None:
            return image, boxes, labels
        x1, y1, x2, y2 = (int(v) for v in rect)
        inside = self.kept(boxes, rect)
        new_boxes, new_labels = sanitize_boxes(
            boxes[inside] - np.array([x1, y1, x1, y1], np.float32), labels[inside], x2 - x1, y2 - y1
        )
        return np.ascontiguousarray(image[y1:y2, x1:x2]), new_boxes, new_labels


class RandomHorizontalFlip(_RandomStep):
    """Mirror left-right with probability ``p``: x1' = W - x2, x2' = W - x1."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def apply(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = image.shape[1]
        flipped = boxes.copy()
        flipped[:, 0], flipped[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
        return np.ascontiguousarray(image[:, ::-1]), flipped, labels


class Resize:
    """Resize to a square ``size`` x ``size`` (SSD ignores the aspect ratio); boxes scale with
    the image."""

    def __init__(self, size: int, interpolation: int = cv2.INTER_LINEAR) -> None:
        self.size = int(size)
        self.interpolation = interpolation

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        out = cv2.resize(image, (self.size, self.size), interpolation=self.interpolation)
        scale = np.array([self.size / w, self.size / h] * 2, np.float32)
        return out, boxes * scale, labels


class Normalize:
    """uint8 RGB HxWx3 → float32 HxWx3: reorder channels to ``pixel_order``, divide by
    ``max_pixel`` (pixels in 0..1), subtract ``mean``, divide by ``std`` (both given in
    ``pixel_order``, in 0..1 units). Must match what the exporter writes into model files."""

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pixel_order: str = "RGB",
        max_pixel: float = 255.0,
    ) -> None:
        if pixel_order.upper() not in ("RGB", "BGR"):
            raise ValueError(f"pixel_order must be RGB or BGR, got {pixel_order!r}")
        self.bgr = pixel_order.upper() == "BGR"
        self.scale = np.float32(1.0 / max_pixel)
        self.mean = np.asarray(mean, np.float32)
        self.inv_std = np.float32(1.0) / np.asarray(std, np.float32)

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        img = image[..., ::-1] if self.bgr else image
        return (img.astype(np.float32) * self.scale - self.mean) * self.inv_std, boxes, labels


class ToTensor:
    """HxWx3 array → CHW float32 torch tensor (values unchanged: put :class:`Normalize` before);
    boxes → torch float32 xyxy normalised by the image size to 0..1; labels → torch int64."""

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = image.shape[:2]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        norm = (np.asarray(boxes, np.float32).reshape(-1, 4) / np.array([w, h, w, h], np.float32)).clip(0, 1)
        return tensor, torch.from_numpy(norm), torch.from_numpy(np.asarray(labels, np.int64).reshape(-1))


class Compose:
    """A pipeline of steps with its own random generator, usable as a data set ``transform``:
    ``transform(image, target, rng=None) -> (image, target)``.

    ``target`` holds "boxes" (K, 4) xyxy pixels and "labels" (K,); other keys ("image_id",
    "orig_size") pass through. After every numpy step, boxes are clipped to the image and those
    under 1 px dropped. ``rng`` overrides the pipeline's generator for one call; ``reseed``
    restarts it (:func:`seed_worker` does so in each DataLoader worker).
    """

    def __init__(self, steps: Sequence[Step], seed: int | None = None) -> None:
        self.steps = list(steps)
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def apply(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[Any, Any, Any]:
        """Run the steps on (image, boxes xyxy pixels (K, 4), labels (K,))."""
        rng = self.rng if rng is None else rng
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels, np.int64).reshape(-1)
        for step in self.steps:
            image, boxes, labels = step(image, boxes, labels, rng)
            if isinstance(image, np.ndarray):
                boxes, labels = sanitize_boxes(boxes, labels, image.shape[1], image.shape[0])
        return image, boxes, labels

    def __call__(
        self, image: np.ndarray, target: dict[str, Any], rng: np.random.Generator | None = None
    ) -> tuple[Any, dict[str, Any]]:
        image, boxes, labels = self.apply(image, target["boxes"], target["labels"], rng)
        return image, {**target, "boxes": boxes, "labels": labels}


def _mean_pixel_rgb(mean: Sequence[float], pixel_order: str, max_pixel: float) -> tuple[float, ...]:
    ordered = tuple(mean)[::-1] if pixel_order.upper() == "BGR" else tuple(mean)
    return tuple(m * max_pixel for m in ordered)


def build_train_transform(
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    seed: int | None = None,
    pixel_order: str = "RGB",
    expand_max_ratio: float = 4.0,
    min_ious: Sequence[float | None] = (None, 0.1, 0.3, 0.5, 0.7, 0.9),
    max_pixel: float = 255.0,
) -> Compose:
    """SSD training augmentation: photometric distort → expand (zoom out, mean fill) →
    IoU random crop → horizontal flip → resize to ``size`` x ``size`` → normalise → tensor.
    Output: image (3, size, size) float32, target boxes (K, 4) float32 xyxy in 0..1, labels
    (K,) int64. ``seed`` seeds the pipeline's generator (None: fresh entropy)."""
    return Compose(
        [
            PhotometricDistort(),
            Expand(_mean_pixel_rgb(mean, pixel_order, max_pixel), max_ratio=expand_max_ratio),
            IoURandomCrop(min_ious),
            RandomHorizontalFlip(),
            Resize(size),
            Normalize(mean, std, pixel_order, max_pixel),
            ToTensor(),
        ],
        seed=seed,
    )


def build_eval_transform(
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    pixel_order: str = "RGB",
    max_pixel: float = 255.0,
) -> Compose:
    """Evaluation preprocessing: resize to ``size`` x ``size``, normalise, tensor; no
    randomness. Predictions in 0..1 map back to pixels with the target's ``orig_size``."""
    return Compose([Resize(size), Normalize(mean, std, pixel_order, max_pixel), ToTensor()], seed=0)


def reseed_dataset(dataset: Any, seed: int) -> None:
    """Reseed every :class:`Compose` transform found in ``dataset`` (also through ``Subset``'s
    ``.dataset`` and ``ConcatDataset``'s ``.datasets``)."""
    transform = getattr(dataset, "transform", None)
    if hasattr(transform, "reseed"):
        transform.reseed(seed)
    inner = getattr(dataset, "dataset", None)
    if inner is not None:
        reseed_dataset(inner, seed)
    for d in getattr(dataset, "datasets", ()):
        reseed_dataset(d, seed)


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: give each worker its own augmentation stream.

    The worker's torch seed is base_seed + worker_id, where base_seed comes from the main
    process's torch RNG (or the DataLoader's ``generator=``) and changes every epoch, so
    ``torch.manual_seed(s)`` in the main process makes every epoch's augmentation reproducible
    while workers and epochs still differ. Also seeds ``random`` and the legacy ``np.random``.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        reseed_dataset(info.dataset, seed)
