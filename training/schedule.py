"""The optimizer and its learning rate as a function of the step: linear warm-up by iteration,
then ×gamma at each milestone epoch (the paper's recipe)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def lr_factor(step: int, *, base_lr: float, iters_per_epoch: int, warmup_epochs: float,
              milestones: Sequence[float], gamma: float, warmup_start: float = 1e-6) -> float:  # fmt: skip
    """lr(step) / base_lr: linear warm-up from ``warmup_start`` over the first
    ``warmup_epochs`` (by iteration), then ×``gamma`` at each milestone epoch passed."""
    decay = gamma ** sum(step >= round(m * iters_per_epoch) for m in milestones)
    warm = round(warmup_epochs * iters_per_epoch)
    if step < warm:
        lr = warmup_start + (base_lr - warmup_start) * step / warm
        return lr / base_lr * decay
    return decay


def build_optimizer(model: nn.Module, name: str, *, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """``sgd`` or ``adamw`` (``momentum`` is AdamW's beta1); weight decay on weights only, not on
    biases and BatchNorm parameters."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adamw")


def build_scheduler(opt: torch.optim.Optimizer, *, base_lr: float, iters_per_epoch: int, warmup_epochs: float,
                    milestones: Sequence[float], gamma: float) -> torch.optim.lr_scheduler.LambdaLR:  # fmt: skip
    """A step-wise :func:`lr_factor` schedule (call ``step()`` after every optimizer step)."""

    def factor(step: int) -> float:  # a plain function: LambdaLR's state dict then holds no copy of it
        return lr_factor(step, base_lr=base_lr, iters_per_epoch=iters_per_epoch, warmup_epochs=warmup_epochs,
                         milestones=milestones, gamma=gamma)  # fmt: skip

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
