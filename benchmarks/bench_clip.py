"""Clip AP50 of a model file on the synthetic demo clips, and what a user sees at its default score.

  python benchmarks/bench_clip.py --model padet_sdk/models/padet_shapes.xml --seeds 0 1 2 3 4

For each seed, renders the demo clip (``training.data.synth_clip``, 300 frames 640x480, the clip
``make demo`` shows for seed 0) and runs the model through ``padet_sdk.Detector`` frame by frame:

- AP50 / AP (pycocotools) of all detections at a low score threshold (--eval-conf, 0.01), as
  evaluation does everywhere;
- at the model's default score threshold (``metadata.postprocess.conf``, the calibrated one)
  what is drawn: boxes per frame, the share of known objects found (a box of the right class at
  IoU >= 0.5), objects found with the wrong class only, and objects carrying boxes of two or more
  classes (IoU >= 0.5 each), with and without class-agnostic suppression for display.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def agnostic_suppress(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy class-agnostic NMS (best score first)."""
    order = np.argsort(-scores)
    keep: list[int] = []
    for i in order:
        if all(iou_matrix(boxes[i : i + 1], boxes[[k]])[0, 0] <= iou for k in keep):
            keep.append(int(i))
    return np.asarray(keep, np.int64)


def coco_ap(gt_json: Path, results: list[dict]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


def display_stats(frames_gt: list, frames_det: list, agnostic_iou: float | None) -> dict[str, float]:
    """What is drawn at the default threshold, against the known (non-crowd) objects."""
    n_obj = found = wrong_only = multi = n_box = 0
    for (gb, gl, crowd), (db, dl, ds) in zip(frames_gt, frames_det):
        if agnostic_iou is not None and len(db):
            k = agnostic_suppress(db, ds, agnostic_iou)
            db, dl, ds = db[k], dl[k], ds[k]
        n_box += len(db)
        ious = iou_matrix(gb, db)
        for j in range(len(gb)):
            if crowd[j]:
                continue
            n_obj += 1
            hits = ious[j] >= 0.5
            classes = set(dl[hits].tolist())
            if gl[j] in classes:
                found += 1
            elif classes:
                wrong_only += 1
            if len(classes) >= 2:
                multi += 1
    return {"boxes_per_frame": n_box / len(frames_gt), "objects": n_obj, "found_right_class": found / n_obj,
            "wrong_class_only": wrong_only / n_obj, "several_classes_on_one_object": multi / n_obj}  # fmt: skip


def run_seed(models: list[str], seed: int, frames: int, eval_conf: float, tmp: Path, agnostic_iou: float) -> dict:
    """Every model on the clip of ``seed`` (rendered and encoded once, read back as the demo does)."""
    import cv2

    from padet_sdk import Detector
    from training.data.synth_clip import render_clip_frames, write_clip

    clip, gt_json = write_clip(tmp / f"clip{seed}.mp4", num_frames=frames, seed=seed, progress=False)
    dets = [Detector(m, conf=eval_conf) for m in models]
    # the default a user gets (conf=eval_conf overrides it here)
    shown = [d.metadata.postprocess.conf for d in dets]
    results: list[list[dict]] = [[] for _ in models]
    frames_det: list[list] = [[] for _ in models]
    frames_gt = []
    cap = cv2.VideoCapture(str(clip))
    try:
        for t, (_, boxes, labels, crowd) in enumerate(render_clip_frames(frames, seed=seed)):
            ok, frame = cap.read()
            if not ok:
                break
            frames_gt.append((boxes.astype(np.float64), labels, crowd))
            for k, det in enumerate(dets):
                d = det(frame)
                b, s = np.asarray(d.boxes, np.float64).reshape(-1, 4), np.asarray(d.scores, np.float64)
                lab = np.asarray(d.class_ids, np.int64) + 1
                for (x1, y1, x2, y2), sc, c in zip(b.tolist(), s.tolist(), lab.tolist()):
                    results[k].append({"image_id": t + 1, "category_id": c, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": sc})
                keep = s >= shown[k]
                frames_det[k].append((b[keep], lab[keep], s[keep]))
    finally:
        cap.release()
        for d in dets:
            d.close()
    out = {}
    for k, m in enumerate(models):
        ap50, ap = coco_ap(gt_json, results[k])
        out[m] = {"seed": seed, "AP50": ap50, "AP": ap, "default_conf": shown[k],
                  "display": display_stats(frames_gt, frames_det[k], None),
                  "display_agnostic": display_stats(frames_gt, frames_det[k], agnostic_iou)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_clip", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", required=True, help="model files (.xml/.onnx)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--eval-conf", type=float, default=0.01, help="score threshold for AP (default 0.01)")
    p.add_argument("--agnostic-iou", type=float, default=0.7, help="IoU of the class-agnostic display suppression")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    from padet_sdk.cpu import describe_cpu

    out = {"cpu": describe_cpu(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="padet_clip_") as tmp:
        per_seed = [run_seed(args.model, s, args.frames, args.eval_conf, Path(tmp), args.agnostic_iou) for s in args.seeds]
    for model in args.model:
        rows = [r[model] for r in per_seed]
        mean = float(np.mean([r["AP50"] for r in rows]))
        out["models"][model] = {"seeds": rows, "mean_AP50": mean}
        print(f"{model}: default conf {rows[0]['default_conf']:.3f}")
        for r in rows:
            d, a = r["display"], r["display_agnostic"]
            print(f"  seed {r['seed']}: AP50 {r['AP50']:.3f} AP {r['AP']:.3f} | shown: {d['boxes_per_frame']:.1f} "
                  f"boxes/frame, right class {d['found_right_class']:.3f}, wrong class only {d['wrong_class_only']:.3f}, "
                  f"several classes {d['several_classes_on_one_object']:.3f} (agnostic: "
                  f"{a['several_classes_on_one_object']:.3f}, right {a['found_right_class']:.3f})")  # fmt: skip
        print(f"  mean AP50 over seeds {args.seeds}: {mean:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
