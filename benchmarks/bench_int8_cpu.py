"""INT8 on the CPU this runs on: every onnxruntime scheme and NNCF's overflow-fix settings,
against FP32, side by side in one run.

  python benchmarks/bench_int8_cpu.py                       # the embedded model, generated shapes data
  python benchmarks/bench_int8_cpu.py --model m.onnx --data data/coco --split val2017 --calib-split train2017
  python benchmarks/bench_int8_cpu.py --stage quantize --out runs/int8   # on one machine ...
  python benchmarks/bench_int8_cpu.py --stage eval --out runs/int8       # ... then score on another CPU

For each INT8 file it prints AP50 through ``padet_sdk.Detector`` (pycocotools, the same images as
FP32), the change against FP32 in AP50 points, the correlation and mean absolute difference of
the raw class scores against FP32, and the median network latency at batch 1. Quantizing does not
depend on the CPU (calibration runs in FP32); running does: without VNNI, u8 x s8 pairs are summed
in a saturating int16. ``--stage eval`` therefore lets one set of files be scored on several CPUs
(or under ``qemu-x86_64 -cpu EPYC-Rome``, which emulates an AVX2-only CPU; its latencies mean
nothing and the header says EMULATED).

Needs the runtime plus pycocotools; quantizing also needs onnx and nncf (``pip install ".[export]"``).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_ONNX = ROOT / "padet_sdk" / "models" / "padet_shapes.onnx"
NNCF_FIXES = ("first_layer_only", "enable", "disable")


def ensure_data(data: Path) -> None:
    """Render the embedded model's data (its recipe: 3,000 + 300 images at 192 px, seed 0) if absent."""
    if (data / "annotations" / "instances_val.json").is_file():
        return
    from training.data.synth import main as synth

    synth(["--out", str(data), "--train", "3000", "--val", "300", "--size", "192", "--seed", "0", "--quiet"])


def quantize_all(model: Path, data: Path, calib_split: str, subset: int, out: Path) -> dict[str, dict]:
    """Every INT8 variant of ``model`` under ``out``; returns {label: {file, backend, scheme}}."""
    import openvino as ov

    from export.quantize import ORT_SCHEMES, find_images, quantize_onnxruntime, quantize_openvino
    from padet_sdk.model_file import read_metadata
    from padet_sdk.ov_extensions import read_onnx_with_extensions

    meta = read_metadata(model)
    calib = find_images(data / calib_split, subset)
    files = {"FP32 onnxruntime": {"file": str(model), "backend": "onnxruntime"},
             "FP32 OpenVINO": {"file": str(model), "backend": "openvino"}}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        for name in ORT_SCHEMES:
            path = quantize_onnxruntime(model, meta, calib, out / f"ort_{name}.onnx", scheme=name, target_cpu="avx2")
            files[f"ORT {name}"] = {"file": str(path), "backend": "onnxruntime"}
        for fix in NNCF_FIXES:
            ov_model = read_onnx_with_extensions(ov.Core(), model)
            path = quantize_openvino(ov_model, meta, calib, out / f"nncf_{fix}.xml", overflow_fix=fix, target_cpu="avx2")
            files[f"NNCF overflow_fix={fix}"] = {"file": str(path), "backend": "openvino"}
    (out / "files.json").write_text(json.dumps(files, indent=1))
    return files


def evaluate(label: str, spec: dict, data: Path, split: str, images: int, corr_images: int,
             ref_scores: np.ndarray | None, latency_runs: int) -> tuple[dict, np.ndarray]:
    """AP50, raw class scores of the first ``corr_images`` images, median latency of one file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from tqdm import tqdm

    from padet_sdk import Detector

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(data / "annotations" / f"instances_{split}.json"))
    ids = sorted(gt.getImgIds())[:images]
    cat_of = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    det = Detector(spec["file"], backend=spec["backend"], **spec.get("detector_kwargs", {}))
    results, scores = [], []
    try:
        for k, image_id in enumerate(tqdm(ids, desc=label, unit="img", leave=False, file=sys.stderr)):
            frame = cv2.imread(str(data / split / gt.imgs[image_id]["file_name"]))
            if k < corr_images:
                outs = det._infer(det.preprocess([frame]))
                scores.append(outs[list(det.metadata.outputs).index("cls_scores")][0])
            for d in det(frame):
                x1, y1, x2, y2 = d.box
                results.append({"image_id": image_id, "category_id": cat_of[d.class_name],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": d.score})  # fmt: skip
        blob = det.preprocess([frame])
        det._infer(blob)
        times = []
        for _ in range(latency_runs):
            t = time.perf_counter()
            det._infer(blob)
            times.append((time.perf_counter() - t) * 1e3)
    finally:
        det.close()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results) if results else COCO(), "bbox")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cls = np.stack(scores)
    row = {"variant": label, "AP50": float(ev.stats[1]), "AP": float(ev.stats[0]), "latency_ms": float(np.median(times))}
    if ref_scores is not None:
        row["score_corr"] = float(np.corrcoef(ref_scores.ravel(), cls.ravel())[0, 1])
        row["score_mad"] = float(np.abs(ref_scores - cls).mean())
    return row, cls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=EMBEDDED_ONNX, help="FP32 .onnx to quantize (default: the embedded model's)")
    p.add_argument("--data", type=Path, default=ROOT / "runs" / "shapes",
                   help="COCO-layout data (default runs/shapes, rendered with the embedded model's recipe if absent)")
    p.add_argument("--split", default="val", help="split to score (default val)")
    p.add_argument("--calib-split", default="train", help="split whose images calibrate INT8 (default train)")
    p.add_argument("--subset-size", type=int, default=300, help="calibration images (default 300)")
    p.add_argument("--images", type=int, default=300, help="images scored per variant (default 300)")
    p.add_argument("--corr-images", type=int, default=32, help="images whose raw class scores are compared (default 32)")
    p.add_argument("--latency-runs", type=int, default=50, help="timed batch-1 inferences per variant (default 50)")
    p.add_argument("--stage", choices=("all", "quantize", "eval"), default="all")
    p.add_argument("--only", nargs="*", metavar="LABEL", help="eval: score only variants whose label contains one of these")
    p.add_argument("--reuse-fp32", action="store_true",
                   help="eval: take the FP32 rows and scores from an earlier eval in --out (FP32 does not depend "
                        "on the CPU, and is ~10x slower than INT8 under an emulator)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_int8")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)

    from padet_sdk.cpu import describe_cpu

    if args.stage in ("all", "quantize"):
        ensure_data(args.data)
        files = quantize_all(args.model, args.data, args.calib_split, args.subset_size, args.out)
        if args.stage == "quantize":
            print(f"wrote {len(files)} variants to {args.out}")
            return 0
    else:
        files = json.loads((args.out / "files.json").read_text())
    header = f"CPU: {describe_cpu()}"
    print(header, flush=True)
    rows, ref = [], {}
    cache = args.out / f"fp32_{args.split}_{args.images}_{args.corr_images}"
    for label, spec in files.items():
        engine = spec["backend"]
        if label.startswith("FP32") and args.reuse_fp32 and cache.with_suffix(".npz").is_file():
            row = json.loads(cache.with_suffix(".json").read_text())[label]
            row["variant"] = f"{label} (from an earlier run: {row.pop('cpu', '?')})"
            ref[engine] = np.load(cache.with_suffix(".npz"))[engine]
            rows.append(row)
        elif label.startswith("FP32") or not args.only or any(o in label for o in args.only):
            row, cls = evaluate(label, spec, args.data, args.split, args.images, args.corr_images, ref.get(engine),
                                args.latency_runs)
            if label.startswith("FP32"):
                ref[engine] = cls
            rows.append(row)
            print(f"  {label}: AP50 {row['AP50']:.4f}", file=sys.stderr, flush=True)
    fp32 = {r["variant"].split(" (")[0]: r for r in rows if r["variant"].startswith("FP32")}
    if not args.reuse_fp32:
        np.savez(cache.with_suffix(".npz"), **ref)
        cache.with_suffix(".json").write_text(json.dumps({k: {**v, "cpu": header} for k, v in fp32.items()}))
    print(f"\n{args.images} images of {args.data} [{args.split}]; model {args.model.name}")
    print(f"{'variant':<34}{'AP50':>8}{'ΔAP50 pts':>11}{'score corr':>12}{'score MAD':>11}{'ms':>9}{'vs FP32':>9}")
    for r in rows:
        base = fp32["FP32 OpenVINO" if "NNCF" in r["variant"] or "OpenVINO" in r["variant"] else "FP32 onnxruntime"]
        r["dAP50_pts"] = (r["AP50"] - base["AP50"]) * 100
        r["speedup"] = base["latency_ms"] / r["latency_ms"]
        corr = f"{r['score_corr']:.5f}" if "score_corr" in r else "-"
        mad = f"{r['score_mad']:.5f}" if "score_mad" in r else "-"
        print(f"{r['variant']:<34}{r['AP50']:>8.4f}{r['dAP50_pts']:>+11.2f}{corr:>12}{mad:>11}"
              f"{r['latency_ms']:>9.2f}{r['speedup']:>8.2f}x")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": header, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
