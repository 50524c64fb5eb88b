"""Rebuild the embedded demo model (``padet_sdk/models/padet_shapes.*``) from nothing but a seed.

  python export/build_demo_model.py --lineage        # the shipped model: every link of LINEAGE (~2 CPU-hours)
  python export/build_demo_model.py --init-onnx PREV.onnx   # one fine-tuning link (RECIPE: the last one)
  python export/build_demo_model.py --work runs/demo_model --steps 500   # a quicker, weaker one

1. renders the training data (``training.data.synth``, --seed): the synthetic-shapes set the
   project has always used (192-px images, up to 8 shapes of 8 px and more) and as many
   clip-like scenes (640x480, the demo clip's frame size and aspect, shapes of
   --clip-min-object-size px and more over the same textured backgrounds), so that the network
   sees the demo clip's resize and stripes during training;
2. stage 1: trains PADet (--config, --width) on the shapes set alone with the project's own
   train loop for a fixed number of steps (not minutes, so that the result does not depend on
   the machine's speed): the project's first demo model. Stage 2 (--ft-steps > 0) exports it,
   reads its weights back from the ONNX file (``export/onnx_weights.py``: BatchNorm folded) and
   fine-tunes them on shapes + clip-like scenes with BatchNorm frozen, at --ft-input-size (the
   convs do not depend on it; a larger input gives the clip's small shapes more pixels) and with
   SSD augmentation if --ft-augment (photometric distortion, zoom out up to
   --ft-expand-max-ratio, IoU crop, flip). --init-onnx skips stage 1 and starts stage 2 from a
   given file: the shipped model is a chain of such fine-tunings, each from the previous
   embedded model's file (its ``model_version`` names the chain; the first link is stage 1);
3. evaluates it on the held-out split (pycocotools) and chooses the default score threshold
   shown to users: the best F1 on that split (``training.calibrate``), stored as the metadata's
   ``postprocess.conf`` (evaluation passes its own low threshold explicitly);
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
#: score threshold of evaluation (AP needs the low-scoring detections too)
EVAL_CONF = 0.01

#: the recipe of the shipped model's last link; every value is a command-line option below.
#: Stage 1 (the base model, the project's first demo model): shapes data only, from scratch.
#: Stage 2: fine-tuning on the shapes plus as many clip-like scenes and demo-like clip frames,
#: BatchNorm frozen (``ft_*``).
RECIPE = dict(
    train=3000, val=300, data_size=192, max_objects=8, min_object_size=8.0,
    config="resnet18q_320", width=0.25, input_size=192, batch_size=8, steps=5727,
    optimizer="adamw", lr=2e-3, warmup_epochs=0.2, milestones=(14.5, 16.5), ohem=3.0, seed=0,
    augment=False,
    clip_train=3000, clip_val=300, clip_min_object_size=24.0, clip_max_object_frac=0.5,
    ft_steps=4500, ft_lr=3e-4, ft_warmup_epochs=0.05, ft_milestones=(2.2, 2.7), ft_input_size=320,
    ft_augment=True, ft_expand_max_ratio=2.0, clip_frames_train=6000, clip_frames_val=300, agnostic_iou=0.0,
)  # fmt: skip

#: The shipped model's lineage, run in order by ``--lineage``: the first link trains stage 1 and
#: stage 2 from the seed, each later link fine-tunes the previous link's ONNX file (--init-onnx).
#: A link's options override RECIPE; options given beside --lineage override both, in every link.
LINEAGE: tuple[tuple[str, ...], ...] = (
    ("--ft-steps", "1500", "--ft-lr", "2e-4", "--ft-milestones", "1.2", "1.7333333333", "--ft-input-size", "192",
     "--no-ft-augment", "--clip-frames-train", "0", "--clip-frames-val", "0"),
    ("--ft-steps", "5000", "--ft-lr", "5e-4", "--ft-milestones", "3.1", "4.0", "--ft-input-size", "320",
     "--ft-augment", "--ft-expand-max-ratio", "2", "--clip-frames-train", "3000", "--clip-frames-val", "300"),
    ("--ft-steps", "4500", "--ft-lr", "3e-4", "--ft-milestones", "2.2", "2.7", "--ft-input-size", "320",
     "--ft-augment", "--ft-expand-max-ratio", "2", "--clip-frames-train", "6000", "--clip-frames-val", "300"),
)  # fmt: skip


def merge_coco(parts: dict[str, Path], out: Path) -> None:
    """``out/{train,val}`` + ``out/annotations``: the images of every part (hard links named
    ``<part>_<file>``) and one COCO file per split with fresh image and annotation ids."""
    for split in ("train", "val"):
        (out / split).mkdir(parents=True, exist_ok=True)
        merged: dict = {"images": [], "annotations": [], "categories": None, "info": {"parts": sorted(parts)}}
        for tag, root in parts.items():
            coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
            merged["categories"] = merged["categories"] or coco["categories"]
            if coco["categories"] != merged["categories"]:
                raise ValueError(f"part {tag} has other categories")
            new_id = {}
            for im in coco["images"]:
                new_id[im["id"]] = len(merged["images"]) + 1
                name = f"{tag}_{im['file_name']}"
                dst = out / split / name
                if not dst.exists():
                    os.link(root / split / im["file_name"], dst)
                merged["images"].append({**im, "id": new_id[im["id"]], "file_name": name})
            for a in coco["annotations"]:
                merged["annotations"].append({**a, "id": len(merged["annotations"]) + 1, "image_id": new_id[a["image_id"]]})
        (out / "annotations").mkdir(exist_ok=True)
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(merged, separators=(",", ":")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "demo_model", help="data and training run go here")
    p.add_argument("--dest", type=Path, default=ROOT / "padet_sdk" / "models", help="where the model files go")
    p.add_argument("--name", default="padet_shapes")
    for k, v in RECIPE.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, tuple):
            p.add_argument(flag, type=type(v[0]), nargs="+", default=list(v))
        elif isinstance(v, bool):  # --augment / --no-augment
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=v)
        else:
            p.add_argument(flag, type=type(v), default=v)
    p.add_argument("--calib", type=int, default=300, help="calibration images for INT8")
    p.add_argument("--init-onnx", type=Path, default=None,
                   help="skip stage 1: fine-tune from the weights of this exported model (e.g. the previous "
                        "embedded model, which stage 1 rebuilds)")
    p.add_argument("--lineage", action="store_true",
                   help="build every link of LINEAGE in order, each in --work/linkN, the last one into --dest")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if args.lineage:
        if args.init_onnx is not None:
            p.error("--lineage starts from the seed: it takes no --init-onnx")
        return build_lineage(args.work, args.name, [a for a in argv if a != "--lineage"])
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    from padet_sdk.extras import modules_of, require

    require(*modules_of("train,export"))  # now, not after 15 minutes of training (nncf comes last)

    from training.data.synth import generate_dataset
    from training.train import main as train_main

    parts = {"shapes": args.work / "parts" / "shapes"}
    done = lambda part: (part / "annotations" / "instances_val.json").is_file()  # noqa: E731
    if not done(parts["shapes"]):
        generate_dataset(parts["shapes"], args.train, args.val, size=args.data_size, seed=args.seed,
                         max_objects=args.max_objects, min_object_size=args.min_object_size)  # fmt: skip

    def train(data: Path, run: Path, steps: int, lr: float, warmup: float, milestones: list[float], input_size: int,
              augment: bool, *extra: str) -> int:  # fmt: skip
        return train_main([
            "--config", args.config, "--data", str(data), "--out", str(run), "--width", str(args.width),
            "--input-size", str(input_size), "--batch-size", str(args.batch_size), "--optimizer", args.optimizer,
            "--lr", str(lr), "--warmup-epochs", str(warmup), "--milestones", *[str(m) for m in milestones],
            "--epochs", "100", "--max-steps", str(steps), "--ohem", str(args.ohem),
            *([] if augment else ["--no-augment"]), "--eval-every", "0", "--workers", "1", "--seed", str(args.seed),
            "--quiet",
            "--ckpt-every-steps", "100",  # a stopped build resumes from here (checkpoints do not change the weights)
            *(["--resume", str(run / "last.pth")] if (run / "last.pth").is_file() else ["--exist-ok"]), *extra,
        ])  # fmt: skip

    run = args.work / "run_base"
    if args.init_onnx is None:  # stage 1
        status = train(parts["shapes"], run, args.steps, args.lr, args.warmup_epochs, args.milestones, args.input_size,
                       args.augment)  # fmt: skip
        if status != 0:
            return status
    if args.ft_steps > 0:  # stage 2, from the stage-1 model as its ONNX file holds it (BatchNorm folded)
        from export.onnx_weights import state_dict_from_onnx
        from training.model import build_model

        import torch

        init_onnx = args.init_onnx
        if init_onnx is None:
            from export.checkpoint import load_checkpoint
            from export.graph import build_metadata as _meta
            from export.onnx_export import export_onnx as _export

            base, names, _ = load_checkpoint(run / "last.pth")
            init_onnx = _export(base, args.work / "base.onnx", _meta(base, names))
        data = args.work / "data"
        if not done(data):
            if args.clip_train or args.clip_val:
                parts["clip"] = args.work / "parts" / "clip"
                if not done(parts["clip"]):
                    generate_dataset(parts["clip"], args.clip_train, args.clip_val, size=(640, 480), seed=args.seed + 1,
                                     max_objects=args.max_objects, min_object_size=args.clip_min_object_size,
                                     max_object_frac=args.clip_max_object_frac)  # fmt: skip
            if args.clip_frames_train or args.clip_frames_val:  # frames of demo-like clips (seeds from 1000)
                from training.data.synth_clip import generate_clip_dataset

                parts["clipframes"] = args.work / "parts" / "clipframes"
                if not done(parts["clipframes"]):
                    generate_clip_dataset(parts["clipframes"], args.clip_frames_train, args.clip_frames_val,
                                          seed=1000 + args.seed)  # fmt: skip
            merge_coco(parts, data)
        # the convs do not depend on the input size: stage 2 may fine-tune at another one (new anchors)
        net = build_model(args.config, 6, width=args.width, input_size=args.ft_input_size).eval()
        torch.save(state_dict_from_onnx(init_onnx, net), args.work / "init.pth")
        run = args.work / "run"
        status = train(data, run, args.ft_steps, args.ft_lr, args.ft_warmup_epochs, args.ft_milestones,
                       args.ft_input_size, args.ft_augment, "--init-weights", str(args.work / "init.pth"), "--freeze-bn",
                       "--expand-max-ratio", str(args.ft_expand_max_ratio))  # fmt: skip
        if status != 0:
            return status
    else:
        data = parts["shapes"]

    import dataclasses

    import openvino as ov

    from export.checkpoint import load_checkpoint
    from export.graph import build_metadata
    from export.onnx_export import export_onnx
    from export.quantize import find_images, quantize_openvino
    from padet_sdk.ov_extensions import read_onnx_with_extensions
    from training.calibrate import best_f1_threshold
    from training.evaluate import coco_eval, ground_truth, open_dataset, predict

    model, class_names, info = load_checkpoint(run / "last.pth")
    val = open_dataset(data, "val")
    dets = predict(model, val, batch_size=8, postprocess={"conf": EVAL_CONF})
    gt = ground_truth(val)
    metrics = coco_eval(gt, dets)
    if args.agnostic_iou:  # the threshold is chosen on what is shown: with the display suppression
        dets = predict(model, val, batch_size=8, postprocess={"conf": EVAL_CONF, "agnostic_iou": args.agnostic_iou})
    shown = best_f1_threshold(gt.dataset if hasattr(gt, "dataset") else gt, dets)
    print(f"held-out AP50 {metrics['AP50']:.3f}  AP {metrics['AP']:.3f}  (step {info.get('step')}); default conf "
          f"{shown['conf']:.2f}: F1 {shown['f1']:.3f}, precision {shown['precision']:.3f}, recall {shown['recall']:.3f}")
    # the model's lineage: fine-tuned from --init-onnx, the version says from which model
    if args.init_onnx is not None and args.ft_steps > 0:
        from padet_sdk.model_file import read_metadata

        base_version = read_metadata(args.init_onnx).model_version
    else:
        base_version = f"shapes-seed{args.seed}-step{args.steps}"
    version = base_version + (f"-ft{info.get('step')}@{args.ft_input_size}" if args.ft_steps > 0 else "")
    meta = build_metadata(model, class_names, model_version=version)
    # agnostic_iou > 0: the model's default display suppression across classes (0: off, the paper)
    post = meta.postprocess.replace(conf=shown["conf"], agnostic_iou=args.agnostic_iou or None)
    meta = dataclasses.replace(meta, preset="shapes_demo", postprocess=post)
    args.dest.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, args.dest / f"{args.name}.onnx", meta)
    ov_model = read_onnx_with_extensions(ov.Core(), onnx_path)
    xml = quantize_openvino(ov_model, meta, find_images(data / "train", args.calib, seed=args.seed),
                            args.dest / f"{args.name}.xml")  # fmt: skip
    card = {"model_version": version, "recipe": {k: getattr(args, k) for k in RECIPE}, "val_metrics": metrics,
            "default_conf": {**shown, "chosen_by": f"best F1 on the held-out split ({len(val)} images), IoU 0.5"},
            "stage1": "trained here" if args.init_onnx is None else
                      f"weights of {args.init_onnx.name} (--init-onnx), model_version {base_version}",
            "files": [onnx_path.name, xml.name, xml.with_suffix(".bin").name]}  # fmt: skip
    (args.dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    print(f"wrote {onnx_path}, {xml} (+ .bin, INT8) and {args.name}.json")
    return 0


def build_lineage(work: Path, name: str, common: list[str]) -> int:
    """Run :data:`LINEAGE`: link i in ``work/link<i>`` (its model in ``work/link<i>/out``, the last
    link's in --dest), from the previous link's ONNX file."""
    prev: Path | None = None
    for i, link in enumerate(LINEAGE):
        here = work / f"link{i}"
        last = i == len(LINEAGE) - 1
        print(f"lineage link {i + 1}/{len(LINEAGE)}: {' '.join(link)}" + (f" from {prev}" if prev else ""), flush=True)
        status = main([*link, *common, "--work", str(here), *([] if last else ["--dest", str(here / "out")]),
                       *(["--init-onnx", str(prev)] if prev else [])])  # fmt: skip
        if status != 0:
            return status
        prev = here / "out" / f"{name}.onnx"
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train,export"))
