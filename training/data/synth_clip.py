"""A synthetic demo clip with known boxes: shapes that move, scale, turn and occlude each other
over a textured background. The demo runs the detector on it (no camera needed) and scores
the result against these boxes with pycocotools.

Same look and box convention as :mod:`training.data.synth` (continuous pixels, a box is the
extent of the object's visible pixels). An object less than ``min_visible`` visible in a frame
is written as a COCO ``iscrowd`` region: detecting it is neither rewarded nor punished.
Each object keeps its identity: ``track_id`` in the COCO annotations and a MOTChallenge
``gt.txt`` beside the clip, so that tracking can be scored (py-motmetrics).

    python -m training.data.synth_clip --out demo/clip.mp4 --frames 300 --seed 0

numpy + OpenCV only (no torch), deterministic by seed.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .synth import CLASS_NAMES, CocoSplitWriter, _background, _random_color, _rasterize, _shape_polygons


@dataclass
class _Mover:
    label: int
    polygons: list
    color: np.ndarray
    cx: float
    cy: float
    vx: float
    vy: float
    size: float
    aspect: float
    angle: float
    spin: float
    pulse_amp: float
    pulse_freq: float
    phase: float

    def step(self, width: int, height: int) -> None:
        """Move one frame, bouncing off the image border."""
        self.cx += self.vx
        self.cy += self.vy
        if not 0 <= self.cx <= width:
            self.vx = -self.vx
            self.cx = min(max(self.cx, 0.0), float(width))
        if not 0 <= self.cy <= height:
            self.vy = -self.vy
            self.cy = min(max(self.cy, 0.0), float(height))
        self.angle += self.spin

    def wh(self, t: int) -> tuple[float, float]:
        s = self.size * (1.0 + self.pulse_amp * math.sin(self.pulse_freq * t + self.phase))
        return s * math.sqrt(self.aspect), s / math.sqrt(self.aspect)


def _make_movers(rng: np.random.Generator, n: int, width: int, height: int, num_classes: int) -> list[_Mover]:
    short = min(width, height)
    movers = []
    for i in range(n):
        label = i % num_classes + 1 if i < num_classes else int(rng.integers(num_classes)) + 1
        speed = rng.uniform(0.5, 3.0)
        heading = rng.uniform(0, 2 * math.pi)
        movers.append(
            _Mover(
                label=label,
                polygons=_shape_polygons(CLASS_NAMES[label - 1], rng),
                color=_random_color(rng),
                cx=rng.uniform(0.1, 0.9) * width,
                cy=rng.uniform(0.1, 0.9) * height,
                vx=speed * math.cos(heading),
                vy=speed * math.sin(heading),
                size=math.exp(rng.uniform(math.log(0.06 * short), math.log(0.35 * short))),
                aspect=1.0 if rng.random() < 0.5 else math.exp(rng.uniform(-0.7, 0.7)),
                angle=rng.uniform(-math.pi, math.pi) if rng.random() < 0.5 else 0.0,
                spin=rng.uniform(-0.03, 0.03) if rng.random() < 0.5 else 0.0,
                pulse_amp=rng.uniform(0.0, 0.35),
                pulse_freq=rng.uniform(0.01, 0.05),
                phase=rng.uniform(0, 2 * math.pi),
            )
        )
    return movers


def render_clip_frames(
    num_frames: int = 300,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    num_classes: int = 6,
    num_objects: int = 7,
    min_visible: float = 0.3,
    noise_sigma: float = 4.0,
):
    """Yield ``(frame_bgr uint8 (H, W, 3), boxes float32 (K, 4) xyxy px, labels int64 (K,),
    crowd bool (K,))`` for each frame. ``crowd`` marks objects under ``min_visible`` visible."""
    for frame, boxes, labels, crowd, _, _ in render_clip_objects(num_frames, size, seed, num_classes, num_objects, min_visible, noise_sigma):
        yield frame, boxes, labels, crowd


def render_clip_objects(
    num_frames: int = 300,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    num_classes: int = 6,
    num_objects: int = 7,
    min_visible: float = 0.3,
    noise_sigma: float = 4.0,
):
    """:func:`render_clip_frames` plus each object's identity and visibility: yield ``(frame,
    boxes, labels, crowd, track_ids int64 (K,) >= 1, visibility float32 (K,) in 0..1)``."""
    width, height = size
    rng = np.random.default_rng(seed)
    background = _background(rng, height, width)
    movers = _make_movers(rng, num_objects, width, height, num_classes)
    for t in range(num_frames):
        image = background.copy()
        owner = np.full((height, width), -1, np.int16)
        areas: list[int] = []
        rois: list[tuple[int, int, int, int]] = []
        for k, m in enumerate(movers):
            w, h = m.wh(t)
            canvas, x0, y0 = _rasterize(m.polygons, m.cx, m.cy, w, h, m.angle)
            ix0, iy0 = max(x0, 0), max(y0, 0)
            ix1, iy1 = min(x0 + canvas.shape[1], width), min(y0 + canvas.shape[0], height)
            areas.append(int((canvas >= 128).sum()))
            if ix1 <= ix0 or iy1 <= iy0:
                rois.append((0, 0, 0, 0))
                continue
            alpha = canvas[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
            a = alpha.astype(np.float32)[..., None] / 255.0
            patch = image[iy0:iy1, ix0:ix1]
            image[iy0:iy1, ix0:ix1] = patch * (1.0 - a) + m.color * a
            owner[iy0:iy1, ix0:ix1][alpha >= 128] = k
            rois.append((ix0, iy0, ix1, iy1))
        boxes, labels, crowd, ids, vis = [], [], [], [], []
        for k, (ix0, iy0, ix1, iy1) in enumerate(rois):
            mine = owner[iy0:iy1, ix0:ix1] == k
            n_vis = int(mine.sum())
            if n_vis < 16:
                continue
            cols, rows = np.flatnonzero(mine.any(axis=0)), np.flatnonzero(mine.any(axis=1))
            boxes.append((ix0 + cols[0], iy0 + rows[0], ix0 + cols[-1] + 1, iy0 + rows[-1] + 1))
            labels.append(movers[k].label)
            crowd.append(n_vis < min_visible * max(areas[k], 1))
            ids.append(k + 1)
            vis.append(min(n_vis / max(areas[k], 1), 1.0))
        if noise_sigma > 0:
            image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise_sigma)
        rgb = np.clip(np.round(image), 0, 255).astype(np.uint8)
        yield (
            np.ascontiguousarray(rgb[..., ::-1]),
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int64),
            np.asarray(crowd, bool),
            np.asarray(ids, np.int64),
            np.asarray(vis, np.float32),
        )
        for m in movers:
            m.step(width, height)


def write_clip(
    out: str | Path, num_frames: int = 300, size: tuple[int, int] = (640, 480), seed: int = 0, fps: float = 25.0,
    num_classes: int = 6, progress: bool = True,
) -> tuple[Path, Path]:
    """Write ``out`` (mp4v), ``out`` with ``.json`` (COCO ground truth, image id = frame + 1,
    ``track_id`` per annotation) and ``<out stem>_gt.txt`` (MOTChallenge: frame (1-based), id,
    x, y, w, h, considered (0 for crowd), class, visibility)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {out} with the mp4v codec")
    images, anns, mot = [], [], []
    frames = render_clip_objects(num_frames, size, seed, num_classes)
    if progress:
        try:  # tqdm comes with the [train] extra; the demo's runtime-only env has no progress bar
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            frames = tqdm(frames, total=num_frames, desc=f"clip {out.name}", unit="frame")
    try:
        for t, (frame, boxes, labels, crowd, ids, vis) in enumerate(frames):
            writer.write(frame)
            images.append({"id": t + 1, "file_name": f"frame_{t:06d}", "width": size[0], "height": size[1]})
            for b, lab, c, tid, v in zip(boxes.tolist(), labels.tolist(), crowd.tolist(), ids.tolist(), vis.tolist()):
                w, h = b[2] - b[0], b[3] - b[1]
                anns.append(
                    {"id": len(anns) + 1, "image_id": t + 1, "category_id": int(lab), "bbox": [b[0], b[1], w, h],
                     "area": w * h, "iscrowd": int(c), "track_id": int(tid)}
                )
                mot.append(f"{t + 1},{tid},{b[0]:g},{b[1]:g},{w:g},{h:g},{int(not c)},{lab},{v:.4f}\n")
    finally:
        writer.release()
    gt = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASS_NAMES[:num_classes])],
        "info": {"description": f"PADet synthetic demo clip, seed {seed}", "fps": fps},
    }
    gt_path = out.with_suffix(".json")
    gt_path.write_text(json.dumps(gt))
    mot_gt_path(out).write_text("".join(mot))
    return out, gt_path


#: clip seeds that benchmarks and the demo score on (``bench_clip`` seeds 0-4, with room to spare):
#: a training set of clip frames must not come from these.
EVAL_CLIP_SEEDS = range(0, 100)


def generate_clip_dataset(
    out_dir: str | Path,
    num_train: int,
    num_val: int,
    seed: int = 1000,
    frames_per_clip: int = 20,
    frame_stride: int = 5,
    size: tuple[int, int] = (640, 480),
    num_classes: int = 6,
    jpeg_quality: int = 92,
    progress: bool = True,
) -> Path:
    """Frames of demo-like clips as a COCO data set (``out_dir/{train,val}/*.jpg`` +
    ``out_dir/annotations/instances_{split}.json``), for training on what the demo shows:
    the clip's object count, occlusions, pulsing and turning shapes and noise.

    Each clip (seeds ``seed``, ``seed + 1``, ...; train's clips first, then val's, so the splits
    share no clip) gives ``frames_per_clip`` frames, every ``frame_stride``-th. Objects under the
    clip's visibility limit are ``iscrowd`` (ignored by training and by pycocotools). Seeds in
    :data:`EVAL_CLIP_SEEDS` are refused: those clips are what the model is scored on.
    """
    if frames_per_clip < 1 or frame_stride < 1:
        raise ValueError(f"frames_per_clip and frame_stride must be >= 1, got {frames_per_clip}, {frame_stride}")
    n_clips = {split: -(-n // frames_per_clip) for split, n in (("train", num_train), ("val", num_val))}
    first = {"train": seed, "val": seed + n_clips["train"]}
    last = seed + n_clips["train"] + n_clips["val"] - 1
    if n_clips["train"] + n_clips["val"] and not (last < EVAL_CLIP_SEEDS.start or seed >= EVAL_CLIP_SEEDS.stop):
        raise ValueError(f"clip seeds {seed}..{last} overlap the evaluation clips' seeds "
                         f"{EVAL_CLIP_SEEDS.start}..{EVAL_CLIP_SEEDS.stop - 1}")  # fmt: skip
    from tqdm import tqdm

    for split, n in (("train", num_train), ("val", num_val)):
        writer = CocoSplitWriter(Path(out_dir), split, jpeg_quality)
        bar = tqdm(total=n, desc=f"clip frames {split}", unit="img", disable=not progress)
        for c in range(n_clips[split]):
            clip_seed = first[split] + c
            frames = render_clip_objects(frames_per_clip * frame_stride, size, clip_seed, num_classes)
            for t, (frame, boxes, labels, crowd, _, _) in enumerate(frames):
                if len(writer.images) == n:
                    break  # the last clip is cut short: no frames rendered past the count
                if t % frame_stride == 0:
                    writer.add(f"s{clip_seed:05d}_f{t:04d}.jpg", frame, boxes, labels, crowd)
                    bar.update(1)
        bar.close()
        info = {"description": "PADet demo-like clip frames", "seed": seed, "split": split,
                "frames_per_clip": frames_per_clip, "frame_stride": frame_stride}  # fmt: skip
        writer.close(info, num_classes)
    return Path(out_dir)


def mot_gt_path(clip: str | Path) -> Path:
    """Where :func:`write_clip` puts the MOTChallenge ground truth of ``clip``: ``<stem>_gt.txt``."""
    clip = Path(clip)
    return clip.with_name(f"{clip.stem}_gt.txt")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output video (.mp4); ground truth goes next to it as .json")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--classes", type=int, default=6, help=f"first N of {', '.join(CLASS_NAMES)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    video, gt = write_clip(args.out, args.frames, (args.width, args.height), args.seed, args.fps, args.classes)
    print(f"wrote {video}, {gt} and {mot_gt_path(video)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
