"""Print a preset's size: parameters and multiply-adds per part, feature maps, anchors.

    python -m training.summary --preset vgg16_384 [--num-classes 80]
    python -m training.summary --all          # one line per preset: GMAC, parameters, anchors

GMAC: multiply-accumulates of one forward pass at batch 1 (torch's FlopCounterMode, flops / 2),
the deformable convs included (counted as the 3x3 conv they compute, plus nothing for the
bilinear sampling); element-wise ops are not counted.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _deform_conv_flops(x, weight, *args, out_val=None, **kwargs) -> int:
    """torchvision::deform_conv2d as the conv it computes: 2 · out elements · (C_in/groups · 9)."""
    n, c_out, h, w = out_val.shape
    return 2 * n * h * w * c_out * weight.shape[1] * weight.shape[2] * weight.shape[3]


def count_macs(model, input_size: int, parts: dict | None = None) -> dict[str, int]:
    """Multiply-adds of one batch-1 forward of ``model`` in total (``"total"``) and per module
    of ``parts`` (name → module)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    import torchvision  # noqa: F401  (registers torchvision::deform_conv2d)

    from torch.utils.flop_counter import register_flop_formula

    try:
        register_flop_formula(torch.ops.torchvision.deform_conv2d, get_raw=True)(_deform_conv_flops)
    except (RuntimeError, ValueError):  # registered already
        pass
    was = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was)
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    out = {"total": sum(counter.get_flop_counts().get(root, {}).values()) // 2}
    for name in parts or {}:
        key = f"{root}.{name}"
        if key in per_module:
            out[name] = sum(per_module[key].values()) // 2
        else:  # a ModuleList is never called itself: add up its items
            items = [k for k in per_module if k.startswith(key + ".") and k.count(".") == key.count(".") + 1]
            out[name] = sum(sum(per_module[k].values()) for k in items) // 2
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from .config import PRESETS  # here, not at the top: it imports torch (the encoders' registry)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="vgg16_384", choices=sorted(PRESETS))
    ap.add_argument("--all", action="store_true", help="one line per preset (GMAC, parameters, anchors)")
    ap.add_argument("--num-classes", type=int, default=80, help="foreground classes (COCO: 80)")
    ap.add_argument("--width", type=float, default=None,
                    help="channel multiplier (default: the preset's; 1.0 = the paper's network)")
    ap.add_argument("--input-size", type=int, default=None)
    args = ap.parse_args(argv)
    from .model import build_model

    over: dict[str, object] = {} if args.width is None else {"width": args.width}
    if args.input_size:
        over["input_size"] = args.input_size
    if args.all:
        print(f"{'preset':<18} {'input':>5} {'width':>6} {'GMAC':>8} {'params':>12} {'anchors':>8}   "
              f"({args.num_classes} classes)")  # fmt: skip
        for name in sorted(PRESETS):
            model = build_model(name, args.num_classes, **over)
            macs = count_macs(model, model.cfg.input_size)["total"]
            print(f"{name:<18} {model.cfg.input_size:>5} {model.cfg.width:>6g} {macs / 1e9:>8.3f} "
                  f"{count_parameters(model):>12,} {model.cfg.num_anchors:>8,}")  # fmt: skip
        return 0
    model = build_model(args.preset, args.num_classes, **over)
    cfg = model.cfg
    parts = {"encoder": model.encoder, "decoder": model.decoder, "heads (incl. FAM)": model.heads}
    if model.apm is not None:
        parts["APM"] = model.apm
    print(f"preset {cfg.name}  input {cfg.input_size}x{cfg.input_size}  classes {cfg.num_classes}  width {cfg.width}")
    print(f"feature maps {cfg.feature_sizes}  anchors/location {cfg.anchors_per_location}  anchors {cfg.num_anchors:,}")
    names = {"encoder": "encoder", "decoder": "decoder", "heads (incl. FAM)": "heads", "APM": "apm"}
    macs = count_macs(model, cfg.input_size, {names[k]: m for k, m in parts.items()})
    print(f"  {'part':<18} {'parameters':>12} {'GMAC':>8}")
    for name in parts:
        print(f"  {name:<18} {count_parameters(parts[name]):>12,} {macs[names[name]] / 1e9:>8.3f}")
    print(f"  {'total':<18} {count_parameters(model):>12,} {macs['total'] / 1e9:>8.3f}")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train"))
