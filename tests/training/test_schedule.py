"""The optimizer and its step-wise learning rate (training/schedule.py)."""
from __future__ import annotations

import pytest
import torch

from training.schedule import build_optimizer, build_scheduler, lr_factor


def test_lr_warms_up_linearly_by_iteration_then_steps_down_at_milestones():
    kw = dict(base_lr=0.1, iters_per_epoch=10, warmup_epochs=2, milestones=[5, 8], gamma=0.1)
    assert lr_factor(0, **kw) * 0.1 == pytest.approx(1e-6)
    assert lr_factor(10, **kw) * 0.1 == pytest.approx(1e-6 + (0.1 - 1e-6) * 0.5)
    assert lr_factor(20, **kw) == 1.0
    assert lr_factor(49, **kw) == 1.0
    assert lr_factor(50, **kw) == pytest.approx(0.1)
    assert lr_factor(80, **kw) == pytest.approx(0.01)


def test_weight_decay_only_on_weights_and_the_scheduler_follows_the_steps():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = build_optimizer(model, "sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)
    decay, no_decay = opt.param_groups
    assert [p.ndim for p in decay["params"]] == [4] and decay["weight_decay"] == 5e-4
    assert all(p.ndim == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert isinstance(build_optimizer(model, "adamw", lr=0.1, momentum=0.9, weight_decay=0.0), torch.optim.AdamW)
    with pytest.raises(ValueError, match="sgd or adamw"):
        build_optimizer(model, "adam", lr=0.1, momentum=0.9, weight_decay=0.0)

    sched = build_scheduler(opt, base_lr=0.1, iters_per_epoch=4, warmup_epochs=0, milestones=[1], gamma=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1] * 4 + [0.01] * 2)
    assert sched.state_dict()["lr_lambdas"] == [None, None]  # checkpoints hold no function
