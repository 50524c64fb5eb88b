"""Run logs (training/run_log.py): a resumed run drops what the killed one logged past its checkpoint."""
from __future__ import annotations

import csv

import pytest
import torch

from training.run_log import STEP_FIELDS, Meter, RunLog


def test_truncate_drops_the_rows_after_a_step_in_both_files(tmp_path):
    log = RunLog(tmp_path, "steps", STEP_FIELDS)
    for step in range(1, 6):
        log.append({"step": step, "epoch": 0, "lr": 0.1, "total": float(step)})
    log.truncate(3)
    assert [r["step"] for r in log.rows()] == [1, 2, 3]
    with open(tmp_path / "steps.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]
    log.append({"step": 4, "epoch": 0, "lr": 0.1, "total": 4.0})
    assert [r["step"] for r in log.rows()] == [1, 2, 3, 4]


def test_meter_averages_the_loss_parts_and_counts_images_per_second():
    m = Meter()
    m.add({"total": torch.tensor(1.0), "det_cls": torch.tensor(0.5)}, images=4, seconds=1.0)
    m.add({"total": torch.tensor(3.0), "det_cls": torch.tensor(1.5)}, images=4, seconds=1.0)
    assert m.means() == pytest.approx({"total": 2.0, "det_cls": 1.0, "images_per_s": 4.0})
