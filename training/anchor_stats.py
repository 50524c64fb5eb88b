"""Positive/negative anchor statistics of a trained PADet (the paper's Figures 1 and 2).

``python -m training.anchor_stats --checkpoint CKPT --data DIR [--split train] [--images N]``

Per image, with the network's own outputs and the training matching rule
(:func:`training.matcher.match`, :func:`training.matcher.ignore_easy_negatives`,
:func:`training.losses.assign_targets`):

- ``initial``: the initial anchors matched to the ground truth (what the APM trains on);
- ``APM_C``: the same positives; negatives whose APM positive-probability is < θ are ignored;
- ``APM_R``: the promoted anchors (decoded APM deltas) matched, no θ rule;
- ``APM_CR``: promoted anchors and the θ rule — exactly the detection module's targets.

"Positive" is a matched anchor (including each ground truth's forced best match), "negative"
an anchor below the negative IoU (not ignored). The IoU histogram counts positives by their IoU
with their ground truth (bins 0.5-0.6 … 0.9-1.0, plus the forced matches under 0.5) before
(initial anchors) and after promotion (promoted anchors). All numbers are averages per image.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

if __name__ == "__main__":  # before `import torch`: a missing [train] extra is one line, not a traceback
    from padet_sdk.extras import run_entry_module

    raise SystemExit(run_entry_module("training.anchor_stats", extras="train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

from .box_coder import cxcywh_to_xyxy, decode  # noqa: E402
from .losses import assign_targets  # noqa: E402
from .matcher import Match, ignore_easy_negatives, match  # noqa: E402

DESIGNS = ("initial", "APM_C", "APM_R", "APM_CR")
#: IoU bin edges; the first bin holds forced best matches below the positive IoU
IOU_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0 + 1e-6)
IOU_BINS = ("<0.5", "0.5-0.6", "0.6-0.7", "0.7-0.8", "0.8-0.9", "0.9-1.0")


def _counts(m: torch.Tensor) -> tuple[int, int]:
    return int((m >= 0).sum()), int((m == Match.NEGATIVE).sum())


def _iou_hist(gt: torch.Tensor, anchors_xyxy: torch.Tensor, m: torch.Tensor) -> np.ndarray:
    """Positives of match vector ``m`` by IoU with their own ground truth."""
    pos = torch.nonzero(m >= 0).flatten()
    if len(pos) == 0:
        return np.zeros(len(IOU_BINS))
    iou = box_iou(gt[m[pos]], anchors_xyxy[pos]).diagonal().numpy()
    return np.histogram(iou, bins=IOU_EDGES)[0].astype(np.float64)


@torch.no_grad()
def image_stats(outputs: Any, b: int, anchors: torch.Tensor, target: dict[str, torch.Tensor], cfg: Any) -> dict[str, Any]:
    """Counts of one image (batch index ``b`` of raw outputs): ``{design: (pos, neg)}`` and the
    IoU histograms ``hist_initial`` / ``hist_promoted``. Designs a network lacks are None."""
    gt = target["boxes"].float()
    anchors_xyxy = cxcywh_to_xyxy(anchors.float())
    prob = torch.sigmoid(outputs.apm_logits[b].float()) if outputs.apm_logits is not None else None
    m_init = match(gt, anchors_xyxy, cfg.pos_iou, cfg.neg_iou)
    out: dict[str, Any] = {"initial": _counts(m_init), "hist_initial": _iou_hist(gt, anchors_xyxy, m_init)}
    out["APM_C"] = _counts(ignore_easy_negatives(m_init, prob, cfg.postprocess.theta)) if prob is not None else None
    if outputs.apm_deltas is not None:
        promoted = cxcywh_to_xyxy(decode(outputs.apm_deltas[b].float(), anchors.float(), cfg.anchors.variances))
        m_prom = match(gt, promoted, cfg.pos_iou, cfg.neg_iou)
        out["APM_R"] = _counts(m_prom)
        out["hist_promoted"] = _iou_hist(gt, promoted, m_prom)
    else:
        out["APM_R"], out["hist_promoted"] = None, None
    # the detection targets of training itself (promoted anchors + θ rule when the net has them)
    single = type(outputs)(*(None if o is None else o[b : b + 1] for o in outputs))
    labels = assign_targets(single, anchors, [target], cfg).det_labels[0]
    has_both = prob is not None and outputs.apm_deltas is not None
    out["APM_CR"] = (int((labels > 0).sum()), int((labels == 0).sum())) if has_both else None
    return out


@torch.no_grad()
def anchor_stats(model: torch.nn.Module, dataset: Any, num_images: int = 200, batch_size: int = 8,
                 device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Average positives/negatives per image for each design and the IoU histograms, over the
    first ``num_images`` images of ``dataset`` (evaluation preprocessing, model in eval mode)."""
    from tqdm import tqdm

    from .evaluate import eval_loader

    cfg = model.cfg
    loader = eval_loader(cfg, dataset, batch_size, num_images=num_images)
    n = len(loader.dataset)
    model.eval()
    anchors = model.anchors.float().cpu()
    sums = {k: np.zeros(2) for k in DESIGNS}
    available = {k: True for k in DESIGNS}
    hist = {"initial": np.zeros(len(IOU_BINS)), "promoted": np.zeros(len(IOU_BINS))}
    for images, targets in tqdm(loader, desc="anchor stats", unit="batch", disable=not progress, leave=False):
        raw = model(images.to(device))
        outputs = type(raw)(*(None if o is None else o.float().cpu() for o in raw))
        for b, t in enumerate(targets):
            s = image_stats(outputs, b, anchors, t, cfg)
            for k in DESIGNS:
                if s[k] is None:
                    available[k] = False
                else:
                    sums[k] += s[k]
            hist["initial"] += s["hist_initial"]
            if s["hist_promoted"] is not None:
                hist["promoted"] += s["hist_promoted"]
    designs = {}
    for k in DESIGNS:
        if not available[k]:
            designs[k] = None
            continue
        pos, neg = sums[k] / n
        designs[k] = {"positives": float(pos), "negatives": float(neg), "neg_per_pos": float(neg / pos) if pos else None}
    return {
        "images": n,
        "num_anchors": int(anchors.shape[0]),
        "theta": cfg.postprocess.theta,
        "pos_iou": cfg.pos_iou,
        "neg_iou": cfg.neg_iou,
        "designs": designs,
        "iou_bins": list(IOU_BINS),
        "iou_hist": {
            "initial": (hist["initial"] / n).tolist(),
            "promoted": (hist["promoted"] / n).tolist() if available["APM_R"] else None,
        },
    }


def format_table(stats: dict[str, Any]) -> str:
    """Figure 1 and Figure 2 as text tables."""
    lines = [f"{stats['images']} images, {stats['num_anchors']} anchors, theta={stats['theta']}",
             f"{'design':8s} {'positives':>10s} {'negatives':>11s}   pos:neg"]  # fmt: skip
    for k, v in stats["designs"].items():
        if v is None:
            lines.append(f"{k:8s} {'n/a':>10s}")
            continue
        ratio = f"1:{v['neg_per_pos']:.1f}" if v["neg_per_pos"] is not None else "-"
        lines.append(f"{k:8s} {v['positives']:10.2f} {v['negatives']:11.1f}   {ratio}")
    lines.append("")
    lines.append(f"{'IoU':8s} {'initial':>10s} {'promoted':>10s}")
    prom = stats["iou_hist"]["promoted"]
    for i, name in enumerate(stats["iou_bins"]):
        p = f"{prom[i]:10.2f}" if prom is not None else f"{'n/a':>10s}"
        lines.append(f"{name:8s} {stats['iou_hist']['initial'][i]:10.2f} {p}")
    return "\n".join(lines)


def plot_stats(stats: dict[str, Any], path: str | Path) -> Path:
    """Bar charts: positives/negatives per design (log scale, Fig. 1) and positives by IoU bin
    before/after promotion (Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [k for k, v in stats["designs"].items() if v is not None]
    x = np.arange(len(names))
    a1.bar(x - 0.2, [stats["designs"][k]["positives"] for k in names], 0.4, label="positives")
    a1.bar(x + 0.2, [stats["designs"][k]["negatives"] for k in names], 0.4, label="negatives")
    a1.set(xticks=x, xticklabels=names, yscale="log", ylabel="anchors per image", title="positives / negatives")
    a1.legend()
    x = np.arange(len(stats["iou_bins"]))
    a2.bar(x - 0.2, stats["iou_hist"]["initial"], 0.4, label="initial")
    if stats["iou_hist"]["promoted"] is not None:
        a2.bar(x + 0.2, stats["iou_hist"]["promoted"], 0.4, label="promoted")
    a2.set(xticks=x, xticklabels=stats["iou_bins"], xlabel="IoU with ground truth", ylabel="positives per image",
           title="positives by IoU")  # fmt: skip
    a2.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    from .evaluate import checkpoint_data_parser

    p = checkpoint_data_parser(
        "python -m training.anchor_stats",
        "Average positive/negative anchors per image before and after anchor promotion (paper Fig. 1, 2).",
        "train", "split / image set",
    )
    p.add_argument("--images", type=int, default=200, help="number of images (the first N of the split)")
    p.add_argument("--out", type=Path, default=None, help="output prefix (default: CKPT_DIR/anchor_stats)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    import sys

    from .checkpoint import CheckpointError, model_from_checkpoint
    from .evaluate import DataError, open_dataset

    try:
        model, _ = model_from_checkpoint(args.checkpoint, args.device)
        dataset = open_dataset(args.data, args.split, args.format)
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats = anchor_stats(model, dataset, args.images, args.batch_size, args.device, progress=not args.quiet)
    prefix = args.out or args.checkpoint.parent / "anchor_stats"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    json_path = prefix.with_suffix(".json")
    json_path.write_text(json.dumps(stats, indent=2))
    png = plot_stats(stats, prefix.with_suffix(".png"))
    print(format_table(stats))
    print(f"wrote {json_path} and {png}")
    return 0
