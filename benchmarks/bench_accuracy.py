"""Accuracy of every deployment format of one trained PADet, side by side from one run.

  python benchmarks/bench_accuracy.py --checkpoint runs/synth_cpu/run/last.pth --data runs/synth_cpu/data

Exports the checkpoint to ONNX and OpenVINO IR (FP32), quantizes it to INT8 with NNCF and with
onnxruntime (each also with the FAM offset convs kept in FP32), then scores torch FP32 and every
file through the SDK (``padet_sdk.Detector``: OpenCV pre-processing, native soft-NMS) on the
same split with pycocotools. Calibration images come from another split (default: train).
Prints AP, AP50 and the change of AP50 against torch, in AP points.
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


def sdk_detections(model_file: Path, dataset, backend: str) -> list[dict]:
    """COCO results of the SDK on every image of ``dataset`` (images read by OpenCV, as a user would)."""
    from tqdm import tqdm

    from padet_sdk import Detector

    det = Detector(model_file, backend=backend)
    cat_of = {name: dataset.cat_ids[i + 1] for i, name in enumerate(dataset.class_names)}
    out = []
    try:
        for image_id in tqdm(dataset.image_ids, desc=model_file.name, unit="img", leave=False):
            info = dataset.coco.imgs[image_id]
            frame = cv2.imread(str(dataset.root / info["file_name"]))
            for d in det(frame):
                x1, y1, x2, y2 = d.box
                out.append({"image_id": image_id, "category_id": cat_of[d.class_name],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": d.score})  # fmt: skip
    finally:
        det.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path, help="COCO-layout data directory")
    p.add_argument("--split", default="val", help="split to score")
    p.add_argument("--calib-split", default="train", help="split whose images calibrate INT8")
    p.add_argument("--subset-size", type=int, default=300, help="calibration images")
    p.add_argument("--out", type=Path, default=Path("runs/bench_accuracy"))
    p.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)

    from export.checkpoint import load_checkpoint
    from export.graph import build_metadata
    from export.onnx_export import export_onnx
    from export.openvino_export import onnx_to_openvino
    from export.quantize import find_images, quantize_onnxruntime, quantize_openvino
    from training.evaluate import coco_eval, ground_truth, open_dataset, predict

    args.out.mkdir(parents=True, exist_ok=True)
    model, class_names, _ = load_checkpoint(args.checkpoint)
    meta = build_metadata(model, class_names)
    dataset = open_dataset(args.data, args.split)
    gt = ground_truth(dataset)
    calib = find_images(args.data / args.calib_split, args.subset_size)

    onnx_path = export_onnx(model, args.out / "model.onnx", meta)
    xml_path = onnx_to_openvino(onnx_path, args.out / "model.xml", meta)
    import openvino as ov

    from padet_sdk.ov_extensions import read_onnx_with_extensions

    files = {"OV FP32": (xml_path, "openvino"), "ORT FP32": (onnx_path, "onnxruntime")}
    with contextlib.redirect_stdout(io.StringIO()):
        for fam_fp32 in (False, True):
            tag = " (FAM offsets FP32)" if fam_fp32 else ""
            suffix = "_famfp32" if fam_fp32 else ""
            ov_model = read_onnx_with_extensions(ov.Core(), onnx_path)
            files[f"OV INT8 NNCF{tag}"] = (
                quantize_openvino(ov_model, meta, calib, args.out / f"model_int8{suffix}.xml", ignore_fam_offsets=fam_fp32),
                "openvino",
            )
            files[f"ORT INT8 QDQ{tag}"] = (
                quantize_onnxruntime(onnx_path, meta, calib, args.out / f"model_int8{suffix}.onnx",
                                     ignore_fam_offsets=fam_fp32),
                "onnxruntime",
            )  # fmt: skip

    rows = []
    t = time.perf_counter()
    ref = coco_eval(gt, predict(model, dataset, batch_size=8))
    rows.append({"format": "torch FP32 (reference)", "AP": ref["AP"], "AP50": ref["AP50"], "seconds": time.perf_counter() - t})
    for name, (path, backend) in files.items():
        t = time.perf_counter()
        m = coco_eval(gt, sdk_detections(path, dataset, backend))
        size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)
        rows.append({"format": name, "AP": m["AP"], "AP50": m["AP50"], "seconds": time.perf_counter() - t,
                     "file_mb": size / 2**20})  # fmt: skip
    print(f"\n{len(dataset)} images of {args.data} [{args.split}], checkpoint {args.checkpoint}")
    print(f"{'format':<36}{'AP':>8}{'AP50':>8}{'ΔAP50 pts':>11}{'file MB':>9}")
    for r in rows:
        delta = (r["AP50"] - ref["AP50"]) * 100
        mb = f"{r['file_mb']:.2f}" if "file_mb" in r else "-"
        print(f"{r['format']:<36}{r['AP']:>8.3f}{r['AP50']:>8.3f}{delta:>+11.2f}{mb:>9}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train,export"))
