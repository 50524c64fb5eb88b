"""One training process's place in a torchrun job, and what makes N processes train as one.

Loss normalisation. :func:`training.losses.padet_loss` divides by the positives of the batch it
sees. Each process would then divide by its *own* positives, and DDP's gradient averaging would
not equal one process on the global batch. :func:`global_loss` therefore sums the counts over
processes and rescales each process's loss to ``world · sum_local / N_global``, so the averaged
gradient is exactly that of the global batch. BatchNorm: with ``--sync-bn`` the statistics are
those of the global batch too, on CPU through :class:`GlooSyncBatchNorm` (torch's
``SyncBatchNorm`` needs a GPU); without it each process normalises with its own share.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_arg: str | None) -> tuple[Dist, torch.device]:
    """Read torchrun's environment; start the process group (nccl on CUDA, gloo on CPU).
    ValueError when CUDA is asked for and torch sees none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device_arg or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but torch sees no CUDA device")
        device = torch.device("cuda", local_rank if world > 1 else (torch.device(kind).index or 0))
        torch.cuda.set_device(device)
    else:
        device = torch.device(kind)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, local_rank), device


def any_rank(flag: bool, d: Dist, device: torch.device) -> bool:
    """True when ``flag`` is true on any process (so that all stop together)."""
    if not d.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes with a gradient: y = Σ_r x_r on every process, so dL/dx_r is the sum
    over processes of dL_r'/dy — another sum-all-reduce."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch over all processes, on any
    device (torch's ``SyncBatchNorm`` refuses CPU tensors). Mean and variance are two
    autograd-aware all-reduces, so gradients flow to every process's inputs as they would in
    one process on the global batch. The state dict is that of a ``BatchNorm2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        c = x.shape[1]
        n_local = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        s = all_reduce(torch.cat([x.sum((0, 2, 3)), n_local]))
        n = s[c]
        mean = s[:c] / n
        centred = x - mean.view(1, c, 1, 1)
        var = all_reduce((centred * centred).sum((0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp(min=1)), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Replace every ``BatchNorm2d`` of ``module`` (in place; parameters and buffers kept)."""
        for name, child in module.named_children():
            if type(child) is nn.BatchNorm2d:
                new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
                new.load_state_dict(child.state_dict())
                new.to(child.weight.device if child.affine else child.running_mean.device)
                setattr(module, name, new)
            else:
                cls.convert(child)
        return module


def global_loss(parts: dict[str, Tensor], d: Dist) -> Tensor:
    """The loss whose DDP-averaged gradient equals one process's on the global batch: each
    normalised part is rescaled from local to global positives (times the world size, which
    DDP's averaging divides out). One process: ``parts["total"]`` unchanged."""
    if not d.enabled:
        return parts["total"]
    zero = parts["total"].new_zeros(())
    local = torch.stack([parts.get("num_pos_apm", zero), parts["num_pos_det"]]).detach().to(zero.dtype)
    total = local.clone()
    dist.all_reduce(total)
    scale = d.world * local.clamp(min=1) / total.clamp(min=1)
    apm = parts.get("apm_cls", zero) + parts.get("apm_reg", zero)
    det = parts["det_cls"] + parts["det_reg"]
    return apm * scale[0] + det * scale[1]
