"""What a training run writes down: step and epoch rows (CSV + JSON lines) and a PNG of the curves."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor

LOSS_PARTS = ("total", "apm_cls", "apm_reg", "det_cls", "det_reg")
COUNT_PARTS = ("num_pos_apm", "num_pos_det")
STEP_FIELDS = ("step", "epoch", "lr", *LOSS_PARTS, *COUNT_PARTS, "images_per_s", "elapsed_s")
EPOCH_FIELDS = ("epoch", "step", "lr", *LOSS_PARTS, *COUNT_PARTS, "images_per_s", "epoch_s", "elapsed_s",
                "AP", "AP50", "AP75")  # fmt: skip


class RunLog:
    """Rows written both as CSV and JSON lines (``NAME.csv`` / ``NAME.jsonl``) in the run dir."""

    def __init__(self, out: Path, name: str, fields: Sequence[str]) -> None:
        self.csv, self.jsonl, self.fields = out / f"{name}.csv", out / f"{name}.jsonl", list(fields)

    def rows(self) -> list[dict[str, Any]]:
        if not self.jsonl.is_file():
            return []
        return [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]

    def truncate(self, step: int) -> None:
        """Drop rows after ``step`` (what a killed run logged past its last checkpoint)."""
        rows = [r for r in self.rows() if r["step"] <= step]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with open(self.csv, "w", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        new = not self.csv.is_file()
        with open(self.csv, "a", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")


def plot_curves(out: Path, steps: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> Path:
    """``curves.png``: loss parts and lr by step, val AP/AP50 by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    x = [r["step"] for r in steps]
    for k in LOSS_PARTS:
        y = [r.get(k) for r in steps]
        if any(v is not None and v > 0 for v in y):
            ax[0].plot(x, [v if v is not None else float("nan") for v in y], label=k)
    ax[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax[1].plot(x, [r["lr"] for r in steps])
    ax[1].set(xlabel="step", ylabel="lr", title="learning rate")
    ev = [r for r in epochs if r.get("AP50") is not None]
    for k in ("AP50", "AP"):
        ax[2].plot([r["epoch"] for r in ev], [r[k] for r in ev], marker="o", label=k)
    ax[2].set(xlabel="epoch", ylabel="COCO metric", title="validation", ylim=(0, 1))
    for a in (ax[0], ax[2]):
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@dataclass
class Meter:
    """Running sums of the loss parts between two log rows."""

    sums: dict[str, float] = field(default_factory=dict)
    n: int = 0
    images: int = 0
    seconds: float = 0.0

    def add(self, parts: dict[str, Tensor], images: int, seconds: float) -> None:
        for k in (*LOSS_PARTS, *COUNT_PARTS):
            if k in parts:
                self.sums[k] = self.sums.get(k, 0.0) + float(parts[k].detach())
        self.n += 1
        self.images += images
        self.seconds += seconds

    def means(self) -> dict[str, float]:
        out = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        out["images_per_s"] = self.images / self.seconds if self.seconds > 0 else 0.0
        return out
