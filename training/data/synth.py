"""Synthetic-shapes detection data set, written as real JPEG files + COCO JSON.

Why: the detector, the trainer, the evaluator and the exporter all need a data set that is
small, free, offline and still a real detection problem (many scales and aspect ratios, small
objects, occlusion, clutter). This module renders one, deterministically from a seed.

Box convention: continuous pixel coordinates, pixel ``i`` covers ``[i, i + 1)``; a box is
``xyxy`` with ``x2 = last visible column + 1`` (COCO ``bbox`` is ``[x1, y1, x2 - x1, y2 - y1]``).
Each box is the extent of the object's *visible* pixels after every later object is drawn;
an object placement that would leave any object less than ``min_visible`` visible (occluded
by others or cut by the image border) is rejected, so every drawn object is labelled.

Run ``python -m training.data.synth --help`` for the command line.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

#: Shape classes in label order (label = index + 1, 0 is background). ``num_classes=N``
#: uses the first N.
CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "hexagon", "arrow")

_SHIFT = 4  # fixed-point bits for cv2.fillPoly: sub-pixel vertex positions
_SPLITS = ("train", "val")


def _regular_polygon(n: int, phase: float, radius: float = 1.0) -> np.ndarray:
    a = phase + 2.0 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _shape_polygons(name: str, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """Outline of one shape in the unit square [-1, 1]^2 as (polygon (n, 2) xy, value) pairs,
    drawn in order: value 255 paints the shape, 0 cuts a hole (the ring)."""
    if name == "circle":
        return [(_regular_polygon(64, 0.0), 255)]
    if name == "square":
        return [(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64), 255)]
    if name == "triangle":
        apex = rng.uniform(-0.6, 0.6)  # isosceles to scalene
        return [(np.array([[apex, -1.0], [1.0, 1.0], [-1.0, 1.0]]), 255)]
    if name == "star":
        points = int(rng.integers(5, 7))
        outer = _regular_polygon(points, -np.pi / 2)
        inner = _regular_polygon(points, -np.pi / 2 + np.pi / points, rng.uniform(0.38, 0.52))
        return [(np.stack([outer, inner], axis=1).reshape(-1, 2), 255)]
    if name == "ring":
        return [(_regular_polygon(64, 0.0), 255), (_regular_polygon(64, 0.0, rng.uniform(0.4, 0.7)), 0)]
    if name == "cross":
        t = rng.uniform(0.28, 0.45)  # half-thickness of the arms
        xs = [-t, t, t, 1, 1, t, t, -t, -t, -1, -1, -t]
        ys = [-1, -1, -t, -t, t, t, 1, 1, t, t, -t, -t]
        return [(np.stack([xs, ys], axis=1).astype(np.float64), 255)]
    if name == "hexagon":
        return [(_regular_polygon(6, 0.0), 255)]
    if name == "arrow":
        t, head = rng.uniform(0.2, 0.4), rng.uniform(-0.1, 0.4)
        xs = [-1, head, head, 1, head, head, -1]
        ys = [-t, -t, -1, 0, 1, t, t]
        return [(np.stack([xs, ys], axis=1).astype(np.float64), 255)]
    raise ValueError(f"unknown shape {name!r}")


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _linear_ramp(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) float32 in 0..1 along a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))
    t -= t.min()
    return t / max(float(t.max()), 1e-6)


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c1 * (1.0 - t[..., None]) + c2 * t[..., None]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Textured clutter, (h, w, 3) float32 0..255: low-frequency noise, gradients, stripes or
    blurred blobs, sometimes two blended, so the detector cannot rely on a flat background."""

    def one() -> np.ndarray:
        kind = rng.integers(4)
        if kind == 0:  # coloured low-frequency noise
            k = int(rng.integers(2, 33))
            small = rng.uniform(0, 255, (k, max(2, k * w // h), 3)).astype(np.float32)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        if kind == 1:  # linear gradient
            return _mix(_random_color(rng), _random_color(rng), _linear_ramp(rng, h, w))
        if kind == 2:  # stripes, soft or hard
            period = rng.uniform(6, 80)
            theta = rng.uniform(0, np.pi)
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            phase = (xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))) * np.float32(2 * np.pi / period)
            t = 0.5 + 0.5 * np.sin(phase)
            if rng.random() < 0.5:
                t = (t > 0.5).astype(np.float32)
            return _mix(_random_color(rng), _random_color(rng), t)
        img = np.empty((h, w, 3), np.float32)  # blurred blobs
        img[:] = _random_color(rng)
        for _ in range(int(rng.integers(5, 30))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            radius = int(rng.integers(4, max(5, min(h, w) // 3)))
            cv2.circle(img, centre, radius, _random_color(rng).tolist(), -1)
        sigma = rng.uniform(4, 20)
        return cv2.GaussianBlur(img, (0, 0), sigma)

    bg = one()
    if rng.random() < 0.4:
        alpha = np.float32(rng.uniform(0.3, 0.7))
        bg = bg * alpha + one() * (1 - alpha)
    return np.clip(bg, 0, 255)


def _rasterize(
    polygons: list[tuple[np.ndarray, int]], cx: float, cy: float, w: float, h: float, angle: float
) -> tuple[np.ndarray, int, int]:
    """Anti-aliased coverage (0..255 uint8) of a scaled, rotated shape on its own canvas, and
    the canvas' top-left pixel (x0, y0) in image coordinates (may be negative)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    placed = [((p * (w / 2.0, h / 2.0)) @ rot.T + (cx, cy), v) for p, v in polygons]
    pts = np.concatenate([p for p, _ in placed])
    x0, y0 = math.floor(pts[:, 0].min()) - 1, math.floor(pts[:, 1].min()) - 1
    x1, y1 = math.ceil(pts[:, 0].max()) + 2, math.ceil(pts[:, 1].max()) + 2
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for p, v in placed:
        fixed = np.round((p - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(canvas, [fixed], v, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas, x0, y0


def render_scene(
    rng: np.random.Generator,
    size: int | tuple[int, int] = 384,
    num_classes: int = 6,
    max_objects: int = 8,
    min_object_size: float = 8.0,
    max_object_frac: float = 0.7,
    min_visible: float = 0.3,
    noise_sigma: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one scene of 1..``max_objects`` shapes on a textured background.

    Args:
        rng: the only source of randomness; the same generator state gives the same scene.
        size: side of a square image, or ``(width, height)``.
        num_classes: use the first N names of ``CLASS_NAMES``.
        min_object_size / max_object_frac: the long side of a shape is log-uniform between
            ``min_object_size`` pixels and ``max_object_frac`` of the image's short side.
        min_visible: smallest visible fraction (not occluded, inside the image) of any object.
        noise_sigma: upper bound of the per-pixel Gaussian noise added at the end.

    Returns:
        image: (H, W, 3) uint8 **BGR** (ready for ``cv2.imwrite``).
        boxes: (K, 4) float32 xyxy in pixels, the visible extent of each object.
        labels: (K,) int64 in 1..num_classes (index into ``CLASS_NAMES`` plus one).
    """
    if not 1 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"num_classes must be in 1..{len(CLASS_NAMES)}, got {num_classes}")
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    image = _background(rng, height, width)
    owner = np.full((height, width), -1, np.int16)  # index of the object that shows at each pixel
    full_area: list[int] = []  # pixels of each object's whole shape (also outside the image)
    visible: list[int] = []  # pixels of each object that still show
    rois: list[tuple[int, int, int, int]] = []
    labels: list[int] = []

    wanted = int(rng.integers(1, max_objects + 1))
    log_lo = math.log(min_object_size)
    log_hi = math.log(max(min_object_size, max_object_frac * min(width, height)))
    for _ in range(wanted * 6):
        if len(labels) == wanted:
            break
        label = int(rng.integers(num_classes)) + 1
        polygons = _shape_polygons(CLASS_NAMES[label - 1], rng)
        long_side = math.exp(rng.uniform(log_lo, log_hi))
        aspect = 1.0 if rng.random() < 0.4 else math.exp(rng.uniform(-math.log(3.0), math.log(3.0)))
        short_side = max(long_side / max(aspect, 1.0 / aspect), 0.75 * min_object_size)
        w, h = (long_side, short_side) if aspect >= 1.0 else (short_side, long_side)
        angle = rng.uniform(-np.pi, np.pi) if rng.random() < 0.6 else 0.0
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        canvas, x0, y0 = _rasterize(polygons, cx, cy, w, h, angle)

        mask_full = canvas >= 128
        area = int(mask_full.sum())
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + canvas.shape[1], width), min(y0 + canvas.shape[0], height)
        if area < 16 or ix1 <= ix0 or iy1 <= iy0:
            continue
        alpha = canvas[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        mask = mask_full[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        own_visible = int(mask.sum())
        if own_visible < min_visible * area:
            continue
        region = owner[iy0:iy1, ix0:ix1]
        covered = region[mask]
        lost = np.bincount(covered[covered >= 0], minlength=len(labels)) if labels else np.zeros(0, np.int64)
        if any(visible[k] - lost[k] < min_visible * full_area[k] for k in range(len(labels))):
            continue  # would hide an earlier object too much

        patch = image[iy0:iy1, ix0:ix1]
        under = patch[mask].mean(axis=0)
        for _try in range(10):  # keep some contrast against what lies underneath
            color = _random_color(rng)
            if np.linalg.norm(color - under) > 60:
                break
        if rng.random() < 0.4:
            fill = _mix(color, _random_color(rng), _linear_ramp(rng, iy1 - iy0, ix1 - ix0))
        else:
            fill = color
        a = alpha.astype(np.float32)[..., None] / 255.0
        image[iy0:iy1, ix0:ix1] = patch * (1.0 - a) + fill * a

        for k in range(len(labels)):
            visible[k] -= int(lost[k])
        region[mask] = len(labels)
        full_area.append(area)
        visible.append(own_visible)
        rois.append((ix0, iy0, ix1, iy1))
        labels.append(label)

    boxes = np.zeros((len(labels), 4), np.float32)
    for k, (ix0, iy0, ix1, iy1) in enumerate(rois):
        mine = owner[iy0:iy1, ix0:ix1] == k
        cols, rows = np.flatnonzero(mine.any(axis=0)), np.flatnonzero(mine.any(axis=1))
        boxes[k] = (ix0 + cols[0], iy0 + rows[0], ix0 + cols[-1] + 1, iy0 + rows[-1] + 1)

    sigma = rng.uniform(0.0, noise_sigma)
    if sigma > 0.5:
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    rgb = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1]), boxes, np.asarray(labels, np.int64)


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """One independent stream per image, so an image depends only on (seed, split, index)."""
    return np.random.default_rng([seed, _SPLITS.index(split), index])


class CocoSplitWriter:
    """One split of a COCO data set on disk: ``out_dir/{split}/*.jpg`` (JPEG at a fixed quality)
    and ``out_dir/annotations/instances_{split}.json`` (no timestamps), so that the same images give
    byte-identical files. Shared by the shapes and the clip-frame data sets."""

    def __init__(self, out_dir: Path, split: str, jpeg_quality: int = 92) -> None:
        self.out_dir, self.split, self.jpeg_quality = Path(out_dir), split, jpeg_quality
        (self.out_dir / split).mkdir(parents=True, exist_ok=True)
        (self.out_dir / "annotations").mkdir(parents=True, exist_ok=True)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add(self, file_name: str, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
            crowd: np.ndarray | None = None) -> None:  # fmt: skip
        """Write ``image`` (BGR uint8) as ``file_name`` and record its xyxy ``boxes`` (``crowd``:
        COCO ``iscrowd`` regions, ignored by training and by pycocotools)."""
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {file_name}")
        (self.out_dir / self.split / file_name).write_bytes(data.tobytes())
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "width": image.shape[1], "height": image.shape[0]})
        crowd_list = [False] * len(labels) if crowd is None else crowd.tolist()
        for (x1, y1, x2, y2), label, c in zip(boxes.tolist(), labels.tolist(), crowd_list):
            w, h = x2 - x1, y2 - y1
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [x1, y1, w, h],
                    "area": w * h,  # box area, as pycocotools computes it for detections
                    "iscrowd": int(c),
                }
            )

    def close(self, info: dict[str, Any], num_classes: int) -> Path:
        """Write the annotation file (categories 1..num_classes in ``CLASS_NAMES`` order); return its path."""
        coco = {
            "info": info,
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": [
                {"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(CLASS_NAMES[:num_classes])
            ],
        }
        ann_path = self.out_dir / "annotations" / f"instances_{self.split}.json"
        ann_path.write_text(json.dumps(coco, separators=(",", ":")))
        return ann_path


def _write_split(
    out_dir: Path, split: str, num_images: int, seed: int, jpeg_quality: int, progress: bool, scene: dict[str, Any]
) -> Path:
    """Write one split of shapes scenes; return the annotation file's path. ``scene`` holds the
    :func:`render_scene` keyword arguments."""
    from tqdm import tqdm

    writer = CocoSplitWriter(out_dir, split, jpeg_quality)
    for i in tqdm(range(num_images), desc=f"synth {split}", unit="img", disable=not progress):
        image, boxes, labels = render_scene(_image_rng(seed, split, i), **scene)
        writer.add(f"{i:06d}.jpg", image, boxes, labels)
    info = {"description": "PADet synthetic shapes", "version": "1", "seed": seed, "split": split,
            "image_size": scene["size"]}  # fmt: skip
    return writer.close(info, scene["num_classes"])


def generate_dataset(
    out_dir: str | Path,
    num_train: int,
    num_val: int,
    size: int = 384,
    seed: int = 0,
    num_classes: int = 6,
    jpeg_quality: int = 92,
    progress: bool = True,
    **scene_kwargs: Any,
) -> Path:
    """Write a train and a val split in COCO layout under ``out_dir`` and return ``out_dir``::

        out_dir/train/*.jpg  out_dir/val/*.jpg
        out_dir/annotations/instances_train.json  out_dir/annotations/instances_val.json

    Same arguments → byte-identical files (JPEG at a fixed quality, JSON without timestamps).
    Category ids are 1..num_classes in ``CLASS_NAMES`` order. ``scene_kwargs`` (e.g.
    ``max_objects``, ``min_object_size``) go to :func:`render_scene`.
    """
    out_dir = Path(out_dir)
    scene = {"size": size, "num_classes": num_classes, **scene_kwargs}
    for split, n in zip(_SPLITS, (num_train, num_val)):
        _write_split(out_dir, split, n, seed, jpeg_quality, progress, scene)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.synth",
        description=(
            "Render a synthetic-shapes detection data set (JPEG images + COCO instances JSON). "
            "Classes: " + ", ".join(CLASS_NAMES) + ". Deterministic: the same arguments give "
            "byte-identical files."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--train", type=int, default=2000, help="number of training images")
    parser.add_argument("--val", type=int, default=200, help="number of validation images")
    parser.add_argument("--size", type=int, default=384, help="image side in pixels (square images)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--classes", type=int, default=6, help=f"use the first N shape classes (1..{len(CLASS_NAMES)})"
    )
    parser.add_argument("--max-objects", type=int, default=8, help="at most this many objects per image")
    parser.add_argument("--min-object-size", type=float, default=8.0, help="smallest long side of a shape, pixels")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not 1 <= args.classes <= len(CLASS_NAMES):
        parser.error(f"--classes must be in 1..{len(CLASS_NAMES)}")
    out = generate_dataset(
        args.out,
        args.train,
        args.val,
        size=args.size,
        seed=args.seed,
        num_classes=args.classes,
        jpeg_quality=args.quality,
        progress=not args.quiet,
        max_objects=args.max_objects,
        min_object_size=args.min_object_size,
    )
    print(f"wrote {args.train} train + {args.val} val images to {out}")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train"))
