"""Rebuild the embedded demo model (``padet_sdk/models/padet_shapes.*``) from nothing but a seed.

  python export/build_demo_model.py                  # the shipped model (~15 min of training on 2 CPU cores)
  python export/build_demo_model.py --work runs/demo_model --steps 500   # a quicker, weaker one

1. renders the synthetic-shapes data set (``training.data.synth``, --seed; the generator's
   defaults: up to 8 shapes of 8 px and more per 192-px image);
2. trains a narrow PADet with the project's own train loop for a fixed number of steps (not
   minutes, so that the result does not depend on the machine's speed);
3. evaluates it on the held-out split (pycocotools);
4. exports ONNX (FP32) and an OpenVINO IR quantized to INT8 with NNCF (calibrated on training
   images), both carrying the metadata, into --dest.
Same seed, same machine and thread count → the same weights.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: the recipe of the shipped model; every value is a command-line option below
RECIPE = dict(
    train=3000, val=300, data_size=192, max_objects=8, min_object_size=8.0, width=0.125, input_size=192, batch_size=8, steps=5727,
    optimizer="adamw", lr=2e-3, warmup_epochs=0.2, milestones=(14.5, 16.5), ohem=3.0, seed=0,
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "demo_model", help="data and training run go here")
    p.add_argument("--dest", type=Path, default=ROOT / "padet_sdk" / "models", help="where the model files go")
    p.add_argument("--name", default="padet_shapes")
    for k, v in RECIPE.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, tuple):
            p.add_argument(flag, type=type(v[0]), nargs="+", default=list(v))
        else:
            p.add_argument(flag, type=type(v), default=v)
    p.add_argument("--calib", type=int, default=300, help="calibration images for INT8")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    from padet_sdk.extras import modules_of, require

    require(*modules_of("train,export"))  # now, not after 15 minutes of training (nncf comes last)

    from training.data.synth import generate_dataset
    from training.train import main as train_main

    data = args.work / "data"
    if not (data / "annotations" / "instances_val.json").is_file():
        generate_dataset(data, args.train, args.val, size=args.data_size, seed=args.seed,
                         max_objects=args.max_objects, min_object_size=args.min_object_size)
    run = args.work / "run"
    status = train_main([
        "--config", "vgg16_384", "--data", str(data), "--out", str(run), "--width", str(args.width),
        "--input-size", str(args.input_size), "--batch-size", str(args.batch_size), "--optimizer", args.optimizer,
        "--lr", str(args.lr), "--warmup-epochs", str(args.warmup_epochs),
        "--milestones", *[str(m) for m in args.milestones], "--epochs", "100", "--max-steps", str(args.steps), "--ohem", str(args.ohem),
        "--no-augment", "--eval-every", "0", "--workers", "1", "--seed", str(args.seed), "--quiet",
        *(["--resume", str(run / "last.pth")] if (run / "last.pth").is_file() else ["--exist-ok"]),
    ])  # fmt: skip
    if status != 0:
        return status

    import dataclasses

    import openvino as ov

    from export.checkpoint import load_checkpoint
    from export.graph import build_metadata
    from export.onnx_export import export_onnx
    from export.quantize import find_images, quantize_openvino
    from padet_sdk.ov_extensions import read_onnx_with_extensions
    from training.evaluate import coco_eval, ground_truth, open_dataset, predict

    model, class_names, info = load_checkpoint(run / "last.pth")
    val = open_dataset(data, "val")
    metrics = coco_eval(ground_truth(val), predict(model, val, batch_size=8))
    print(f"held-out AP50 {metrics['AP50']:.3f}  AP {metrics['AP']:.3f}  (step {info.get('step')})")
    version = f"shapes-seed{args.seed}-step{info.get('step')}"
    meta = dataclasses.replace(build_metadata(model, class_names, model_version=version), preset="shapes_demo")
    args.dest.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, args.dest / f"{args.name}.onnx", meta)
    ov_model = read_onnx_with_extensions(ov.Core(), onnx_path)
    xml = quantize_openvino(ov_model, meta, find_images(data / "train", args.calib, seed=args.seed),
                            args.dest / f"{args.name}.xml")  # fmt: skip
    card = {"model_version": version, "recipe": {k: getattr(args, k) for k in RECIPE}, "val_metrics": metrics,
            "files": [onnx_path.name, xml.name, xml.with_suffix(".bin").name]}  # fmt: skip
    (args.dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    print(f"wrote {onnx_path}, {xml} (+ .bin, INT8) and {args.name}.json")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train,export"))
