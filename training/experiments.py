"""The paper's ablations as commands: train each variant with the same seed and budget, evaluate
with pycocotools, print the table in the paper's layout with the paper's COCO numbers beside ours.

    python -m training.experiments table2 --data DIR --budget-min 10
    python -m training.experiments table1 --data DIR --steps 3000
    python -m training.experiments table3 --data DIR --budget-min 10   # AP at IoU 0.5 … 0.85
    python -m training.experiments table4 --data DIR --budget-min 10   # AP by object size × IoU

Each run writes ``OUT/<table>/<variant>/`` (the training run), ``OUT/<table>/results.json`` and
``OUT/<table>/<table>.png``. Variants already finished in OUT are reused, so an interrupted
experiment continues where it stopped. ``--anchor-stats`` also measures the paper's Figures
1–2 (positives/negatives per image) for every variant with :mod:`training.anchor_stats`.

A fair comparison needs the same amount of training per variant: ``--steps`` gives every variant
the same number of iterations, ``--budget-min`` the same wall-clock time (FAM variants are
slower per step, so they see fewer images).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: config switches of every variant (all are ``PADetConfig`` fields)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": dict(use_apm_score=False, use_apm_reg=False, fam="none"),
    "+APM_C": dict(use_apm_score=True, use_apm_reg=False, fam="none"),
    "+APM_R": dict(use_apm_score=False, use_apm_reg=True, fam="none"),
    "APM": dict(use_apm_score=True, use_apm_reg=True, fam="none"),
    "APM+FAM": dict(use_apm_score=True, use_apm_reg=True, fam="disentangled"),
    "(a) implicit": dict(use_apm_score=True, use_apm_reg=True, fam="implicit"),
    "(b) F(X_l)": dict(use_apm_score=True, use_apm_reg=True, fam="explicit_l"),
    "(b) F(X_s)": dict(use_apm_score=True, use_apm_reg=True, fam="explicit_s"),
    "(b) F(X_l;X_s)": dict(use_apm_score=True, use_apm_reg=True, fam="explicit_ls"),
}

#: IoU thresholds of Tables 3–4 (pycocotools evaluates 0.50:0.05:0.95; these are among them)
IOUS = (0.5, 0.6, 0.7, 0.8, 0.85)
AREAS = ("small", "medium", "large")


#: each table: its variants (rows, in the paper's order, with the paper's label) and the paper's
#: COCO minival numbers for reference (VGG-16, 384×384).
TABLES: dict[str, dict[str, Any]] = {
    "table1": {
        "title": "Table 1: how FAM gets its offsets",
        "rows": [
            ("w/o alignment", "APM"),
            ("(a) Implicit", "(a) implicit"),
            ("(b) F(X_l)", "(b) F(X_l)"),
            ("(b) F(X_s)", "(b) F(X_s)"),
            ("(b) F(X_l;X_s)", "(b) F(X_l;X_s)"),
            ("(c) Disentangled", "APM+FAM"),
        ],
        "metrics": ("AP", "AP50", "AP75", "APs", "APm", "APl"),
        "paper": {
            "w/o alignment": (31.7, 53.1, 33.1, 16.0, 35.4, 45.4),
            "(a) Implicit": (32.8, 54.0, 34.5, 16.8, 36.3, 46.7),
            "(b) F(X_l)": (33.6, 55.0, 35.7, 18.2, 37.4, 47.4),
            "(b) F(X_s)": (33.4, 54.6, 35.0, 17.6, 36.8, 47.8),
            "(b) F(X_l;X_s)": (34.1, 55.5, 36.1, 17.9, 37.9, 47.9),
            "(c) Disentangled": (34.8, 55.4, 37.5, 18.6, 38.6, 49.2),
        },
    },
    "table2": {
        "title": "Table 2: effects of the components",
        "rows": [
            ("baseline", "baseline"),
            ("APM_C", "+APM_C"),
            ("APM_R", "+APM_R"),
            ("APM_C+APM_R", "APM"),
            ("APM_C+APM_R+FA", "APM+FAM"),
        ],
        "metrics": ("AP", "AP50", "AP75", "APs", "APm", "APl"),
        "paper": {
            "baseline": (29.6, 49.4, 30.8, 12.1, 32.4, 44.3),
            "APM_C": (31.0, 51.3, 32.6, 14.3, 34.5, 44.9),
            "APM_R": (30.6, 50.5, 32.4, 13.9, 34.1, 44.7),
            "APM_C+APM_R": (31.7, 53.1, 33.1, 16.0, 35.4, 45.4),
            "APM_C+APM_R+FA": (34.8, 55.4, 37.5, 18.6, 38.6, 49.2),
        },
    },
    "table3": {
        "title": "Table 3: anchor adjustment across IoUs",
        "rows": [("baseline", "baseline"), ("APM_R", "APM"), ("APM_R+FA", "APM+FAM")],
        "metrics": tuple(f"AP{int(round(t * 100))}" for t in IOUS),
        "paper": {
            "baseline": (49.4, 44.2, 36.4, 24.1, 16.0),
            "APM_R": (53.1, 47.9, 39.1, 25.3, 16.5),
            "APM_R+FA": (54.7, 49.7, 41.8, 28.6, 19.2),
        },
    },
    "table4": {
        "title": "Table 4: location accuracy by area across IoUs",
        "rows": [
            (f"{name} {area}", variant) for name, variant in (("Baseline", "baseline"), ("Ours", "APM+FAM")) for area in AREAS
        ],
        "metrics": ("AP",) + tuple(f"AP{int(round(t * 100))}" for t in IOUS),
        "paper": {
            "Baseline small": (12.1, 24.6, 20.1, 14.2, 6.9, 3.8),
            "Baseline medium": (32.4, 56.3, 50.0, 40.5, 24.4, 14.7),
            "Baseline large": (44.3, 67.7, 62.4, 54.1, 41.3, 30.0),
            "Ours small": (18.6, 35.1, 29.8, 22.9, 12.4, 6.6),
            "Ours medium": (38.6, 62.6, 57.1, 48.9, 32.5, 19.9),
            "Ours large": (49.2, 70.7, 66.8, 60.7, 48.1, 35.8),
        },
    },
}


def variant_flags(switches: dict[str, Any]) -> list[str]:
    """``training.train`` options of a variant's switches."""
    flags = ["--fam", switches["fam"]]
    if not switches["use_apm_score"]:
        flags.append("--no-apm-score")
    if not switches["use_apm_reg"]:
        flags.append("--no-apm-reg")
    return flags


def detailed_ap(gt: Any, detections: list[dict[str, Any]]) -> dict[str, float]:
    """AP per IoU threshold and per area from pycocotools' accumulated precision array
    (``COCOeval.eval["precision"]``, [T, R, K, A, M]): the standard COCO numbers plus
    ``AP50``…``AP85`` and ``{area}_AP{iou}``, all in percent."""
    from pycocotools.cocoeval import COCOeval

    from .evaluate import _as_coco

    gt = _as_coco(gt)
    out: dict[str, float] = {}
    if not detections:
        return {k: 0.0 for k in _metric_keys()}
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(detections)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [T, R, K, A, M]; -1 where there is no ground truth
    thresholds = ev.params.iouThrs
    max_det = len(ev.params.maxDets) - 1  # 100 detections

    def ap(t: int | slice, area: int) -> float:
        p = precision[t, :, :, area, max_det]
        p = p[p > -1]
        return float(p.mean() * 100) if p.size else 0.0

    for name, area in (("", 0), ("small_", 1), ("medium_", 2), ("large_", 3)):
        out[f"{name}AP"] = ap(slice(None), area)
        for iou in IOUS:
            t = int(np.argmin(np.abs(thresholds - iou)))
            out[f"{name}AP{int(round(iou * 100))}"] = ap(t, area)
    out["AP75"] = ap(int(np.argmin(np.abs(thresholds - 0.75))), 0)
    out["APs"], out["APm"], out["APl"] = out["small_AP"], out["medium_AP"], out["large_AP"]
    return out


def _metric_keys() -> list[str]:
    keys = ["AP", "AP75", "APs", "APm", "APl"]
    for name in ("", "small_", "medium_", "large_"):
        keys += [f"{name}AP"] + [f"{name}AP{int(round(i * 100))}" for i in IOUS]
    return sorted(set(keys))


def row_values(table: str, label: str, metrics: dict[str, float]) -> list[float]:
    """Our numbers for one row of ``table``, in the order of its metric columns."""
    spec = TABLES[table]
    if table == "table4":
        area = label.split()[-1]
        return [metrics[f"{area}_{m}"] for m in spec["metrics"]]
    return [metrics[m] for m in spec["metrics"]]


def format_table(table: str, results: dict[str, dict[str, Any]]) -> str:
    """The table in the paper's layout: our number, and the paper's in brackets."""
    spec = TABLES[table]
    cols = spec["metrics"]
    width = max(len(label) for label, _ in spec["rows"]) + 2
    lines = [spec["title"] + " — ours (paper, COCO minival VGG-16 384)", f"{'':<{width}}" + "".join(f"{c:>16}" for c in cols)]
    for label, variant in spec["rows"]:
        if variant not in results:
            continue
        ours = row_values(table, label, results[variant]["metrics"])
        paper = spec["paper"][label]
        lines.append(f"{label:<{width}}" + "".join(f"{o:>8.1f} ({p:>4.1f})" for o, p in zip(ours, paper)))
    return "\n".join(lines)


def plot_table(table: str, results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Grouped bars: our value per row and metric (paper's as hatched bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = TABLES[table]
    rows = [(label, v) for label, v in spec["rows"] if v in results]
    cols = spec["metrics"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    x = np.arange(len(cols))
    w = 0.8 / max(len(rows), 1)
    for i, (label, variant) in enumerate(rows):
        axes[0].bar(x + i * w, row_values(table, label, results[variant]["metrics"]), w, label=label)
        axes[1].bar(x + i * w, spec["paper"][label], w, label=label, hatch="//")
    for ax, title in zip(axes, ("ours (synthetic shapes / your data)", "paper (COCO minival)")):
        ax.set_xticks(x + w * (len(rows) - 1) / 2, cols)
        ax.set_title(title)
        ax.set_ylabel("AP (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(spec["title"])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_variant(variant: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """Train one variant (or reuse a finished run), evaluate it, optionally measure anchors."""
    from .checkpoint import model_from_checkpoint
    from .evaluate import ground_truth, open_dataset, predict
    from .train import main as train_main

    run_dir = out_dir / variant.replace(" ", "_").replace("(", "").replace(")", "").replace(";", "_")
    result_file = run_dir / "experiment.json"
    if result_file.is_file() and not args.retrain:
        print(f"[{variant}] reusing {result_file}", flush=True)
        return json.loads(result_file.read_text())
    argv = [
        "--config", args.config, "--data", str(args.data), "--out", str(run_dir), "--seed", str(args.seed),
        "--width", str(args.width), "--input-size", str(args.input_size), "--batch-size", str(args.batch_size),
        "--lr", str(args.lr), "--warmup-epochs", str(args.warmup_epochs), "--eval-every", "0",
        "--workers", str(args.workers), "--train-split", args.train_split, "--val-split", args.val_split,
        *variant_flags(VARIANTS[variant]), *args.train_args,
    ]  # fmt: skip
    if args.quiet:
        argv.append("--quiet")
    if args.steps:
        argv += ["--max-steps", str(args.steps)]
    if args.budget_min:
        argv += ["--max-minutes", str(args.budget_min)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    # the variant's own directory: resume its checkpoint, or (no checkpoint yet) start over in it
    argv += ["--resume", str(run_dir / "last.pth")] if (run_dir / "last.pth").is_file() else ["--exist-ok"]
    print(f"[{variant}] python -m training.train {' '.join(argv)}", flush=True)
    status = train_main(argv)
    if status != 0:
        raise SystemExit(f"[{variant}] training failed with status {status}")
    model, info = model_from_checkpoint(run_dir / "last.pth")
    dataset = open_dataset(args.data, args.val_split)
    dets = predict(model, dataset, batch_size=8, progress=not args.quiet)
    metrics = detailed_ap(ground_truth(dataset), dets)
    result: dict[str, Any] = {"variant": variant, "switches": VARIANTS[variant], "metrics": metrics,
                              "step": info.get("step"), "epoch": info.get("epoch")}  # fmt: skip
    if args.anchor_stats:
        from .anchor_stats import anchor_stats

        result["anchor_stats"] = anchor_stats(model, dataset, num_images=args.anchor_images, progress=not args.quiet)
    result_file.write_text(json.dumps(result, indent=1, default=float))
    print(f"[{variant}] AP {metrics['AP']:.1f}  AP50 {metrics['AP50']:.1f}  AP75 {metrics['AP75']:.1f}", flush=True)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.experiments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("table", choices=sorted(TABLES), help="which of the paper's tables to reproduce")
    p.add_argument("--data", required=True, type=Path, help="COCO-layout data (e.g. from python -m training.data.synth)")
    p.add_argument("--out", type=Path, default=Path("runs/experiments"))
    p.add_argument("--budget-min", type=float, default=None, help="training minutes per variant")
    p.add_argument("--steps", type=int, default=None, help="training steps per variant (fairer than minutes)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per variant (the GPU recipe: 160)")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val", help="split that is scored")
    p.add_argument("--config", default="vgg16_384", help="preset")
    p.add_argument("--width", type=float, default=0.25, help="channel multiplier (1.0 for the paper's network)")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchor-stats", action="store_true", help="also measure Figures 1–2 for every variant")
    p.add_argument("--anchor-images", type=int, default=100)
    p.add_argument("--retrain", action="store_true", help="train again even if OUT has a finished run")
    p.add_argument("--quiet", action="store_true")
    p.epilog = "Options after a lone -- go to python -m training.train unchanged (e.g. -- --no-augment)."
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    args.train_args = extra
    if not (args.budget_min or args.steps or args.epochs):
        print("error: give a training budget: --budget-min, --steps or --epochs", file=sys.stderr)
        return 2
    if not (args.data / "annotations").is_dir():
        print(f"error: {args.data} has no annotations/ folder (make one: python -m training.data.synth --out {args.data})",
              file=sys.stderr)  # fmt: skip
        return 2
    table = args.table
    out_dir = args.out / table
    variants = list(dict.fromkeys(v for _, v in TABLES[table]["rows"]))
    results = {v: run_variant(v, args, out_dir) for v in variants}
    text = format_table(table, results)
    print(text)
    summary = {"table": table, "text": text, "results": results, "settings": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}  # fmt: skip
    (out_dir / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    png = plot_table(table, results, out_dir / f"{table}.png")
    print(f"wrote {out_dir / 'results.json'} and {png}")
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train"))
