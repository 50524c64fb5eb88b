"""Evaluate a PADet: detections → COCO results JSON → COCO AP with pycocotools (and VOC mAP).

``python -m training.evaluate --checkpoint runs/x/best.pth --data DIR [--split val]``

COCO metrics always come from pycocotools' ``COCOeval`` (the number papers report), never from a
re-implementation. VOC07 11-point and area mAP (``--format voc``) are computed here, because
pycocotools has no VOC07 mode; they read the same COCO-format ground truth, where VOC
"difficult" objects are ``iscrowd=1`` (:func:`training.data.voc.voc_to_coco`) and are ignored.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

if __name__ == "__main__":  # before `import torch`: a missing [train] extra is one line, not a traceback
    from padet_sdk.extras import run_entry_module

    raise SystemExit(run_entry_module("training.evaluate", extras="train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from padet_sdk.boxes import box_iou  # noqa: E402

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
FORMATS = ("coco", "voc")


class DataError(RuntimeError):
    """A data directory does not hold the split asked for."""


# ------------------------------------------------------------------------------ data sets
def open_dataset(data: str | Path, split: str, fmt: str = "coco", transform: Any = None):
    """The ``split`` of a data directory as a :class:`~training.data.CocoDetection` (COCO layout:
    ``DIR/{split}/`` images + ``DIR/annotations/instances_{split}.json``, what
    ``python -m training.data.synth`` writes) or a :class:`~training.data.VOCDetection`
    (``fmt="voc"``: ``DIR/JPEGImages``, ``DIR/Annotations``, ``DIR/ImageSets/Main/{split}.txt``).
    Raises :class:`DataError` naming the missing file."""
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"data directory not found: {data}")
    if fmt == "voc":
        from training.data import VOCDetection

        split_file = data / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file() or not (data / "Annotations").is_dir():
            raise DataError(
                f"{data} is not a VOC directory with an image set {split!r}: expected {split_file} and "
                f"{data / 'Annotations'}/*.xml"
            )
        ds = VOCDetection(data, split, transform=transform)
    elif fmt == "coco":
        from training.data import CocoDetection

        ann = data / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            raise DataError(
                f"no annotations for split {split!r}: expected {ann} (COCO layout: {data}/{split}/*.jpg + "
                f"{data}/annotations/instances_{split}.json; make a synthetic set with "
                f"`python -m training.data.synth --out {data}`)"
            )
        ds = CocoDetection(data / split, ann, transform=transform)
    else:
        raise ValueError(f"unknown data format {fmt!r}; choose one of {FORMATS}")
    if len(ds) == 0:
        raise DataError(f"split {split!r} of {data} has no images")
    return ds


def with_transform(dataset: Any, transform: Any) -> Any:
    """A shallow copy of a data set with another ``transform`` (the annotations are shared)."""
    ds = copy.copy(dataset)
    ds.transform = transform
    return ds


def ground_truth(dataset: Any):
    """The data set's ground truth as a pycocotools ``COCO`` (a VOC set is converted, difficult
    objects becoming ``iscrowd=1``)."""
    if hasattr(dataset, "coco"):
        return dataset.coco
    from pycocotools.coco import COCO

    from training.data import voc_to_coco

    with tempfile.TemporaryDirectory() as tmp:
        path = voc_to_coco(dataset.root, dataset.image_set, Path(tmp) / "gt.json", class_names=dataset.class_names)
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))


def _as_coco(gt: Any):
    from pycocotools.coco import COCO

    if isinstance(gt, COCO):
        return gt
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(gt, dict):
            coco = COCO()
            coco.dataset = copy.deepcopy(gt)
            coco.createIndex()
            return coco
        return COCO(str(gt))


def _as_detections(detections: Any) -> list[dict[str, Any]]:
    if isinstance(detections, (str, Path)):
        return json.loads(Path(detections).read_text())
    return list(detections)


# ------------------------------------------------------------------------------ metrics
def coco_eval(gt: Any, detections: Any, verbose: bool = False) -> dict[str, float]:
    """COCO box metrics (``COCO_METRICS``: AP, AP50, AP75, APs/m/l, AR…) by pycocotools.

    Args:
        gt: a ``COCO`` object, a COCO instances dict, or the path of one.
        detections: COCO results (list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
            "score"}``, pixels) or the path of such a JSON.
        verbose: print pycocotools' summary table.
    An empty result list scores 0 (pycocotools itself refuses one).
    """
    from pycocotools.cocoeval import COCOeval

    gt = _as_coco(gt)
    dets = _as_detections(detections)
    if not dets:
        return {k: 0.0 for k in COCO_METRICS}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dt = gt.loadRes(copy.deepcopy(dets))  # loadRes writes ids/areas into the dicts
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if verbose:  # the summary table, without pycocotools' progress chatter
        print("".join(line for line in out.getvalue().splitlines(True) if line.lstrip().startswith("Average")), end="")
    return {k: float(v) for k, v in zip(COCO_METRICS, ev.stats)}


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = True) -> float:
    """Average precision from a precision/recall curve, as the VOC devkit computes it:
    VOC2007's 11-point interpolation (``use_07_metric``) or the area under the monotone
    precision envelope (VOC2010+)."""
    if use_07_metric:
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            p = precision[recall >= t]
            ap += (p.max() if p.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_map(gt: Any, detections: Any, iou_threshold: float = 0.5, use_07_metric: bool = True) -> dict[str, Any]:
    """PASCAL VOC mAP over COCO-format ground truth and results.

    Per class, detections by descending score are true positives when their best-IoU ground
    truth (IoU > ``iou_threshold``) is not yet taken; ``iscrowd`` ground truths are "difficult":
    a detection on one counts neither way and they are not in the recall denominator. Classes
    without non-difficult ground truth are left out of the mean. Returns ``{"mAP": float,
    "per_class": {category id: AP}}``.
    """
    gt = _as_coco(gt)
    dets = _as_detections(detections)
    per_class: dict[int, float] = {}
    for cat in sorted(gt.getCatIds()):
        boxes: dict[int, np.ndarray] = {}
        difficult: dict[int, np.ndarray] = {}
        npos = 0
        for ann in gt.loadAnns(gt.getAnnIds(catIds=[cat])):
            x, y, w, h = ann["bbox"]
            boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
            difficult.setdefault(ann["image_id"], []).append(bool(ann.get("iscrowd", 0)))
            npos += not ann.get("iscrowd", 0)
        if npos == 0:
            continue
        boxes = {k: np.asarray(v, np.float64) for k, v in boxes.items()}
        difficult = {k: np.asarray(v) for k, v in difficult.items()}
        taken = {k: np.zeros(len(v), bool) for k, v in boxes.items()}
        cat_dets = sorted((d for d in dets if d["category_id"] == cat), key=lambda d: -d["score"])
        tp = np.zeros(len(cat_dets))
        fp = np.zeros(len(cat_dets))
        for i, d in enumerate(cat_dets):
            g = boxes.get(d["image_id"])
            if g is None:
                fp[i] = 1
                continue
            x, y, w, h = d["bbox"]
            iou = box_iou(np.array([[x, y, x + w, y + h]], np.float64), g)[0]
            j = int(iou.argmax())
            if iou[j] > iou_threshold:
                if difficult[d["image_id"]][j]:
                    continue
                if not taken[d["image_id"]][j]:
                    tp[i] = taken[d["image_id"]][j] = 1
                else:
                    fp[i] = 1
            else:
                fp[i] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        per_class[cat] = voc_ap(recall, precision, use_07_metric)
    return {"mAP": float(np.mean(list(per_class.values()))) if per_class else 0.0, "per_class": per_class}


# ------------------------------------------------------------------------------ running a model
def detections_to_coco(results: list[dict[str, torch.Tensor]], image_ids: Sequence[int], cat_ids: dict[int, int]) -> list[dict[str, Any]]:
    """``model.postprocess`` output (xyxy pixels, labels 1..C) → COCO results (xywh pixels,
    category ids through ``cat_ids``)."""
    out = []
    for r, image_id in zip(results, image_ids):
        boxes = r["boxes"].tolist()
        for (x1, y1, x2, y2), score, label in zip(boxes, r["scores"].tolist(), r["labels"].tolist()):
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(cat_ids[int(label)]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return out


def eval_loader(cfg: Any, dataset: Any, batch_size: int = 8, workers: int = 0, num_images: int | None = None):
    """A loader over ``dataset`` (its first ``num_images``) with the evaluation preprocessing of
    network config ``cfg`` (resize, normalise), whatever the data set's own transform."""
    from torch.utils.data import DataLoader, Subset

    from training.data import build_eval_transform, detection_collate

    ds = with_transform(dataset, build_eval_transform(cfg.input_size, cfg.mean, cfg.std, cfg.pixel_order))
    if num_images is not None:
        ds = Subset(ds, range(min(num_images, len(ds))))
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=detection_collate)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Any,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    workers: int = 0,
    progress: bool = True,
    postprocess: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the model and its post-processing on every image of ``dataset`` (see
    :func:`eval_loader`) → COCO results. ``postprocess`` overrides the config's post-processing
    values (fields of :class:`~padet_sdk.options.PostprocessOptions`, e.g. ``conf``)."""
    from tqdm import tqdm

    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = eval_loader(model.cfg, dataset, batch_size, workers)
    was_training = model.training
    model.eval()
    dets: list[dict[str, Any]] = []
    try:
        for images, targets in tqdm(loader, desc="eval", unit="batch", disable=not progress, leave=False):
            outputs = model(images.to(device, non_blocking=True))
            sizes = [tuple(t["orig_size"]) for t in targets]
            results = model.postprocess(outputs, image_sizes=sizes, **(postprocess or {}))
            dets += detections_to_coco(results, [t["image_id"] for t in targets], dataset.cat_ids)
    finally:
        model.train(was_training)
    return dets


def evaluate(
    model: torch.nn.Module,
    dataset: Any,
    *,
    results_json: str | Path | None = None,
    voc: bool = False,
    verbose: bool = False,
    **predict_kwargs: Any,
) -> dict[str, Any]:
    """Detect on ``dataset`` and score with pycocotools. Returns the :data:`COCO_METRICS` and
    ``num_detections``; with ``voc`` also ``VOC07_mAP`` (11-point) and ``VOC_mAP`` (area), both
    at IoU 0.5. ``results_json`` keeps the COCO results file; ``predict_kwargs`` (batch_size,
    device, workers, progress, postprocess) go to :func:`predict`."""
    dets = predict(model, dataset, **predict_kwargs)
    if results_json is not None:
        Path(results_json).parent.mkdir(parents=True, exist_ok=True)
        Path(results_json).write_text(json.dumps(dets))
    gt = ground_truth(dataset)
    metrics: dict[str, Any] = coco_eval(gt, dets, verbose=verbose)
    metrics["num_detections"] = len(dets)
    if voc:
        metrics["VOC07_mAP"] = voc_map(gt, dets, use_07_metric=True)["mAP"]
        metrics["VOC_mAP"] = voc_map(gt, dets, use_07_metric=False)["mAP"]
    return metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, in a stable order."""
    keys = [k for k in (*COCO_METRICS[:6], "VOC07_mAP", "VOC_mAP", "num_detections") if k in metrics]
    return "\n".join(f"{k:>15s}: {metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k:>15s}: {metrics[k]}" for k in keys)


def checkpoint_data_parser(prog: str, description: str, split_default: str | None, split_help: str) -> argparse.ArgumentParser:
    """The options every "checkpoint on a data split" command shares (evaluate, anchor_stats)."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path, help="data directory (COCO layout, or VOC with --format voc)")
    p.add_argument("--split", default=split_default, help=split_help)
    p.add_argument("--format", choices=FORMATS, default="coco")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = checkpoint_data_parser(
        "python -m training.evaluate",
        "COCO AP (pycocotools) of a PADet checkpoint on a data split; VOC mAP with --format voc.",
        None, "split / image set (default: val for coco, test for voc)",
    )
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--results", type=Path, default=None, help="COCO results JSON (default: next to the checkpoint)")
    p.add_argument("--metrics-json", type=Path, default=None, help="also write the metrics here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from .checkpoint import CheckpointError, model_from_checkpoint

    split = args.split or ("test" if args.format == "voc" else "val")
    try:
        model, _ = model_from_checkpoint(args.checkpoint, args.device)
        dataset = open_dataset(args.data, split, args.format)
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = args.results or args.checkpoint.with_name(f"{args.checkpoint.stem}_{split}_detections.json")
    metrics = evaluate(
        model,
        dataset,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        progress=not args.quiet,
        results_json=results,
        voc=args.format == "voc",
        verbose=True,
    )
    print(f"{args.checkpoint} on {args.data} [{split}], {len(dataset)} images; detections: {results}")
    print(format_metrics(metrics))
    if args.metrics_json:
        args.metrics_json.write_text(json.dumps(metrics, indent=2))
    return 0
