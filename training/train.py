"""Train a PADet: ``python -m training.train --config vgg16_384 --data DIR [options]``.

Multi-GPU: ``torchrun --nproc_per_node=N -m training.train ...`` (DistributedDataParallel; nccl on
CUDA, gloo on CPU). ``--batch-size`` is the *global* batch; each process takes 1/N of it.

The :class:`Trainer` wires the parts together: the data order and per-sample augmentation seeds
(:mod:`training.sampling`), the optimizer and its step-wise learning rate
(:mod:`training.schedule`), the process group, global-batch loss and synchronised BatchNorm
(:mod:`training.distributed`) and the logs (:mod:`training.run_log`). Each of them is a function
of the seed and the step, so with the checkpointed model, optimizer, scheduler, scaler and RNG
states a resumed run (``--resume``) continues the same loss curve.

Logs (rank 0): ``steps.{csv,jsonl}`` every ``--log-every`` steps, ``epochs.{csv,jsonl}`` per
epoch, ``curves.png``, checkpoints ``last.pth`` and ``best.pth`` (best val AP50).
"""
from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Sequence

if __name__ == "__main__":  # before `import torch`: a missing [train] extra is one line, not a traceback
    from padet_sdk.extras import run_entry_module

    raise SystemExit(run_entry_module("training.train", extras="train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from padet_sdk.extras import modules_of, require  # noqa: E402

from .checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .distributed import Dist, GlooSyncBatchNorm, any_rank, global_loss, init_distributed  # noqa: E402
from .evaluate import DataError, evaluate, open_dataset  # noqa: E402
from .losses import padet_loss  # noqa: E402
from .model import PADet  # noqa: E402
from .run_dir import RunDirError, agree_on_run_dir  # noqa: E402
from .run_log import EPOCH_FIELDS, LOSS_PARTS, STEP_FIELDS, Meter, RunLog, plot_curves  # noqa: E402
from .sampling import IndexSeededDataset, ResumableSampler, make_loader  # noqa: E402
from .schedule import build_optimizer, build_scheduler  # noqa: E402
from .torch_files import load_weights_only  # noqa: E402
from .train_args import build_parser, config_from_args  # noqa: E402

#: redraw curves.png at most this often: drawing takes long next to the steps of a tiny epoch
PLOT_EVERY_S = 60.0


class TrainingError(RuntimeError):
    """A problem the user can fix (bad option, data, weights); printed without a traceback."""


class TrainingDiverged(TrainingError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


class Trainer:
    """One training run (one process of it): data, model, optimizer and schedule, the loop,
    checkpoints and logs. ``epoch``/``epoch_step``/``step`` always describe the work done so far,
    so a checkpoint written at any moment resumes exactly there."""

    def __init__(self, args: argparse.Namespace, d: Dist, device: torch.device) -> None:
        self.args, self.d, self.device = args, d, device
        if args.amp and args.dtype != "float32":
            raise TrainingError(f"--amp computes in float16; it cannot be combined with --dtype {args.dtype}")
        if args.amp and device.type != "cuda":
            raise TrainingError("--amp needs a CUDA device")
        self.dtype = getattr(torch, args.dtype)
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
        try:
            self.cfg = config_from_args(self.args, self.num_classes)
        except ValueError as e:
            raise TrainingError(f"invalid network options: {e}") from e
        try:
            self.out = agree_on_run_dir(args.out, args.name or self.cfg.name, resume=bool(args.resume),
                                        exist_ok=args.exist_ok, d=d)  # fmt: skip
        except RunDirError as e:
            raise TrainingError(str(e)) from None
        if d.main:
            self.out.mkdir(parents=True, exist_ok=True)
            stale = remove_stale_temporaries(self.out)
            if stale:
                print(f"removed {len(stale)} temporary checkpoint file(s) left by a killed run in {self.out}", flush=True)
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
        elif getattr(self.args, "init_weights", None) is not None:  # fine-tuning: weights only, a fresh run
            state = load_weights_only(self.args.init_weights, "--init-weights file")
            model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
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
        self.model = model.to(self.device, self.dtype, memory_format=self.memory_format).train()
        if getattr(self.args, "freeze_bn", False):  # BatchNorm as fixed affine maps (its running statistics)
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
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
        self.opt = build_optimizer(self.model, args.optimizer, lr=args.lr, momentum=args.momentum,
                                   weight_decay=args.weight_decay)  # fmt: skip
        self.sched = build_scheduler(self.opt, base_lr=args.lr, iters_per_epoch=self.iters,
                                     warmup_epochs=args.warmup_epochs, milestones=args.milestones, gamma=args.gamma)  # fmt: skip
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
            # evaluation feeds float32 images: a float64 run is scored on a float32 copy
            model = self.model if self.dtype == torch.float32 else copy.deepcopy(self.model).float()
            m = evaluate(model, self.val_ds, batch_size=self.args.eval_batch_size, device=self.device,
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
        images = images.to(self.device, self.dtype, non_blocking=True, memory_format=self.memory_format)
        if self.dtype != torch.float32:
            targets = [{**t, "boxes": t["boxes"].to(self.dtype)} for t in targets]
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
        cpu_budget = getattr(args, "max_cpu_minutes", None)
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
                elif cpu_budget and any_rank(time.process_time() >= cpu_budget * 60, d, self.device):
                    stopped = f"--max-cpu-minutes {cpu_budget} reached"
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
    try:
        d, device = init_distributed(args.device)
    except ValueError as e:
        raise TrainingError(str(e)) from e
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
