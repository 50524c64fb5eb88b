"""Tracking scores (MOTA, IDF1, ID switches) of tracked boxes against known identities, by
py-motmetrics; numpy only (no torch), so the demo's runtime-only environment can use it.

A true box and a tracked one match when their IoU is at least 0.5 (MOTChallenge's rule). The
IoU comes from :func:`padet_sdk.boxes.box_iou`: ``motmetrics.distances.iou_matrix`` calls
``np.asfarray``, which numpy 2 removed.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from padet_sdk.boxes import box_iou

#: boxes (K, 4) x1, y1, x2, y2 and identities (K,) of one frame
Frame = tuple[np.ndarray, np.ndarray]


def read_mot_gt(path: str | Path, num_frames: int | None = None) -> list[Frame]:
    """The considered boxes (7th column 1) of a MOTChallenge gt.txt, per frame (frame 1 first)."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2) if Path(path).stat().st_size else np.zeros((0, 9))
    rows = rows[rows[:, 6] == 1]
    n = int(rows[:, 0].max()) if num_frames is None and len(rows) else (num_frames or 0)
    out = []
    for f in range(1, n + 1):
        r = rows[rows[:, 0] == f]
        out.append((np.concatenate([r[:, 2:4], r[:, 2:4] + r[:, 4:6]], 1), r[:, 1].astype(np.int64)))
    return out


def mot_scores(truth: Sequence[Frame], tracked: Iterable[Frame], min_iou: float = 0.5) -> dict[str, float]:
    """``{"mota", "idf1", "id_switches", "precision", "recall"}`` of ``tracked`` (one entry per
    frame of ``truth``)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for (gb, gid), (hb, hid) in zip(truth, tracked):
        dist = 1.0 - box_iou(np.asarray(gb, np.float64).reshape(-1, 4), np.asarray(hb, np.float64).reshape(-1, 4))
        dist[dist > 1.0 - min_iou] = np.nan  # no match
        acc.update(np.asarray(gid).tolist(), np.asarray(hid).tolist(), dist)
    s = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "precision", "recall"], name="all")
    return {"mota": float(s["mota"].iloc[0]), "idf1": float(s["idf1"].iloc[0]), "id_switches": int(s["num_switches"].iloc[0]),
            "precision": float(s["precision"].iloc[0]), "recall": float(s["recall"].iloc[0])}  # fmt: skip


__all__ = ["Frame", "mot_scores", "read_mot_gt"]
