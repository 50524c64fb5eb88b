"""PASCAL VOC detection data set (any year: ``root/JPEGImages``, ``root/Annotations``,
``root/ImageSets/Main/{image_set}.txt``) and a VOC → COCO JSON converter, so the one COCO
evaluator serves both.

VOC boxes are 1-based inclusive pixel indices; here they become continuous 0-based xyxy
(``x1 = xmin - 1``, ``x2 = xmax``), the convention of every data set in this package.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence


from .coco import Transform, make_target, read_image_rgb

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def parse_voc_xml(path: str | Path) -> dict[str, Any]:
    """One VOC annotation file as ``{"filename", "width", "height", "objects"}``; each object is
    ``{"name", "box": [x1, y1, x2, y2] continuous 0-based pixels, "difficult": bool}``.
    ``width``/``height`` are 0 when the XML has no ``<size>``."""
    root = ET.parse(str(path)).getroot()
    size = root.find("size")
    width = int(float(size.findtext("width", "0"))) if size is not None else 0
    height = int(float(size.findtext("height", "0"))) if size is not None else 0
    objects = []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        xmin, ymin, xmax, ymax = (float(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(
            {
                "name": obj.findtext("name", "").strip(),
                "box": [xmin - 1.0, ymin - 1.0, xmax, ymax],
                "difficult": bool(int(float(obj.findtext("difficult", "0") or 0))),
            }
        )
    return {"filename": root.findtext("filename", ""), "width": width, "height": height, "objects": objects}


class VOCDetection:
    """PASCAL VOC detection data set with the same output as
    :class:`training.data.coco.CocoDetection`.

    Labels are 1..C in ``class_names`` order (default the 20 VOC classes); objects of other
    classes are ignored. ``use_difficult=False`` drops "difficult" objects from the targets (the
    VOC protocol ignores them). Image ids are 1..N in image-set order (the VOC names, e.g.
    ``2007_000027``, are in ``ids``), the same ids :func:`voc_to_coco` writes.

    ``dataset[i]`` is ``(image, target)``; before ``transform``: image HxWx3 uint8 RGB, target
    ``{"boxes": float32 (K, 4) xyxy pixels, "labels": int64 (K,), "image_id": int,
    "orig_size": (h, w)}``.
    """

    def __init__(
        self,
        root: str | Path,
        image_set: str = "trainval",
        transform: Transform | None = None,
        class_names: Sequence[str] | None = None,
        use_difficult: bool = False,
    ) -> None:
        self.root = Path(root)
        self.image_set = image_set
        self.transform = transform
        self.use_difficult = use_difficult
        self.class_names: list[str] = list(class_names if class_names is not None else VOC_CLASSES)
        self.label_of_name = {name: label for label, name in enumerate(self.class_names, start=1)}
        self.cat_ids: dict[int, int] = {label: label for label in range(1, len(self.class_names) + 1)}
        split_file = self.root / "ImageSets" / "Main" / f"{image_set}.txt"
        self.ids: list[str] = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        self.image_ids: list[int] = list(range(1, len(self.ids) + 1))
        self.records = [parse_voc_xml(self.root / "Annotations" / f"{i}.xml") for i in self.ids]

    @property
    def num_classes(self) -> int:
        """Foreground classes C (labels are 1..C)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> Path:
        return self.root / "JPEGImages" / f"{self.ids[index]}.jpg"

    def image_size(self, index: int) -> tuple[int, int]:
        """(height, width) from the XML, or from the image file when the XML lacks it."""
        rec = self.records[index]
        if rec["width"] > 0 and rec["height"] > 0:
            return rec["height"], rec["width"]
        h, w = read_image_rgb(self.image_path(index)).shape[:2]
        return h, w

    def objects(self, index: int, include_difficult: bool) -> list[dict[str, Any]]:
        """The image's objects of known classes, with ``label`` added."""
        out = []
        for obj in self.records[index]["objects"]:
            label = self.label_of_name.get(obj["name"])
            if label is not None and (include_difficult or not obj["difficult"]):
                out.append({**obj, "label": label})
        return out

    def load_target(self, index: int, size: tuple[int, int] | None = None) -> dict[str, Any]:
        """The untransformed target of ``dataset[index]``; ``size`` (h, w) saves reading the
        image when the XML has no size."""
        h, w = size if size is not None else self.image_size(index)
        objs = self.objects(index, self.use_difficult)
        return make_target([o["box"] for o in objs], [o["label"] for o in objs], self.image_ids[index], h, w)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image = read_image_rgb(self.image_path(index))
        target = self.load_target(index, image.shape[:2])
        if self.transform is not None:
            return self.transform(image, target)
        return image, target


def voc_to_coco(
    root: str | Path,
    image_set: str,
    out_json: str | Path,
    class_names: Sequence[str] | None = None,
    difficult_as_crowd: bool = True,
) -> Path:
    """Write a VOC image set as a COCO instances JSON and return its path.

    Image ids and category ids match :class:`VOCDetection` (1..N, and label = category id);
    ``file_name`` is relative to ``root/JPEGImages``, so ``CocoDetection(root / "JPEGImages",
    out_json)`` reads the same set. Difficult objects become ``iscrowd=1`` (the COCO evaluator
    then neither rewards nor penalises detections on them, as VOC's protocol does) or, with
    ``difficult_as_crowd=False``, are left out. ``area`` is the box area.
    """
    ds = VOCDetection(root, image_set, class_names=class_names, use_difficult=True)
    images, annotations = [], []
    for index, image_id in enumerate(ds.image_ids):
        h, w = ds.image_size(index)
        images.append({"id": image_id, "file_name": f"{ds.ids[index]}.jpg", "width": w, "height": h})
        for obj in ds.objects(index, include_difficult=difficult_as_crowd):
            x1, y1, x2, y2 = obj["box"]
            x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj["label"],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(obj["difficult"]),
                }
            )
    coco = {
        "info": {"description": f"VOC {image_set} converted by training.data.voc.voc_to_coco"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": label, "name": name} for label, name in enumerate(ds.class_names, start=1)],
    }
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(coco))
    return out_json
