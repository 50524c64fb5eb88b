"""The command line of ``python -m training.train`` and the network config it selects."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .config import FAM_MODES, PRESETS, PADetConfig, make_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train PADet (single process, or torchrun --nproc_per_node=N -m training.train ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default="vgg16_384", choices=sorted(PRESETS), help="network preset")
    p.add_argument("--data", required=True, type=Path, help="data directory (COCO layout, or VOC with --format voc)")
    p.add_argument("--format", choices=("coco", "voc"), default="coco")
    p.add_argument("--train-split", default=None, help="default: train (coco) / trainval (voc)")
    p.add_argument("--val-split", default=None, help="default: val (coco) / test (voc)")
    p.add_argument("--num-classes", type=int, default=None, help="default: the data set's")
    p.add_argument("--width", type=float, default=None, help="channel multiplier (narrow variant: 0.125, 0.25)")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--no-apm-score", action="store_true", help="ablation: no APM_C branch / θ rule")
    p.add_argument("--no-apm-reg", action="store_true", help="ablation: no APM_R anchor refinement")
    p.add_argument("--fam", choices=FAM_MODES, default=None, help="FAM offset mode")
    p.add_argument("--fam-detach", action="store_true", help="stop FAM gradients into the APM regression")
    p.add_argument("--ohem", type=float, default=None, metavar="RATIO", help="hard-negative mining neg:pos ratio")
    p.add_argument("--backbone-weights", type=Path, default=None, help="torchvision ImageNet weights file")
    p.add_argument("--init-weights", type=Path, default=None,
                   help="start from these PADet weights (a checkpoint or state dict; fine-tuning: a fresh run, "
                        "optimizer and schedule from step 0)")
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep BatchNorm in eval mode (its running statistics), e.g. to fine-tune weights whose "
                        "BatchNorm was folded into the convs (export/onnx_weights.py)")
    p.add_argument("--epochs", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=32, help="GLOBAL batch (per process: batch / world size)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (the paper's); adamw trains a from-scratch network in far fewer steps")  # fmt: skip
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (AdamW: beta1)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=5.0, help="linear warm-up from 1e-6, by iteration")
    p.add_argument("--milestones", type=float, nargs="*", default=[100, 140], help="epochs where lr *= gamma")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true", help="train on resized images without SSD augmentation")
    p.add_argument("--expand-max-ratio", type=float, default=4.0, help="SSD zoom-out up to this factor")
    p.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this much training")
    p.add_argument("--max-steps", type=int, default=None, help="stop with a checkpoint after this many steps")
    p.add_argument("--max-cpu-minutes", type=float, default=None,
                   help="stop with a checkpoint once this process has used this much CPU time (all its threads; "
                        "not the data-loader workers'): an equal budget for runs on a machine that others share")
    p.add_argument("--workers", type=int, default=2, help="data-loader processes per training process")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="parameters, images, targets and loss in this type. float64 is for numerical checks such "
                        "as DDP vs one process, where float32 rounding (amplified by BatchNorm on small batches) "
                        "would hide the comparison; not with --amp; about 2x slower for the tests' tiny network "
                        "on CPU; checkpoints then hold float64 weights, evaluation runs on a float32 copy")  # fmt: skip
    p.add_argument("--channels-last", choices=["auto", "yes", "no"], default="auto",
                   help="NHWC memory format for the network (auto: yes for one CPU process, where it is the "
                        "faster layout; no for DDP and CUDA)")  # fmt: skip
    p.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over all processes")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default runs/NAME, or runs/NAME-2, -3, ... when that holds a run); "
                        "an --out that holds a run is refused unless --resume or --exist-ok")  # fmt: skip
    p.add_argument("--name", default=None, help="run name for the default --out (default: the preset)")
    p.add_argument("--exist-ok", action="store_true",
                   help="write into an --out that already holds files (its last.pth and logs are replaced)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                   help="continue from a checkpoint (default OUT/last.pth)")  # fmt: skip
    p.add_argument("--ckpt-every-steps", type=int, default=0, help="also checkpoint every N steps (0: per epoch only)")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate on the val split every N epochs (0: never)")
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--log-every", type=int, default=10, help="write a step log row every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu | cuda (default cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace, num_classes: int) -> PADetConfig:
    """The network of these options; ValueError for an invalid combination. Never with backbone
    weights: the trainer loads those once, and a checkpoint's config must rebuild the trained
    network without the file."""
    over: dict[str, Any] = {}
    if args.width is not None:
        over["width"] = args.width
    if args.input_size is not None:
        over["input_size"] = args.input_size
    if args.no_apm_score:
        over["use_apm_score"] = False
    if args.no_apm_reg:
        over["use_apm_reg"] = False
        if args.fam is None:
            over["fam"] = "implicit"  # the default FAM needs APM_R's offsets
    if args.fam is not None:
        over["fam"] = args.fam
    if args.fam_detach:
        over["fam_detach"] = True
    if args.ohem is not None:
        over["neg_pos_ratio"] = args.ohem
    return make_config(args.config, num_classes, backbone_weights=None, **over)
