"""Train a PADet: ``python -m training.train --config vgg16_384 --data DIR [options]``.

Multi-GPU: ``torchrun --nproc_per_node=N -m training.train ...`` (DistributedDataParallel; nccl on
CUDA, gloo on CPU). ``--batch-size`` is the *global* batch; each process takes 1/N of it.

Reproducibility. The data order comes from a seeded sampler (``seed + epoch``) and every
sample's augmentation from its own generator seeded with ``(seed, epoch, sample index)``, so the
images a step sees depend neither on the number of processes nor on the data-loader workers,
and a resumed run (``--resume``) skips exactly the batches it had done. The learning rate is a
function of the step (linear warm-up from 1e-6 by iteration, ×gamma at each milestone epoch).
Together with the checkpointed model, optimizer, scheduler, scaler and RNG states, a resumed run
continues the same loss curve.

Loss normalisation under DDP. :func:`training.losses.padet_loss` divides by the positives of the
batch it sees. Each process would then divide by its *own* positives, and DDP's gradient
averaging would not equal one process on the global batch. The counts are therefore summed over
processes and each process's loss rescaled to ``world · sum_local / N_global``, so the averaged
gradient is exactly that of the global batch. BatchNorm: with ``--sync-bn`` the statistics are
those of the global batch too (on CPU through :class:`GlooSyncBatchNorm`, since torch's
``SyncBatchNorm`` needs a GPU); without it, each process normalises with its own share.

Logs (rank 0): ``steps.{csv,jsonl}`` every ``--log-every`` steps, ``epochs.{csv,jsonl}`` per
epoch, ``curves.png``, checkpoints ``last.pth`` and ``best.pth`` (best val AP50).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence

if __name__ == "__main__":  # before `import torch`: a missing [train] extra is one line, not a traceback
    from padet_sdk.extras import run_entry_module

    raise SystemExit(run_entry_module("training.train", extras="train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset, DistributedSampler  # noqa: E402

from padet_sdk.extras import modules_of, require  # noqa: E402

from .checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state  # noqa: E402
from .config import FAM_MODES, PRESETS, make_config  # noqa: E402
from .evaluate import DataError, evaluate, open_dataset, with_transform  # noqa: E402
from .losses import padet_loss  # noqa: E402
from .model import PADet  # noqa: E402

LOSS_PARTS = ("total", "apm_cls", "apm_reg", "det_cls", "det_reg")
COUNT_PARTS = ("num_pos_apm", "num_pos_det")
STEP_FIELDS = ("step", "epoch", "lr", *LOSS_PARTS, *COUNT_PARTS, "images_per_s", "elapsed_s")
EPOCH_FIELDS = ("epoch", "step", "lr", *LOSS_PARTS, *COUNT_PARTS, "images_per_s", "epoch_s", "elapsed_s",
                "AP", "AP50", "AP75")  # fmt: skip
#: redraw curves.png at most this often (matplotlib costs ~1 s; tiny epochs would pay it each time)
PLOT_EVERY_S = 60.0


class TrainingError(RuntimeError):
    """A problem the user can fix (bad option, data, weights); printed without a traceback."""


class TrainingDiverged(TrainingError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------- options
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train PADet (single process, or torchrun --nproc_per_node=N -m training.train ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default="vgg16_384", choices=sorted(PRESETS), help="network preset")
    p.add_argument("--data", required=True, type=Path, help="data directory (COCO layout, or VOC with --format voc)")
    p.add_argument("--format", choices=("coco", "voc"), default="coco")
    p.add_argument("--train-split", default=None, help="default: train (coco) / trainval (voc)")
    p.add_argument("--val-split", default=None, help="default: val (coco) / test (voc)")
    p.add_argument("--num-classes", type=int, default=None, help="default: the data set's")
    p.add_argument("--width", type=float, default=None, help="channel multiplier (narrow variant: 0.125, 0.25)")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--no-apm-score", action="store_true", help="ablation: no APM_C branch / θ rule")
    p.add_argument("--no-apm-reg", action="store_true", help="ablation: no APM_R anchor refinement")
    p.add_argument("--fam", choices=FAM_MODES, default=None, help="FAM offset mode")
    p.add_argument("--fam-detach", action="store_true", help="stop FAM gradients into the APM regression")
    p.add_argument("--ohem", type=float, default=None, metavar="RATIO", help="hard-negative mining neg:pos ratio")
    p.add_argument("--backbone-weights", type=Path, default=None, help="torchvision ImageNet weights file")
    p.add_argument("--epochs", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=32, help="GLOBAL batch (per process: batch / world size)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (the paper's); adamw trains a from-scratch network in far fewer steps")  # fmt: skip
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (AdamW: beta1)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=5.0, help="linear warm-up from 1e-6, by iteration")
    p.add_argument("--milestones", type=float, nargs="*", default=[100, 140], help="epochs where lr *= gamma")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true", help="train on resized images without SSD augmentation")
    p.add_argument("--expand-max-ratio", type=float, default=4.0, help="SSD zoom-out up to this factor")
    p.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this much training")
    p.add_argument("--max-steps", type=int, default=None, help="stop with a checkpoint after this many steps")
    p.add_argument("--workers", type=int, default=2, help="data-loader processes per training process")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--channels-last", choices=["auto", "yes", "no"], default="auto",
                   help="NHWC memory format for the network (auto: yes for one CPU process, where it made a "
                        "training step 1.4x faster in our measurements; no for DDP and CUDA, not measured)")  # fmt: skip
    p.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over all processes")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/NAME)")
    p.add_argument("--name", default=None, help="run name for the default --out (default: the preset)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                   help="continue from a checkpoint (default OUT/last.pth)")  # fmt: skip
    p.add_argument("--ckpt-every-steps", type=int, default=0, help="also checkpoint every N steps (0: per epoch only)")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate on the val split every N epochs (0: never)")
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--log-every", type=int, default=10, help="write a step log row every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu | cuda (default cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace, num_classes: int):
    """The network of these options (never with backbone weights: those are loaded once, here,
    and a checkpoint's config must rebuild the trained network without the file)."""
    over: dict[str, Any] = {}
    if args.width is not None:
        over["width"] = args.width
    if args.input_size is not None:
        over["input_size"] = args.input_size
    if args.no_apm_score:
        over["use_apm_score"] = False
    if args.no_apm_reg:
        over["use_apm_reg"] = False
        if args.fam is None:
            over["fam"] = "implicit"  # the default FAM needs APM_R's offsets
    if args.fam is not None:
        over["fam"] = args.fam
    if args.fam_detach:
        over["fam_detach"] = True
    if args.ohem is not None:
        over["neg_pos_ratio"] = args.ohem
    try:
        return make_config(args.config, num_classes, backbone_weights=None, **over)
    except ValueError as e:
        raise TrainingError(f"invalid network options: {e}") from e


# ---------------------------------------------------------------------------- distributed
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
    """Read torchrun's environment; start the process group (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device_arg or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda asked for, but torch sees no CUDA device")
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
    local = torch.stack([parts.get("num_pos_apm", zero), parts["num_pos_det"]]).detach().float()
    total = local.clone()
    dist.all_reduce(total)
    scale = d.world * local.clamp(min=1) / total.clamp(min=1)
    apm = parts.get("apm_cls", zero) + parts.get("apm_reg", zero)
    det = parts["det_cls"] + parts["det_reg"]
    return apm * scale[0] + det * scale[1]


# ---------------------------------------------------------------------------- data
class IndexSeededDataset(Dataset):
    """Applies ``transform`` to ``base[i]`` with a generator seeded by (seed, epoch, i): a sample's
    augmentation is the same whichever process or worker loads it, and a resumed run repeats
    it exactly."""

    def __init__(self, base: Any, transform: Any, seed: int) -> None:
        self.base = with_transform(base, None)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, target = self.base[index]
        return self.transform(image, target, rng=np.random.default_rng([self.seed, self.epoch, index]))


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (this process's share of a ``seed + epoch`` permutation) that can
    start part-way through an epoch, for resuming. ``drop_last`` keeps every process's share the
    same size, so the steps per epoch are those of one process with the global batch."""

    def __init__(self, dataset: Dataset, d: Dist, seed: int) -> None:
        super().__init__(dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this process's share (this epoch only)."""
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


def make_loader(ds: IndexSeededDataset, sampler: ResumableSampler, batch: int, workers: int, seed: int, epoch: int) -> DataLoader:
    from training.data import detection_collate

    # own generator: creating the iterator must not draw from (and shift) the global torch RNG
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    return DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=detection_collate,
        drop_last=True,
        generator=g,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


# ---------------------------------------------------------------------------- schedule
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


# ---------------------------------------------------------------------------- logging
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


# ---------------------------------------------------------------------------- training
class Trainer:
    """One training run (one process of it): data, model, optimizer and schedule, the loop,
    checkpoints and logs. ``epoch``/``epoch_step``/``step`` always describe the work done so far,
    so a checkpoint written at any moment resumes exactly there."""

    def __init__(self, args: argparse.Namespace, d: Dist, device: torch.device) -> None:
        self.args, self.d, self.device = args, d, device
        if args.amp and device.type != "cuda":
            raise TrainingError("--amp needs a CUDA device")
        if args.batch_size % d.world:
            raise TrainingError(f"--batch-size {args.batch_size} (global) is not divisible by the {d.world} processes")
        self.per_proc = args.batch_size // d.world
        if self.per_proc < 2:
            raise TrainingError(
                f"per-process batch is {self.per_proc} (global {args.batch_size} / {d.world} processes): BatchNorm on "
                "the 1x1 top level has one value per channel and cannot train on a batch of 1; use a batch of >= 2 "
                "per process"
            )
        self._open_data()
        self.cfg = config_from_args(self.args, self.num_classes)
        self.out = args.out or Path("runs") / (args.name or self.cfg.name)
        if d.main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        random.seed(args.seed)
        ckpt = self._load_resume()
        self._build_model(ckpt)
        self._build_data()
        self._build_optimizer()
        self.epoch = self.epoch_step = self.step = 0
        self.best: float | None = None
        self.metrics: dict[str, Any] = {}
        if ckpt is not None:
            self._restore(ckpt)
        self.last_plot = -float("inf")
        self.step_log = RunLog(self.out, "steps", STEP_FIELDS)
        self.epoch_log = RunLog(self.out, "epochs", EPOCH_FIELDS)
        if d.main:
            self.step_log.truncate(self.step)
            self.epoch_log.truncate(self.step)
            cfg = self.cfg
            print(f"PADet {cfg.name}: width {cfg.width}, input {cfg.input_size}, {cfg.num_classes} classes, "
                  f"{cfg.num_anchors} anchors; {len(self.train_ds)} train images, {self.iters} steps/epoch of "
                  f"{args.batch_size} ({d.world} x {self.per_proc}) on {device}; run dir {self.out}"
                  + (f"; resumed at epoch {self.epoch}, step {self.step}" if ckpt else ""), flush=True)  # fmt: skip

    # ------------------------------------------------------------------ setup
    def _open_data(self) -> None:
        args = self.args
        train_split = args.train_split or ("trainval" if args.format == "voc" else "train")
        val_split = args.val_split or ("test" if args.format == "voc" else "val")
        try:
            self.train_base = open_dataset(args.data, train_split, args.format)
            self.val_ds = open_dataset(args.data, val_split, args.format) if args.eval_every > 0 else None
        except DataError as e:
            raise TrainingError(str(e)) from e
        self.num_classes = args.num_classes or self.train_base.num_classes
        if self.num_classes < self.train_base.num_classes:
            raise TrainingError(
                f"--num-classes {self.num_classes} < the {self.train_base.num_classes} classes of {args.data}"
            )

    def _load_resume(self) -> dict[str, Any] | None:
        if not self.args.resume:
            return None
        path = self.out / "last.pth" if self.args.resume == "auto" else Path(self.args.resume)
        try:
            return load_checkpoint(path, config=self.cfg)
        except CheckpointError as e:
            raise TrainingError(str(e)) from e

    def _build_model(self, ckpt: dict[str, Any] | None) -> None:
        model = PADet(self.cfg)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        elif self.args.backbone_weights is not None:
            try:
                model.load_backbone(self.args.backbone_weights)
            except (FileNotFoundError, ValueError) as e:
                raise TrainingError(str(e)) from e
        if self.args.sync_bn and self.d.enabled:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                model = GlooSyncBatchNorm.convert(model)
        nhwc = self.args.channels_last == "yes" or (
            self.args.channels_last == "auto" and self.device.type == "cpu" and not self.d.enabled
        )
        self.memory_format = torch.channels_last if nhwc else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format).train()
        self.net: nn.Module = self.model
        if self.d.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _build_data(self) -> None:
        from training.data import build_eval_transform, build_train_transform

        cfg, args = self.cfg, self.args
        if args.no_augment:
            tf = build_eval_transform(cfg.input_size, cfg.mean, cfg.std, cfg.pixel_order)
        else:
            tf = build_train_transform(
                cfg.input_size, cfg.mean, cfg.std, pixel_order=cfg.pixel_order, expand_max_ratio=args.expand_max_ratio
            )
        self.train_ds = IndexSeededDataset(self.train_base, tf, args.seed)
        self.sampler = ResumableSampler(self.train_ds, self.d, args.seed)
        self.iters = len(self.sampler) // self.per_proc
        if self.iters == 0:
            raise TrainingError(f"{len(self.train_ds)} training images give no full batch of {args.batch_size}")

    def _build_optimizer(self) -> None:
        args = self.args
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        no_decay = [p for p in self.model.parameters() if p.ndim <= 1]  # biases, BatchNorm
        groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if args.optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=args.lr, betas=(args.momentum, 0.999))
        else:
            self.opt = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt,
            lambda s: lr_factor(s, base_lr=args.lr, iters_per_epoch=self.iters, warmup_epochs=args.warmup_epochs,
                                milestones=args.milestones, gamma=args.gamma),  # fmt: skip
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=args.amp)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.epoch, self.epoch_step, self.step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
        self.best, self.metrics = ckpt.get("best_ap50"), ckpt.get("metrics", {})
        old = ckpt.get("train_args", {})
        for key in ("batch_size", "seed", "optimizer", "lr", "milestones", "warmup_epochs", "gamma", "no_augment"):
            if key in old and old[key] != getattr(self.args, key):
                print(f"warning: resuming with --{key.replace('_', '-')} {getattr(self.args, key)}, the run used "
                      f"{old[key]}: the run will not continue the same curve", file=sys.stderr)  # fmt: skip
        if old.get("lr", self.args.lr) != self.args.lr:  # the scheduler state holds the old base lr
            self.sched.base_lrs = [self.args.lr] * len(self.opt.param_groups)
            for g, f in zip(self.opt.param_groups, self.sched.lr_lambdas):
                g["lr"] = self.args.lr * f(self.step)

    # ------------------------------------------------------------------ checkpoints, evaluation
    def state(self) -> dict[str, Any]:
        """The checkpoint dict (see :mod:`training.checkpoint`)."""
        return {
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "class_names": list(self.train_base.class_names),
            "cat_ids": {int(k): int(v) for k, v in self.train_base.cat_ids.items()},
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "train_args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()},
            "metrics": self.metrics,
            "best_ap50": self.best,
            "world_size": self.d.world,
        }

    def save(self, is_best: bool = False) -> None:
        if self.d.main:
            save_checkpoint(self.state(), self.out, is_best=is_best)

    def run_eval(self, epoch: int) -> bool:
        """Evaluate on rank 0 (the others wait); True when AP50 is the best so far."""
        improved = False
        if self.d.main:
            m = evaluate(self.model, self.val_ds, batch_size=self.args.eval_batch_size, device=self.device,
                         progress=not self.args.quiet)  # fmt: skip
            self.metrics = m
            improved = self.best is None or m["AP50"] > self.best
            self.best = m["AP50"] if improved else self.best
            print(f"epoch {epoch}: val AP {m['AP']:.4f} AP50 {m['AP50']:.4f} AP75 {m['AP75']:.4f}"
                  + (" (best)" if improved else ""), flush=True)  # fmt: skip
        if self.d.enabled:
            dist.barrier()
        return improved

    # ------------------------------------------------------------------ the loop
    def _diverged(self, what: str, values: str) -> NoReturn:
        last = self.out / "last.pth"
        kept = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"non-finite {what} at step {self.step + 1} (epoch {self.epoch}, batch {self.epoch_step}): {values}. "
            f"Stopped before the update; {kept} (lower --lr or lengthen --warmup-epochs)"
        )

    def train_step(self, images: Tensor, targets: list[dict[str, Any]]) -> tuple[dict[str, Tensor], float]:
        """One optimizer step; returns the loss parts and the learning rate it used."""
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.args.amp):
            outputs = self.net(images)
        parts = padet_loss(outputs, self.model.anchors, targets, self.cfg)
        loss = global_loss(parts, self.d)
        if any_rank(not bool(torch.isfinite(loss)), self.d, self.device):
            vals = ", ".join(f"{k}={float(parts[k].detach()):.4g}" for k in LOSS_PARTS if k in parts)
            self._diverged("loss", vals)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if not self.args.amp:  # (under AMP the scaler skips steps with inf/NaN gradients by design)
            # A finite loss can still give non-finite gradients; one such step makes the weights NaN and
            # the next forward would crash inside the FAM's deform_conv2d (it segfaults on NaN offsets on
            # CPU) instead of stopping here.
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads)
            if any_rank(not bool(torch.isfinite(norm)), self.d, self.device):
                self._diverged("gradient", f"gradient norm={float(norm):.4g}, loss={float(loss.detach()):.4g}")
        self.scaler.step(self.opt)
        self.scaler.update()
        lr = self.opt.param_groups[0]["lr"]
        self.sched.step()
        self.step += 1
        self.epoch_step += 1
        if self.epoch_step == self.iters:
            self.epoch, self.epoch_step = self.epoch + 1, 0
        return parts, lr

    def train_epoch(self, start: float) -> str | None:
        """The rest of the current epoch; returns why it stopped early (None: epoch done)."""
        from tqdm import tqdm

        args, d = self.args, self.d
        epoch = self.epoch
        budget = args.max_minutes * 60 if args.max_minutes else None
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(self.epoch_step * self.per_proc)
        self.train_ds.set_epoch(epoch)
        loader = make_loader(self.train_ds, self.sampler, self.per_proc, args.workers, args.seed, epoch)
        bar = tqdm(total=self.iters, initial=self.epoch_step, desc=f"epoch {epoch}", unit="step",
                   disable=not d.main or args.quiet, dynamic_ncols=True)  # fmt: skip
        epoch_meter, log_meter = Meter(), Meter()
        t_epoch = t0 = time.monotonic()
        stopped, lr = None, self.opt.param_groups[0]["lr"]
        try:
            for images, targets in loader:
                parts, lr = self.train_step(images, targets)
                now = time.monotonic()
                n_img = images.shape[0] * d.world
                epoch_meter.add(parts, n_img, now - t0)
                log_meter.add(parts, n_img, now - t0)
                t0 = now
                if d.main:
                    m = log_meter.means()
                    losses = " ".join(f"{k}={m[k]:.3f}" for k in LOSS_PARTS if k in m)
                    bar.set_postfix_str(f"{losses} lr={lr:.2e} {m['images_per_s']:.1f}img/s", refresh=False)
                    bar.update(1)
                    if self.step % args.log_every == 0:
                        self.step_log.append({"step": self.step, "epoch": epoch, "lr": lr, **m, "elapsed_s": now - start})
                        log_meter = Meter()
                if args.ckpt_every_steps and self.step % args.ckpt_every_steps == 0:
                    self.save()
                if args.max_steps is not None and self.step >= args.max_steps:
                    stopped = f"--max-steps {args.max_steps} reached"
                elif any_rank(budget is not None and now - start >= budget, d, self.device):
                    stopped = f"--max-minutes {args.max_minutes} reached"
                if stopped:
                    break
        finally:
            bar.close()
        finished = self.epoch > epoch
        evaluated = is_best = False
        if args.eval_every > 0 and (stopped or self.epoch >= args.epochs or (finished and self.epoch % args.eval_every == 0)):
            is_best, evaluated = self.run_eval(epoch), True
        if d.main:
            now = time.monotonic()
            row = {"epoch": epoch, "step": self.step, "lr": lr, **epoch_meter.means(), "epoch_s": now - t_epoch,
                   "elapsed_s": now - start}  # fmt: skip
            if evaluated:
                row.update({k: self.metrics[k] for k in ("AP", "AP50", "AP75")})
            self.epoch_log.append(row)
            if now - self.last_plot >= PLOT_EVERY_S or self.epoch >= args.epochs or stopped:
                plot_curves(self.out, self.step_log.rows(), self.epoch_log.rows())
                self.last_plot = now
        if finished or stopped:
            self.save(is_best=is_best)
        return stopped

    def run(self) -> dict[str, Any]:
        """Train to ``--epochs`` (or a stop); returns ``{"step", "epoch", "checkpoint", "metrics",
        "stopped"}``."""
        start = time.monotonic()
        stopped = None
        if self.args.max_steps is not None and self.step >= self.args.max_steps:
            stopped = f"already at --max-steps {self.args.max_steps}"
        while self.epoch < self.args.epochs and stopped is None:
            stopped = self.train_epoch(start)
        last = self.out / "last.pth"
        if self.d.main:
            why = stopped or f"{self.args.epochs} epochs done"
            print(f"stopped: {why} at step {self.step} after {(time.monotonic() - start) / 60:.1f} min; "
                  f"checkpoint {last}", flush=True)  # fmt: skip
        return {"step": self.step, "epoch": self.epoch, "checkpoint": str(last), "metrics": self.metrics,
                "stopped": stopped}  # fmt: skip


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run a training from parsed options (see :func:`build_parser`); see :meth:`Trainer.run`."""
    d, device = init_distributed(args.device)
    try:
        return Trainer(args, d, device).run()
    finally:
        if d.enabled and dist.is_initialized():
            dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the process exit status (0 ok, 2 usage/data error, 3 NaN)."""
    args = build_parser().parse_args(argv)
    # evaluation (pycocotools) and curves.png (matplotlib) come after an epoch: check them now
    require(*modules_of("train"))
    try:
        train(args)
    except TrainingDiverged as e:
        print(f"padet-train: training diverged: {e}", file=sys.stderr)
        return 3
    except TrainingError as e:
        print(f"padet-train: error: {e}", file=sys.stderr)
        return 2
    return 0
