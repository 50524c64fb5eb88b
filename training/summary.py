"""Print a preset's size: parameters per part, feature maps, anchors.

    python -m training.summary --preset vgg16_384 [--num-classes 80]
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main(argv: Sequence[str] | None = None) -> int:
    from .config import PRESETS  # here, not at the top: it imports torch (the encoders' registry)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="vgg16_384", choices=sorted(PRESETS))
    ap.add_argument("--num-classes", type=int, default=80, help="foreground classes (COCO: 80)")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = the paper's network)")
    ap.add_argument("--input-size", type=int, default=None)
    args = ap.parse_args(argv)
    from .model import build_model

    over = {"width": args.width}
    if args.input_size:
        over["input_size"] = args.input_size
    model = build_model(args.preset, args.num_classes, **over)
    cfg = model.cfg
    parts = {"encoder": model.encoder, "decoder": model.decoder, "heads (incl. FAM)": model.heads}
    if model.apm is not None:
        parts["APM"] = model.apm
    print(f"preset {cfg.name}  input {cfg.input_size}x{cfg.input_size}  classes {cfg.num_classes}  width {cfg.width}")
    print(f"feature maps {cfg.feature_sizes}  anchors/location {cfg.anchors_per_location}  anchors {cfg.num_anchors:,}")
    for name, m in parts.items():
        print(f"  {name:<18} {count_parameters(m):>12,}")
    print(f"  {'total':<18} {count_parameters(model):>12,}")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train"))
