"""COCO-format detection data set (real COCO, the synthetic shapes, or VOC converted by
:func:`training.data.voc.voc_to_coco`), read with pycocotools so evaluation and training see
exactly the same annotations."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

#: ``transform(image, target) -> (image, target)``, e.g. :class:`training.data.transforms.Compose`.
Transform = Callable[[np.ndarray, dict[str, Any]], tuple[Any, dict[str, Any]]]


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 **RGB** (OpenCV reads BGR; the models are fed RGB)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def make_target(
    boxes: list[list[float]] | np.ndarray, labels: list[int] | np.ndarray, image_id: int, height: int, width: int
) -> dict[str, Any]:
    """Target dict before any transform: boxes (K, 4) float32 xyxy pixels clipped to the image,
    boxes under 1 px wide or high dropped with their labels, labels (K,) int64."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    b[:, 0::2] = b[:, 0::2].clip(0, width)
    b[:, 1::2] = b[:, 1::2].clip(0, height)
    keep = ((b[:, 2] - b[:, 0]) >= 1) & ((b[:, 3] - b[:, 1]) >= 1)
    return {
        "boxes": b[keep],
        "labels": np.asarray(labels, np.int64).reshape(-1)[keep],
        "image_id": int(image_id),
        "orig_size": (int(height), int(width)),
    }


class CocoDetection:
    """Detection data set over a COCO instances JSON.

    COCO category ids (any, possibly sparse) map to contiguous labels 1..C in ascending id
    order; 0 is background. Crowd annotations (``iscrowd=1``) are not training targets (the
    COCO evaluator handles them as ignore regions); boxes under 1 px after clipping are dropped.

    Attributes:
        class_names: names in label order (``class_names[0]`` is label 1).
        cat_ids: ``{label: COCO category id}``, to write detections back for evaluation.
        label_of_cat: the inverse, ``{COCO category id: label}``.
        image_ids: COCO image ids in data set order (``dataset[i]`` is ``image_ids[i]``).

    ``dataset[i]`` is ``(image, target)``; before ``transform``: image HxWx3 uint8 RGB, target
    ``{"boxes": float32 (K, 4) xyxy pixels, "labels": int64 (K,), "image_id": int,
    "orig_size": (h, w)}``.
    """

    def __init__(
        self,
        root_images: str | Path,
        ann_file: str | Path,
        transform: Transform | None = None,
        skip_empty: bool = False,
    ) -> None:
        from pycocotools.coco import COCO

        self.root = Path(root_images)
        self.transform = transform
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO(str(ann_file))
        sorted_cats = sorted(self.coco.getCatIds())
        self.cat_ids: dict[int, int] = {label: cat for label, cat in enumerate(sorted_cats, start=1)}
        self.label_of_cat: dict[int, int] = {cat: label for label, cat in self.cat_ids.items()}
        self.class_names: list[str] = [self.coco.cats[c]["name"] for c in sorted_cats]
        self.image_ids: list[int] = sorted(self.coco.getImgIds())
        if skip_empty:
            self.image_ids = [i for i in self.image_ids if len(self._target(i)["labels"])]

    @property
    def num_classes(self) -> int:
        """Foreground classes C (labels are 1..C)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.image_ids)

    def _target(self, image_id: int) -> dict[str, Any]:
        info = self.coco.imgs[image_id]
        anns = sorted(self.coco.imgToAnns.get(image_id, []), key=lambda a: a["id"])
        boxes, labels = [], []
        for ann in anns:
            if ann.get("iscrowd", 0):
                continue
            x, y, w, h = ann["bbox"]
            boxes.append([x, y, x + w, y + h])
            labels.append(self.label_of_cat[ann["category_id"]])
        return make_target(boxes, labels, image_id, info["height"], info["width"])

    def load_target(self, index: int) -> dict[str, Any]:
        """The untransformed target of ``dataset[index]`` without reading the image (for box
        statistics, anchor checks)."""
        return self._target(self.image_ids[index])

    def image_path(self, index: int) -> Path:
        return self.root / self.coco.imgs[self.image_ids[index]]["file_name"]

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image = read_image_rgb(self.image_path(index))
        target = self.load_target(index)
        h, w = image.shape[:2]
        if target["orig_size"] != (h, w):  # trust the pixels over the JSON
            target = make_target(target["boxes"], target["labels"], target["image_id"], h, w)
        if self.transform is not None:
            return self.transform(image, target)
        return image, target
