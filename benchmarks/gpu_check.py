"""The GPU path of PADet, checked in one command: CUDA correctness, training, inference speed.

Run on the lent GPU machine (torch 2.11 cu130 there; no pycocotools, openvino or nncf; no network;
the project runs from the source tree), from the repository root::

    PYTHONPATH=. python3 benchmarks/gpu_check.py --out $OUT/gpu

(about 7.5 minutes in all, under the device's 10-minute call; give the call timeout_s 560). It writes
``gpu_check.json`` (every figure, written again after every stage and while a stage runs, so a killed run
loses nothing it measured), ``gpu_check.txt`` (a short summary) and ``gpu_check.log`` (what the stages
printed) into ``--out``. On a CPU, ``--device cpu --smoke`` runs every stage at tiny sizes
(``tests/benchmarks/test_gpu_check.py`` runs it, so the script cannot rot between GPU sessions).

Stages, each in its own process with its own time box (``--budget-s``), inside a total budget
(``--total-budget-s``):

``environment``
    versions, the GPU, which packages are missing, and which project modules import with
    pycocotools/openvino/nncf blocked (what the GPU machine lacks).
``correctness``
    the model's forward and backward on the device against the CPU on the same weights and input, in
    float32 with TF32 off, within tolerances derived from float32 (see :func:`tolerances`), with a
    float64 CPU run beside them to tell whose error it is; torchvision's ``deform_conv2d`` and the
    training-side ``grid_sample`` FAM (``training/fam.py``) against the CPU op; the exported ONNX
    (onnxruntime CPU) against the device model. On ``--device cpu`` the device under test is the CPU
    in channels-last (other kernels, other rounding), so the same checks still compare two computations.
``training``
    ``python -m training.train`` through ``torchrun --nproc_per_node=1`` on rendered shapes data at the
    paper's recipe (batch 32, ``--amp``, SGD, warm-up) on vgg16_384 at full width: a run, a ``--resume``d
    continuation (step counter and log must continue), and a ``--channels-last yes`` run; loss trend,
    images/s and peak memory of each. With one process the trainer builds no process group (it needs
    WORLD_SIZE > 1), so a separate torchrun child checks nccl (or gloo) + DDP + SyncBatchNorm on its own.
``inference``
    eager FPS at batch 1 and 8 in FP32 (TF32 off), TF32, FP16 and BF16 autocast, with and without
    ``model.postprocess``, for the four presets, beside the paper's 1080 Ti FPS and torchvision's
    ``ssd300_vgg16`` measured in the same run.
``compile``
    the same through ``torch.compile`` (most important configurations first, while the budget lasts;
    a failing compile is reported as skipped with its reason).

Missing CUDA, a missing module, a failing compile or a stage that crashes or overruns is reported in the
JSON ("skipped" / "error" / "timeout" with the reason), never as a crash of this script. Exit status: 0
when every stage is "ok" or "skipped", 1 when a check failed or a stage broke.

Training reads COCO annotations through pycocotools (``training.data.CocoDetection``), and
``training.train`` checks that every package of the [train] extra is installed before it starts. Where
pycocotools is missing (the GPU machine), this script puts a small reader of COCO JSON under the name
``pycocotools.coco`` on the training processes' path (only what the trainer reads; nothing evaluates),
and says so in the JSON (``environment.pycocotools``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
SCHEMA = "padet-gpu-check/1"

STAGES = ("environment", "correctness", "training", "inference", "compile")
#: seconds per stage on the GPU (sum 455 s; the total budget below leaves room for process starts)
DEFAULT_BUDGET_S = {"environment": 25, "correctness": 90, "training": 175, "inference": 70, "compile": 95}
DEFAULT_TOTAL_S = 465.0
SMOKE_BUDGET_S = {"environment": 60, "correctness": 120, "training": 240, "inference": 120, "compile": 120}
SMOKE_TOTAL_S = 600.0
#: a stage is not started with less than this left of the total budget
MIN_STAGE_S = 8.0

PRESETS = ("vgg16_384", "vgg16_512", "resnet101_384", "resnet101_512")
#: the paper's Table (COCO test-dev, single scale), FPS on one GTX 1080 Ti
PAPER_FPS = {"vgg16_384": 62.5, "vgg16_512": 38.5, "resnet101_384": 40.0, "resnet101_512": 28.6}
NUM_CLASSES = 80

#: what the GPU machine lacks; --block-modules simulates it (import fails as if not installed)
GPU_MACHINE_MISSING = ("pycocotools", "openvino", "nncf")

# ---------------------------------------------------------------------------------------------- small tools


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Atomic: a reader (or a kill) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def tail(path: Path, chars: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-chars:]


#: gpu_check.log keeps its last 4 MiB (the device returns files of at most 16 MiB)
LOG_CAP = 4 * 2**20


def cap_file(path: Path, limit: int) -> None:
    try:
        if path.stat().st_size > limit:
            with open(path, "rb") as f:
                f.seek(-limit, os.SEEK_END)
                data = f.read()
            path.write_bytes(b"[... cut to the last %d bytes]\n" % limit + data)
    except OSError:
        pass


class Skip(Exception):
    """A stage or an item that cannot run here; the message is the reason."""


class Part:
    """A stage's results, saved to its part file after every item (the parent merges them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"status": "running", "checks": {}}

    def save(self) -> None:
        write_json(self.path, self.data)

    def check(self, name: str, passed: bool | None, **info: Any) -> bool | None:
        """A gated result (``passed`` None: measured but not judged, with ``info['why']``)."""
        self.data["checks"][name] = {"pass": passed, **info}
        self.save()
        return passed

    def finish(self) -> None:
        failed = [k for k, v in self.data["checks"].items() if v.get("pass") is False]
        self.data["status"] = "failed" if failed else "ok"
        if failed:
            self.data["reason"] = "failed checks: " + ", ".join(failed)


class Clock:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def left(self) -> float:
        return self.deadline - time.time()

    def need(self, seconds: float, what: str) -> None:
        if self.left() < seconds:
            raise Skip(f"stage budget: {self.left():.0f} s left, {what} needs about {seconds:.0f} s")


# ---------------------------------------------------------------------------------------------- tolerances

EPS32 = 2.0**-23  # float32 machine epsilon (unit roundoff u = eps/2)
SAFETY = 4.0


def tolerances(depth: int, k_fwd: int, k_bwd: int) -> dict[str, Any]:
    """Relative L2 tolerances ||a - b|| / ||b|| for two float32 computations of the same network.

    Forward. A K-term float32 dot product carries a relative rounding error of about sqrt(K)·eps32
    (rounding errors of the partial sums add like a random walk; the worst case is K·eps32). Two
    implementations (CPU and cuDNN: other kernels, other summation orders) differ by about sqrt(2)
    times that. Errors of L layers in a row add in the same way, so the outputs differ by about
    sqrt(L·K)·eps32, with K the largest fan-in (C_in·kh·kw; 512·9 = 4,608 for VGG-16) and L the
    number of convolutions on the longest path (read off the autograd graph). SAFETY = 4 covers the
    sqrt(2), the tail of the distribution and the growth of relative error through layers with small
    outputs. TF32 (10-bit mantissa, eps 2^-10) differs by ~1e-3, well above this: hence TF32 off.

    Backward. The same argument with 2L layers (forward, then backward) and K the longest sum of the
    backward: the weight gradient sums over B·H·W positions (2·384·384 = 294,912 for the first VGG
    layer). It is not the dominant term: ReLU, max-pool and bilinear sampling have kinks, and a unit
    whose input lies within the forward rounding error δ = sqrt(L·K)·eps32 of a kink routes its gradient
    differently on the two devices. About a fraction δ of the units flip; each flip changes one gradient
    element by about its own size, and flips add like a random walk over the tensor's elements, so a
    gradient tensor differs by about sqrt(δ) (measured on the CPU, NCHW vs channels-last and float32
    vs float64: 3e-4 for all parameters together, up to 1e-2 for a single small tensor). The backward
    tolerance is SAFETY times the larger of the two. It is gated for the input gradient and for all
    parameter gradients together; per tensor it is reported only (a tensor of a few hundred elements
    can take a whole flip).
    """
    delta = math.sqrt(depth * k_fwd) * EPS32
    fwd = SAFETY * delta
    smooth = SAFETY * math.sqrt(2 * depth * k_bwd) * EPS32
    kinks = SAFETY * math.sqrt(delta)
    return {
        "eps32": EPS32, "safety": SAFETY, "depth_L": depth, "k_forward": k_fwd, "k_backward": k_bwd,
        "forward_rel_l2": fwd, "backward_rel_l2": max(smooth, kinks),
        "backward_smooth_term": smooth, "backward_kink_term": kinks,
        "formula": "fwd = 4·sqrt(L·K_fwd)·eps32; bwd = 4·max(sqrt(2L·K_bwd)·eps32, sqrt(sqrt(L·K_fwd)·eps32))",
    }  # fmt: skip


def op_tolerance(k: int) -> float:
    """One operator (no chain, no kinks: offsets keep every sample away from a cell border): two
    float32 K-term sums differ by about sqrt(2K)·eps32."""
    return SAFETY * math.sqrt(2 * k) * EPS32


# ---------------------------------------------------------------------------------------------- module blocking, pycocotools stand-in

SITECUSTOMIZE = '''"""Written by benchmarks/gpu_check.py --block-modules: modules named in PADET_GPU_CHECK_BLOCK fail to
import as if they were not installed (the GPU machine has no pycocotools, openvino or nncf), except a
stand-in found in PADET_GPU_CHECK_SHIM. Then runs the sitecustomize this one hides, if any."""
import importlib.machinery
import importlib.util
import os
import sys

_BLOCKED = {n for n in os.environ.get("PADET_GPU_CHECK_BLOCK", "").split(",") if n}
_SHIM = os.environ.get("PADET_GPU_CHECK_SHIM", "")


class _Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] not in _BLOCKED or "." in name:
            return None  # a submodule is only reached through an allowed (stand-in) package
        if _SHIM:
            spec = importlib.machinery.PathFinder.find_spec(name, [_SHIM])
            if spec is not None:
                return spec
        raise ModuleNotFoundError(f"No module named {name!r} (blocked by gpu_check --block-modules)", name=name)


sys.meta_path.insert(0, _Blocker)

_here = os.path.dirname(os.path.abspath(__file__))
for _entry in sys.path:
    if os.path.abspath(_entry or ".") == _here:
        continue
    _spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [_entry])
    if _spec is not None and _spec.loader is not None:
        _mod = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_mod)
        break
'''

COCO_SHIM = '''"""Stand-in for pycocotools.coco.COCO written by benchmarks/gpu_check.py where pycocotools is not
installed: only the annotation index that training.data.CocoDetection reads. No evaluation."""
import json
from collections import defaultdict


class COCO:
    def __init__(self, annotation_file=None):
        self.dataset, self.anns, self.cats, self.imgs = {}, {}, {}, {}
        self.imgToAnns, self.catToImgs = defaultdict(list), defaultdict(list)
        if annotation_file is not None:
            with open(annotation_file) as f:
                self.dataset = json.load(f)
            self.createIndex()

    def createIndex(self):
        for ann in self.dataset.get("annotations", []):
            self.anns[ann["id"]] = ann
            self.imgToAnns[ann["image_id"]].append(ann)
            self.catToImgs[ann["category_id"]].append(ann["image_id"])
        for img in self.dataset.get("images", []):
            self.imgs[img["id"]] = img
        for cat in self.dataset.get("categories", []):
            self.cats[cat["id"]] = cat

    def getCatIds(self):
        return list(self.cats)

    def getImgIds(self):
        return list(self.imgs)
'''


def install_blocker(names: set[str], shim: str = "") -> None:
    """In this process: importing ``names`` fails as if they were not installed (the stand-in in
    ``shim`` excepted). Used by the environment stage to see what the GPU machine would see."""
    import importlib.machinery

    class _Blocker:
        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
            if name.partition(".")[0] not in names or "." in name:
                return None
            if shim:
                spec = importlib.machinery.PathFinder.find_spec(name, [shim])
                if spec is not None:
                    return spec
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)

    sys.meta_path.insert(0, _Blocker)


# ---------------------------------------------------------------------------------------------- the parent


def parse_budgets(items: list[str], smoke: bool) -> dict[str, float]:
    budgets = dict(SMOKE_BUDGET_S if smoke else DEFAULT_BUDGET_S)
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep:
            budgets = {k: float(value) for k in budgets}
        elif name in budgets:
            budgets[name] = float(value)
        else:
            raise SystemExit(f"--budget-s: unknown stage {name!r}; stages are {', '.join(STAGES)}")
    return budgets


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json/.txt/.log")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="auto: cuda when torch sees one; without CUDA the GPU stages are skipped")  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="tiny sizes, every stage in seconds (for CPU tests)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of stages to run")
    p.add_argument("--budget-s", action="append", default=[], metavar="[STAGE=]S",
                   help=f"time box of a stage (repeatable), or of every stage; defaults {DEFAULT_BUDGET_S}")  # fmt: skip
    p.add_argument("--total-budget-s", type=float, default=None,
                   help=f"the whole run (default {DEFAULT_TOTAL_S:.0f}; smoke {SMOKE_TOTAL_S:.0f})")  # fmt: skip
    p.add_argument("--presets", default=None, help=f"inference presets (default all: {','.join(PRESETS)})")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; smoke: eager)")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (e.g. reduce-overhead: CUDA graphs)")
    p.add_argument("--block-modules", default="", metavar="A,B",
                   help=f"make these imports fail in every stage, as on the GPU machine ({','.join(GPU_MACHINE_MISSING)})")  # fmt: skip
    p.add_argument("--keep-work", action="store_true", help="keep the work folder (data, checkpoints, ONNX)")
    # internal: one stage in a child process
    p.add_argument("--_stage", help=argparse.SUPPRESS)
    p.add_argument("--_part", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--_deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--_context", type=Path, help=argparse.SUPPRESS)
    return p


class Runner:
    """The parent process: torch-free, it starts each stage as a child, time-boxes it, merges its
    results and rewrites the JSON and the summary."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args, self.argv = args, argv
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.txt_path, self.log_path = (self.out / f"gpu_check.{x}" for x in ("json", "txt", "log"))
        self.log_path.write_text("")
        self.work = Path(tempfile.mkdtemp(prefix="padet-gpu-check-"))
        self.t0 = time.time()
        self.total = args.total_budget_s if args.total_budget_s is not None else (
            SMOKE_TOTAL_S if args.smoke else DEFAULT_TOTAL_S)  # fmt: skip
        self.budgets = parse_budgets(args.budget_s, args.smoke)
        wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = set(wanted) - set(STAGES)
        if unknown:
            raise SystemExit(f"--stages: unknown {sorted(unknown)}; stages are {', '.join(STAGES)}")
        self.stages = [s for s in STAGES if s in wanted or s == "environment"]
        self.blocked = {n.strip() for n in args.block_modules.split(",") if n.strip()}
        self.synth: subprocess.Popen | None = None
        self.report: dict[str, Any] = {
            "schema": SCHEMA,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "cwd": os.getcwd(),
            "mode": "smoke" if args.smoke else "full",
            "device_requested": args.device,
            "started": now_iso(),
            "finished": None,
            "elapsed_s": 0.0,
            "budget_s": {"total": self.total, **{s: self.budgets[s] for s in self.stages}},
            "blocked_modules": sorted(self.blocked),
            "stages": {s: {"status": "pending"} for s in self.stages},
        }
        self.context: dict[str, Any] = {"work": str(self.work), "smoke": args.smoke}
        self.env = self._child_env()
        self.save()

    # ------------------------------------------------------------------ environment of the children
    def _child_env(self) -> dict[str, str]:
        import importlib.util

        paths = []
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        shim = ""
        real = "pycocotools" not in self.blocked and importlib.util.find_spec("pycocotools") is not None
        if not real:
            shim_dir = self.work / "shim"
            (shim_dir / "pycocotools").mkdir(parents=True)
            (shim_dir / "pycocotools" / "__init__.py").write_text('"""gpu_check stand-in (see coco.py)."""\n')
            (shim_dir / "pycocotools" / "coco.py").write_text(COCO_SHIM)
            shim = str(shim_dir)
            paths.append(shim)
        self.context["pycocotools"] = "installed" if real else f"stand-in {shim}/pycocotools (annotation reader only)"
        self.context["shim"] = shim
        if self.blocked:
            site = self.work / "site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
            paths.insert(0, str(site))
            env["PADET_GPU_CHECK_BLOCK"] = ",".join(sorted(self.blocked))
            env["PADET_GPU_CHECK_SHIM"] = shim
        paths.append(str(REPO))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    # ------------------------------------------------------------------ report
    def save(self) -> None:
        self.report["elapsed_s"] = round(time.time() - self.t0, 1)
        write_json(self.json_path, self.report)
        try:
            self.txt_path.write_text(summary_text(self.report))
        except Exception as e:  # the summary must never stop the run
            self.txt_path.write_text(f"summary failed: {type(e).__name__}: {e}\n")

    def log(self, text: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(text.rstrip("\n") + "\n")
        print(text, flush=True)

    # ------------------------------------------------------------------ background data for training
    def start_synth(self) -> None:
        smoke = self.args.smoke
        n, size = (8, 128) if smoke else (TRAIN["images"], 384)
        data = self.work / "data"
        self.context["data"] = str(data)
        self.context["data_done"] = str(self.work / "data.done.json")
        cmd = [sys.executable, "-m", "training.data.synth", "--out", str(data), "--train", str(n), "--val", "2",
               "--size", str(size), "--seed", "0", "--quiet"]  # fmt: skip
        self.synth_t0 = time.time()
        self.synth_log = open(self.work / "synth.log", "w")
        self.synth = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self.synth_log, stderr=subprocess.STDOUT,
                                      start_new_session=True)  # fmt: skip

    def poll_synth(self) -> None:
        if self.synth is None or self.synth.poll() is None:
            return
        done = Path(self.context["data_done"])
        if not done.exists():
            self.synth_log.close()
            write_json(done, {"rc": self.synth.returncode, "elapsed_s": round(time.time() - self.synth_t0, 1),
                              "log": tail(self.work / "synth.log", 800)})  # fmt: skip

    # ------------------------------------------------------------------ one stage
    def run_stage(self, name: str) -> None:
        entry = self.report["stages"][name]
        left = self.total - (time.time() - self.t0)
        if left < MIN_STAGE_S:
            entry.update(status="skipped", reason=f"total budget: {max(left, 0):.0f} s of {self.total:.0f} s left")
            self.save()
            return
        env_stage = self.report["stages"].get("environment", {})
        if name != "environment" and env_stage.get("status") not in ("ok", "failed"):
            entry.update(status="skipped", reason=f"the environment stage did not complete ({env_stage.get('status')})")
            self.save()
            return
        if name != "environment" and self.context.get("skip_reason"):
            entry.update(status="skipped", reason=self.context["skip_reason"])
            self.save()
            return
        box = min(self.budgets[name], left)
        deadline = time.time() + box
        part_path = self.work / f"part_{name}.json"
        ctx_path = self.work / "context.json"
        write_json(ctx_path, self.context)
        cmd = [sys.executable, str(SCRIPT), *self.argv, "--_stage", name, "--_part", str(part_path),
               "--_deadline", repr(deadline - 3.0), "--_context", str(ctx_path)]  # fmt: skip
        entry.update(status="running", budget_s=round(box, 1))
        self.save()
        self.log(f"== stage {name} (time box {box:.0f} s, {left:.0f} s of the total left)")
        t = time.time()
        with open(self.log_path, "a") as logf:
            proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
            timed_out = False
            last_merge = 0.0
            try:
                while proc.poll() is None:
                    time.sleep(0.5)
                    self.poll_synth()
                    if time.time() - last_merge > 5:
                        self._merge(name, part_path, running=True)
                        last_merge = time.time()
                    if time.time() > deadline + 2:
                        timed_out = True
                        self._kill(proc)
                        break
            except BaseException:  # interrupted (Ctrl-C, SIGTERM): stop the stage, keep what it measured
                self._kill(proc)
                self._merge(name, part_path, running=False)
                self.report["stages"][name].update(status="timeout", reason="the check was interrupted during this stage")
                raise
        self.poll_synth()
        self._merge(name, part_path, running=False)
        entry = self.report["stages"][name]
        entry["elapsed_s"] = round(time.time() - t, 1)
        if timed_out:
            entry.update(status="timeout", reason=f"killed at its time box of {box:.0f} s; results so far kept")
        elif entry.get("status") in (None, "running", "pending"):
            last = (tail(self.log_path, 600).strip().splitlines() or [""])[-1]
            entry.update(status="error", reason=f"stage process exited with {proc.returncode} before reporting: {last}")
        if name == "environment":
            self._after_environment(entry)
        self.save()
        self.log(f"== stage {name}: {entry.get('status')} in {entry['elapsed_s']:.0f} s"
                 + (f" ({entry['reason']})" if entry.get("reason") else ""))  # fmt: skip

    def _merge(self, name: str, part_path: Path, running: bool) -> None:
        part = read_json(part_path)
        if part is None:
            return
        entry = self.report["stages"][name]
        keep = {k: entry[k] for k in ("budget_s",) if k in entry}
        entry.clear()
        entry.update(part, **keep)
        if running and entry.get("status") == "running":
            entry["status"] = "running"
        self.save()

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        """The stage's own process group (its torchrun and loader children too)."""
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _after_environment(self, entry: dict[str, Any]) -> None:
        cuda = bool(entry.get("cuda_available"))
        want = self.args.device
        if want == "cpu":
            self.context["device"] = "cpu"
        elif cuda:
            self.context["device"] = "cuda"
        elif want == "auto" and self.args.smoke:
            self.context["device"] = "cpu"
        else:
            self.context["device"] = None
            self.context["skip_reason"] = (
                f"CUDA not available ({entry.get('cuda_reason', 'torch.cuda.is_available() is False')}); "
                "this check is for a GPU machine (on a CPU: --device cpu --smoke)"
            )
        entry["device_used"] = self.context["device"]
        for key in ("pycocotools",):
            entry[key] = self.context[key]

    # ------------------------------------------------------------------ the whole run
    def run(self) -> int:
        def interrupted(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupted)
        try:
            for name in self.stages:
                self.run_stage(name)
                if name == "environment" and "training" in self.stages and self.context.get("device"):
                    self.start_synth()  # the training data, rendered beside the correctness stage
        except KeyboardInterrupt:
            self.report["interrupted"] = True
        finally:
            if self.synth is not None and self.synth.poll() is None:
                self._kill(self.synth)
            self.report["finished"] = now_iso()
            self.save()
            cap_file(self.log_path, LOG_CAP)
            if self.args.keep_work:
                self.log(f"work folder kept: {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)
        statuses = {s: self.report["stages"][s].get("status") for s in self.stages}
        self.log("stages: " + ", ".join(f"{k} {v}" for k, v in statuses.items()))
        self.log(f"wrote {self.json_path} and {self.txt_path} in {time.time() - self.t0:.0f} s")
        return 0 if all(v in ("ok", "skipped") for v in statuses.values()) else 1


# ---------------------------------------------------------------------------------------------- stage: environment


def dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def module_present(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def stage_environment(args: argparse.Namespace, ctx: dict[str, Any], part: Part, clock: Clock) -> None:
    import platform

    d = part.data
    d["python"] = sys.version.split()[0]
    d["executable"] = sys.executable
    d["platform"] = platform.platform()
    d["cpu_count"] = os.cpu_count()
    packages = {"torch": "torch", "torchvision": "torchvision", "onnx": "onnx", "onnxruntime": "onnxruntime",
                "onnxscript": "onnxscript", "numpy": "numpy", "cv2": "opencv-python-headless", "tqdm": "tqdm",
                "matplotlib": "matplotlib", "pycocotools": "pycocotools", "openvino": "openvino", "nncf": "nncf",
                "triton": "triton"}  # fmt: skip
    shim = ctx.get("shim") or ""

    def state(mod: str, dist: str) -> str | None:
        if not module_present(mod):
            return None
        if shim and mod == "pycocotools":
            import importlib.util

            spec = importlib.util.find_spec(mod)
            if spec is not None and (spec.origin or "").startswith(shim):
                return "stand-in"
        return dist_version(dist) or "present"

    d["packages"] = {m: state(m, dist) for m, dist in packages.items()}
    d["missing"] = sorted(m for m, v in d["packages"].items() if v in (None, "stand-in"))
    part.save()
    import torch

    d["torch"] = torch.__version__
    d["torch_cuda"] = torch.version.cuda
    try:
        d["cuda_available"] = torch.cuda.is_available()
    except Exception as e:
        d["cuda_available"], d["cuda_reason"] = False, f"{type(e).__name__}: {e}"
    if not d["cuda_available"] and "cuda_reason" not in d:
        d["cuda_reason"] = "torch.cuda.is_available() is False" + (
            " (this torch has no CUDA)" if torch.version.cuda is None else "")  # fmt: skip
    if d["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        d["gpu"] = {
            "name": props.name, "count": torch.cuda.device_count(), "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "multiprocessors": props.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
        }  # fmt: skip
        try:
            v = torch.cuda.nccl.version()
            d["gpu"]["nccl"] = ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        except Exception as e:
            d["gpu"]["nccl"] = f"unknown ({type(e).__name__})"
    import torch.distributed as dist

    d["distributed"] = {"available": dist.is_available(),
                        "nccl": bool(dist.is_available() and dist.is_nccl_available()),
                        "gloo": bool(dist.is_available() and dist.is_gloo_available())}  # fmt: skip
    d["tf32_defaults"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
    d["pycocotools"] = ctx.get("pycocotools")
    part.save()
    # what the GPU machine would see: project modules importing with its missing packages blocked
    install_blocker(set(GPU_MACHINE_MISSING), ctx.get("shim", ""))
    imports = {}
    for mod in ("training", "training.model", "training.data", "training.data.coco", "training.train",
                "training.evaluate", "training.checkpoint", "export.graph", "export.onnx_export", "padet_sdk"):  # fmt: skip
        try:
            __import__(mod)
            imports[mod] = "ok"
        except Exception as e:
            imports[mod] = f"{type(e).__name__}: {e}"
    d["imports_without_" + "_".join(GPU_MACHINE_MISSING)] = imports
    try:
        from padet_sdk.extras import modules_of

        need = list(modules_of("train"))
        d["train_cli_requires"] = need
        d["train_cli_missing"] = [m for m in need if not module_present(m)]
    except Exception as e:
        d["train_cli_requires"] = f"unknown ({type(e).__name__}: {e})"
    part.check("project imports without " + "/".join(GPU_MACHINE_MISSING), all(v == "ok" for v in imports.values()),
               failed=[k for k, v in imports.items() if v != "ok"])  # fmt: skip


# ---------------------------------------------------------------------------------------------- stage: correctness


def rel_l2(a: Any, b: Any) -> float:
    """||a - b|| / ||b|| in float64."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    den = float(b.norm())
    return float((a - b).norm()) / den if den > 0 else float((a - b).norm())


def max_abs(a: Any, b: Any) -> float:
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max()) if a.numel() else 0.0


def strict_fp32() -> None:
    """TF32 off everywhere: float32 convolutions and matmuls in float32 (the tolerance assumes it)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def allow_tf32(on: bool) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def synchronize(device: Any) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def fam_checks(dev: Any, smoke: bool, part: Part, clock: Clock) -> None:
    """torchvision deform_conv2d on the device vs the CPU op; the grid_sample form (training/fam.py)
    vs the CPU op, on both devices; the FAM module (train mode: grid_sample on a CPU, torchvision's op
    on CUDA) vs the CPU. Offsets are an integer plus a fraction in [0.1, 0.9]: bilinear sampling has a
    kink at every cell border, and an offset within rounding of one would take a different gradient
    branch on each device (see tolerances())."""
    import torch
    from torchvision.ops import deform_conv2d

    from training.fam import FAM, deform_conv2d_sampled

    clock.need(5, "the FAM checks")
    b, c, hw = (2, 32, 16) if smoke else (2, 256, 48)  # the first FAM level of vgg16_384: 256 channels, 48x48
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, c, hw, hw, generator=g)
    whole = torch.randint(-3, 4, (b, 18, hw, hw), generator=g).float()
    off = whole + 0.1 + 0.8 * torch.rand(b, 18, hw, hw, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g) / math.sqrt(9 * c)
    bias = torch.randn(c, generator=g)
    up = torch.randn(b, c, hw, hw, generator=g)
    k = max(9 * c, b * hw * hw)
    tol = op_tolerance(k)
    part.data["fam_tolerance"] = {"rel_l2": tol, "k": k, "formula": "4·sqrt(2K)·eps32, K = max(9·C, B·H·W)"}

    def run(fn: Callable, device: Any, dtype: Any = torch.float32) -> list[Any]:
        ins = [t.to(device, dtype, copy=True).requires_grad_() for t in (x, off, w, bias)]
        y = fn(*ins)
        grads = torch.autograd.grad((y * up.to(device, dtype)).sum(), ins)
        return [y.detach().cpu(), *[t.cpu() for t in grads]]

    names = ("output", "grad_input", "grad_offset", "grad_weight", "grad_bias")
    tv = lambda a, o, ww, bb: deform_conv2d(a, o, ww, bb, padding=(1, 1))  # noqa: E731
    ref = run(tv, "cpu")
    ref64 = run(tv, "cpu", torch.float64)
    cases = [("grid_sample form on cpu vs torchvision cpu", deform_conv2d_sampled, "cpu")]
    if dev.type != "cpu":
        cases = [(f"torchvision deform_conv2d {dev.type} vs cpu", tv, dev),
                 (f"grid_sample form on {dev.type} vs torchvision cpu", deform_conv2d_sampled, dev), *cases]  # fmt: skip
    for label, fn, device in cases:
        got = run(fn, device)
        errs = {n: rel_l2(a, e) for n, a, e in zip(names, got, ref)}
        vs64 = {n: rel_l2(a, e) for n, a, e in zip(names, got, ref64)}
        part.check(label, max(errs.values()) <= tol, rel_l2=errs, rel_l2_vs_cpu_float64=vs64, tol=tol,
                   max_abs_output=max_abs(got[0], ref[0]))  # fmt: skip
    part.data["fam_cpu_float32_vs_float64"] = {n: rel_l2(a, e) for n, a, e in zip(names, ref, ref64)}
    # the module in training mode, as the trainer runs it: grid_sample on a CPU, torchvision's op on
    # CUDA (on a CPU, the device under test is the module in eval mode, which runs torchvision's op)
    torch.manual_seed(2)
    fam = FAM(c, 6, "disentangled").train()
    for m in (fam.loc, fam.shape):
        torch.nn.init.normal_(m.weight, std=0.3)
    reg = torch.randn(b, 24, hw, hw, generator=g)
    outs = []
    for device, training in (("cpu", True), (dev, dev.type != "cpu")):
        f = FAM(c, 6, "disentangled")
        f.load_state_dict(fam.state_dict())
        f = f.to(device).train(training)
        xi, ri = x.to(device, copy=True).requires_grad_(), reg.to(device)
        y = f(xi, ri)
        params = [f.weight, f.bias]
        gr = torch.autograd.grad((y * up.to(device)).sum(), [xi, *params])
        outs.append([y.detach().cpu(), *[t.cpu() for t in gr]])
    e, a = outs
    errs = {n: rel_l2(p, q) for n, p, q in zip(("output", "grad_input", "grad_weight", "grad_bias"), a, e)}
    # the module ends in a ReLU, whose kink flips units within rounding of 0 (see tolerances()); its
    # offsets come from convs and may sit within rounding of a cell border, so the offset gradient is
    # checked above (op level), not here
    tol_module = SAFETY * max(math.sqrt(2 * k) * EPS32, math.sqrt(math.sqrt(9 * c) * EPS32))
    dut = f"{dev.type} train mode" if dev.type != "cpu" else "cpu eval mode"
    part.check(f"FAM module {dut} (torchvision op) vs cpu train mode (grid_sample)",
               max(errs.values()) <= tol_module, rel_l2=errs, tol=tol_module)  # fmt: skip


def set_fam_offsets(model: Any, x: Any) -> list[float]:
    """Give every FAM non-zero offsets with a standard deviation of about 1 pixel (a fresh model
    has zero offsets, which would leave the deformable sampling untested)."""
    import torch

    from training.fam import FAM

    fams = [m for m in model.modules() if isinstance(m, FAM) and m.mode != "none"]
    gen = torch.Generator().manual_seed(3)
    for f in fams:
        for conv in (c for c in f.modules() if isinstance(c, torch.nn.Conv2d)):
            conv.weight.data.copy_(torch.randn(conv.weight.shape, generator=gen))
    stds: dict[Any, float] = {}
    hooks = [f.register_forward_pre_hook(lambda m, inp: stds.__setitem__(m, float(m.offsets(*inp).std())))
             for f in fams]  # fmt: skip
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for f in fams:
        s = stds.get(f, 0.0)
        for conv in (c for c in f.modules() if isinstance(c, torch.nn.Conv2d)):
            if s > 0:
                conv.weight.data /= s
    return [round(v, 4) for v in stds.values()]


def conv_depth(roots: list[Any]) -> int:
    """The largest number of convolutions (incl. deformable) on one path of the autograd graph."""
    memo: dict[Any, int] = {}
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node is None or (node in memo and not expanded):
                continue
            nexts = [n for n, _ in node.next_functions if n is not None]
            if not expanded:
                stack.append((node, True))
                stack.extend((n, False) for n in nexts if n not in memo)
                continue
            own = 1 if ("Convolution" in node.name() or "eform" in node.name()) else 0
            memo[node] = own + max((memo.get(n, 0) for n in nexts), default=0)
    return max((memo.get(r, 0) for r in roots), default=0)


def model_check(preset: str, dev: Any, smoke: bool, part: Part, clock: Clock, keep: dict[str, Any]) -> None:
    """Forward and backward of the whole network (eval mode) on the device vs the CPU.

    Eval mode, because BatchNorm in training mode on the 1x1 top level normalises 2 values per channel
    at batch 2, which amplifies rounding without bound (a property of that layer, not of float32)."""
    import copy

    import torch

    from training import build_model
    from training.fam import FAM

    sizes = {"width": 0.125, "input_size": 128} if smoke else {}
    batch = 2
    clock.need(5 if smoke else 25, f"the {preset} model check")
    torch.manual_seed(0)
    model = build_model(preset, NUM_CLASSES, **sizes).eval()
    s = model.cfg.input_size
    x = torch.randn(batch, 3, s, s, generator=torch.Generator().manual_seed(4))
    offset_std = set_fam_offsets(model, x)
    names = ("apm_logits", "apm_deltas", "cls_logits", "det_deltas")
    stats = {"k_fwd": 0, "k_fanout": 0, "k_bhw": 0}

    def hook(mod: Any, inp: Any, out: Any) -> None:
        w = mod.weight
        stats["k_fwd"] = max(stats["k_fwd"], w[0].numel())
        stats["k_fanout"] = max(stats["k_fanout"], w.shape[0] * w[0, 0].numel())
        stats["k_bhw"] = max(stats["k_bhw"], out.shape[0] * out.shape[-1] * out.shape[-2])

    def fwd_bwd(m: Any, device: Any, dtype: Any, fmt: Any, with_stats: bool = False) -> dict[str, Any]:
        hooks = [mm.register_forward_hook(hook) for mm in m.modules()
                 if with_stats and isinstance(mm, (torch.nn.Conv2d, FAM))]  # fmt: skip
        m = m.to(device, dtype, memory_format=fmt)
        xi = x.to(device, dtype, copy=True).contiguous(memory_format=fmt).requires_grad_()
        out = m(xi)
        outs = {n: o for n, o in zip(names, out) if o is not None}
        gen = torch.Generator().manual_seed(5)
        proj = {n: torch.randn(o.shape, generator=gen) for n, o in outs.items()}
        loss = sum((o * proj[n].to(o)).sum() for n, o in outs.items())
        params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, [p for _, p in params] + [xi], allow_unused=True)
        res = {"out": {n: o.detach().double().cpu() for n, o in outs.items()},
               "grad": {n: g.double().cpu() for (n, _), g in zip(params, grads[:-1]) if g is not None},
               "grad_input": grads[-1].double().cpu()}  # fmt: skip
        if with_stats:
            res["depth"] = conv_depth([o.grad_fn for o in outs.values()])
            for h in hooks:
                h.remove()
        return res

    def compare(a: dict[str, Any], e: dict[str, Any]) -> dict[str, Any]:
        common = [n for n in e["grad"] if n in a["grad"]]
        per = {n: rel_l2(a["grad"][n], e["grad"][n]) for n in common if float(e["grad"][n].norm()) > 0}
        worst = sorted(per.items(), key=lambda kv: -kv[1])[:3]
        flat_a = torch.cat([a["grad"][n].flatten() for n in common])
        flat_e = torch.cat([e["grad"][n].flatten() for n in common])
        return {
            "forward_rel_l2": {n: rel_l2(a["out"][n], e["out"][n]) for n in e["out"]},
            "forward_max_abs": {n: max_abs(a["out"][n], e["out"][n]) for n in e["out"]},
            "grad_params_rel_l2": rel_l2(flat_a, flat_e),
            "grad_input_rel_l2": rel_l2(a["grad_input"], e["grad_input"]),
            "grad_worst_tensors": worst,
            "_per_tensor": per,
        }

    nchw, nhwc = torch.contiguous_format, torch.channels_last
    t = time.time()
    ref = fwd_bwd(copy.deepcopy(model), "cpu", torch.float32, nchw, with_stats=True)
    t_ref = time.time() - t
    tol = tolerances(ref.pop("depth"), stats["k_fwd"], max(stats["k_fwd"], stats["k_fanout"], stats["k_bhw"]))
    entry: dict[str, Any] = {"preset": preset, "sizes": sizes or "full", "batch": batch, "input": s,
                             "fam_offset_std_before_scaling": offset_std, "tolerance": tol}  # fmt: skip
    part.data.setdefault("models", {})[preset] = entry
    part.save()
    # the device under test: CUDA, or on a CPU the channels-last kernels
    dev_fmt = nhwc if dev.type == "cpu" else nchw
    entry["device_under_test"] = f"{dev.type}" + (" channels_last" if dev.type == "cpu" else "")
    clock.need(3 * t_ref + 5, f"{preset} on the device and in float64")
    got = fwd_bwd(copy.deepcopy(model), dev, torch.float32, dev_fmt)
    synchronize(dev)
    cmp = compare(got, ref)
    per = cmp.pop("_per_tensor")
    cmp["grad_tensors_over_tol"] = sum(v > tol["backward_rel_l2"] for v in per.values())
    cmp["grad_tensors"] = len(per)
    entry["device_vs_cpu"] = cmp
    part.save()
    ref64 = fwd_bwd(copy.deepcopy(model), "cpu", torch.float64, nchw)
    c64 = {k: v for k, v in compare(got, ref64).items() if k != "_per_tensor"}
    r64 = {k: v for k, v in compare(ref, ref64).items() if k != "_per_tensor"}
    entry["device_vs_cpu_float64"] = c64
    entry["cpu_float32_vs_cpu_float64"] = r64
    worst_fwd = max(cmp["forward_rel_l2"].values())
    part.check(f"{preset} forward {entry['device_under_test']} vs cpu", worst_fwd <= tol["forward_rel_l2"],
               worst_rel_l2=worst_fwd, tol=tol["forward_rel_l2"])  # fmt: skip
    worst_bwd = max(cmp["grad_params_rel_l2"], cmp["grad_input_rel_l2"])
    part.check(f"{preset} backward {entry['device_under_test']} vs cpu", worst_bwd <= tol["backward_rel_l2"],
               grad_params_rel_l2=cmp["grad_params_rel_l2"], grad_input_rel_l2=cmp["grad_input_rel_l2"],
               tol=tol["backward_rel_l2"])  # fmt: skip
    if dev.type == "cuda":  # what the tolerance is for: TF32 must show up as a failure
        allow_tf32(True)
        try:
            with torch.no_grad():
                m = copy.deepcopy(model).to(dev)
                out = m(x.to(dev))
            tf = {n: rel_l2(o, ref["out"][n]) for n, o in zip(names, out) if o is not None}
            entry["tf32_forward_rel_l2"] = tf
            entry["tf32_would_fail_forward_tolerance"] = max(tf.values()) > tol["forward_rel_l2"]
        finally:
            strict_fp32()
    if preset == "vgg16_384":
        keep.update(model=model, x=x, tol=tol)
    part.save()


def onnx_check(dev: Any, smoke: bool, part: Part, clock: Clock, keep: dict[str, Any], work: Path) -> None:
    """The exported ONNX (export_onnx + build_metadata, run by onnxruntime on the CPU) vs the model on
    the device, on the same weights and input."""
    import copy

    import numpy as np
    import torch

    for mod in ("onnx", "onnxruntime"):
        if not module_present(mod):
            raise Skip(f"{mod} is not installed")
    if "model" not in keep:
        raise Skip("needs the vgg16_384 model check, which did not run")
    import onnxruntime as ort

    from export.graph import InferenceGraph, build_metadata
    from export.onnx_export import export_onnx

    clock.need(15 if smoke else 40, "the ONNX export")
    model, x, tol = keep["model"], keep["x"], keep["tol"]
    meta = build_metadata(model, [f"class{i}" for i in range(model.cfg.num_classes)], trained=False)
    path = work / "vgg16_384.onnx"
    info: dict[str, Any] = {}
    t = time.time()
    # the smoke mode uses the legacy exporter: the dynamo exporter's tracing alone takes ~20 s on a CPU
    dynamo = not smoke
    try:
        export_onnx(copy.deepcopy(model), path, meta, dynamo=dynamo)
        info["exporter"] = "dynamo" if dynamo else "legacy (smoke mode)"
    except Exception as e:
        if not dynamo:
            raise
        info["dynamo_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        export_onnx(copy.deepcopy(model), path, meta, dynamo=False)
        info["exporter"] = "legacy (dynamo failed)"
    info["export_s"] = round(time.time() - t, 1)
    info["file_mib"] = round(path.stat().st_size / 2**20, 1)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x.numpy()}
    names = [o.name for o in sess.get_outputs()]
    ort_out = dict(zip(names, sess.run(None, feeds)))
    dev_fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    graph = InferenceGraph(copy.deepcopy(model).to(dev, memory_format=dev_fmt)).eval()
    with torch.no_grad():
        dev_out = dict(zip(graph.output_names, graph(x.to(dev).contiguous(memory_format=dev_fmt))))
    errs = {n: rel_l2(torch.from_numpy(np.asarray(ort_out[n])), dev_out[n]) for n in graph.output_names}
    absd = {n: max_abs(torch.from_numpy(np.asarray(ort_out[n])), dev_out[n]) for n in graph.output_names}
    info.update(rel_l2=errs, max_abs=absd, tol=tol["forward_rel_l2"],
                max_abs_within_1e4=max(absd.values()) <= 1e-4, batch=int(x.shape[0]))  # fmt: skip
    part.data["onnx"] = info
    part.check(f"ONNX (onnxruntime cpu) vs {dev.type} model", max(errs.values()) <= tol["forward_rel_l2"],
               worst_rel_l2=max(errs.values()), tol=tol["forward_rel_l2"])  # fmt: skip


def stage_correctness(args: argparse.Namespace, ctx: dict[str, Any], part: Part, clock: Clock) -> None:
    import torch

    dev = torch.device(ctx["device"])
    strict_fp32()
    torch.backends.cudnn.benchmark = False
    part.data["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
    part.data["device"] = str(dev)
    work = Path(ctx["work"])
    keep: dict[str, Any] = {}
    # most important first (the ONNX check needs the vgg16_384 model check)
    items: list[tuple[str, Callable[[], None]]] = [
        ("fam", lambda: fam_checks(dev, args.smoke, part, clock)),
        ("model vgg16_384", lambda: model_check("vgg16_384", dev, args.smoke, part, clock, keep)),
        ("onnx", lambda: onnx_check(dev, args.smoke, part, clock, keep, work)),
    ]
    if not args.smoke:
        items.append(("model resnet101_384", lambda: model_check("resnet101_384", dev, False, part, clock, keep)))
    skipped = part.data.setdefault("skipped", {})
    for name, fn in items:
        try:
            fn()
        except Skip as e:
            skipped[name] = str(e)
        except Exception as e:
            part.check(f"{name} ran", False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-1500:])
        part.save()


# ---------------------------------------------------------------------------------------------- stage: training

#: the full-size recipe: 1,024 rendered images (32 steps per epoch of 32)
TRAIN = {"images": 1024, "batch": 32, "steps_a": 150, "steps_b": 100, "steps_c": 100, "log_every": 5}
TRAIN_SMOKE = {"images": 8, "batch": 2, "steps_a": 2, "steps_b": 1, "steps_c": 2, "log_every": 1}


def torchrun_cmd(*args: str) -> list[str]:
    """``torchrun --standalone --nproc_per_node=1 SCRIPT ARGS`` (as a module: the torchrun script may
    not be on PATH)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", str(SCRIPT), *args]


#: process groups this stage process started (torchrun jobs): killed with it when its time box ends
CHILD_GROUPS: set[int] = set()


def kill_children_and_exit(signum: int, frame: Any) -> None:
    for pgid in list(CHILD_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(128 + signum)


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run ``cmd`` in its own process group (killed as a whole at ``timeout``, or when this stage is
    stopped); returns (rc, output, seconds); rc -999 for a timeout."""
    t = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        CHILD_GROUPS.add(proc.pid)
        try:
            rc = proc.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            Runner._kill(proc)
            rc = -999
        finally:
            CHILD_GROUPS.discard(proc.pid)
    text = log.read_text(errors="replace")
    sys.stdout.write(text[-4000:])
    sys.stdout.flush()
    return rc, text, time.time() - t


def train_child(mem_file: str, train_argv: list[str]) -> None:
    """Inside torchrun: ``python -m training.train ARGS`` exactly as the CLI runs it, then the peak
    memory of this process (CUDA allocator and RSS) into ``mem_file``."""
    import resource
    import runpy

    code: Any = 0
    t = time.time()
    try:
        sys.argv = ["training.train", *train_argv]
        runpy.run_module("training.train", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code
    finally:
        info: dict[str, Any] = {"rc": code if isinstance(code, int) else (0 if code is None else 1),
                                "wall_s": round(time.time() - t, 1),
                                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            info["cuda_max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            info["cuda_max_memory_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
        write_json(Path(mem_file), info)
    sys.exit(code)


def ddp_child(out_file: str, device: str) -> None:
    """Inside torchrun: a process group (nccl on CUDA, gloo on a CPU), DistributedDataParallel with
    SyncBatchNorm (CUDA), three SGD steps and an all_reduce. The trainer itself builds no process
    group with one process, so this is the only place a one-GPU run exercises them."""
    import torch
    import torch.distributed as dist
    from torch import nn

    res: dict[str, Any] = {}
    try:
        cuda = device == "cuda"
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend)
        res.update(backend=backend, world_size=dist.get_world_size())
        dv = torch.device("cuda", local) if cuda else torch.device("cpu")
        torch.manual_seed(0)
        model: nn.Module = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 4, 1))
        if cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        res["sync_batchnorm"] = any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
        model = model.to(dv)
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x = torch.randn(4, 3, 16, 16, device=dv)
        losses = []
        for _ in range(3):
            loss = ddp(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        t = torch.ones(1, device=dv) * (dist.get_rank() + 1)
        dist.all_reduce(t)
        w = dist.get_world_size()
        res.update(losses=losses, all_reduce=float(t), all_reduce_expected=w * (w + 1) / 2, ok=True)
        dist.destroy_process_group()
    except Exception as e:
        res.update(ok=False, error=f"{type(e).__name__}: {e}")
    write_json(Path(out_file), res)


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "steps.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_trend(rows: list[dict[str, Any]], min_rows: int = 6) -> dict[str, Any]:
    """Mean total loss of the first and the last quarter of the logged rows."""
    losses = [r["total"] for r in rows if "total" in r]
    res: dict[str, Any] = {"logged_rows": len(losses), "finite": all(math.isfinite(v) for v in losses) and bool(losses)}
    if losses:
        n = max(1, len(losses) // 4)
        res.update(first=losses[0], last=losses[-1], mean_first_n=sum(losses[:n]) / n,
                   mean_last_n=sum(losses[-n:]) / n, n=n)  # fmt: skip
        if len(losses) >= min_rows:
            res["decreased"] = res["mean_last_n"] < res["mean_first_n"]
        else:
            res["decreased"] = None
            res["why"] = f"not judged: {len(losses)} logged rows (< {min_rows})"
    return res


def throughput(rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Steady-state images/s of one run (without its first logged window: start-up, cuDNN autotuning)."""
    if len(rows) < 2:
        return {"images_per_s": rows[0].get("images_per_s") if rows else None, "why": "one logged row"}
    steady = rows[1:]
    a, b = rows[0], rows[-1]
    wall = (b["step"] - a["step"]) * batch / (b["elapsed_s"] - a["elapsed_s"]) if b["elapsed_s"] > a["elapsed_s"] else None
    per_row = sorted(r["images_per_s"] for r in steady if r.get("images_per_s"))
    return {"images_per_s_wall": wall, "images_per_s_median_row": per_row[len(per_row) // 2] if per_row else None,
            "from_step": a["step"], "to_step": b["step"]}  # fmt: skip


def stage_training(args: argparse.Namespace, ctx: dict[str, Any], part: Part, clock: Clock) -> None:
    import torch  # noqa: F401  (only to fail early, with the reason, where torch is broken)

    smoke = args.smoke
    rec = TRAIN_SMOKE if smoke else TRAIN
    device = ctx["device"]
    cuda = device == "cuda"
    work = Path(ctx["work"])
    d = part.data
    d["recipe"] = {**rec, "preset": "vgg16_384", "width": 0.125 if smoke else 1.0, "input": 128 if smoke else 384,
                   "optimizer": "sgd", "lr": 2e-3, "amp": cuda, "launcher": "torchrun --standalone --nproc_per_node=1",
                   "note": "from scratch (no ImageNet weights on the machine); --eval-every 0 (no evaluation)"}  # fmt: skip
    part.save()
    env = dict(os.environ)

    # 1. nccl / gloo + DDP + SyncBatchNorm in a one-process job
    ddp_out = work / "ddp.json"
    clock.need(15, "the DDP check")
    rc, text, secs = run_logged(torchrun_cmd("--_ddp-check", str(ddp_out), device), work / "ddp.log",
                                min(60, clock.left() - 5), env)  # fmt: skip
    ddp = read_json(ddp_out) or {"ok": False, "error": f"no result (exit {rc}): {text[-400:]}"}
    ddp["wall_s"] = round(secs, 1)
    d["ddp_check"] = ddp
    part.check(f"{ddp.get('backend', 'nccl' if cuda else 'gloo')} process group + DDP"
               + (" + SyncBatchNorm" if cuda else ""), bool(ddp.get("ok")) and ddp.get("all_reduce") == ddp.get("all_reduce_expected"),
               **{k: ddp.get(k) for k in ("backend", "world_size", "losses", "error") if k in ddp})  # fmt: skip

    # 2. the data (rendered by the parent in the background since the start of the run)
    done = Path(ctx["data_done"])
    while not done.exists():
        clock.need(20, "the training runs (still waiting for the rendered data)")
        time.sleep(0.5)
    synth = read_json(done) or {}
    d["data"] = {"images": rec["images"], "render_s": synth.get("elapsed_s"), "rc": synth.get("rc")}
    if synth.get("rc") != 0:
        raise RuntimeError(f"rendering the data failed: {synth.get('log')}")
    iters = rec["images"] // rec["batch"]
    total_steps = rec["steps_a"] + rec["steps_b"]
    warmup_epochs = max(total_steps / 5, 1) / iters  # warm-up over the first fifth of the steps
    workers = 1 if smoke else min(8, max(1, (os.cpu_count() or 2) // 2))
    base = ["--config", "vgg16_384", "--data", ctx["data"], "--batch-size", str(rec["batch"]), "--optimizer", "sgd",
            "--lr", "2e-3", "--warmup-epochs", f"{warmup_epochs:.4f}", "--eval-every", "0",
            "--log-every", str(rec["log_every"]), "--workers", str(workers), "--device", device, "--quiet", "--seed", "0"]  # fmt: skip
    if smoke:
        base += ["--width", "0.125", "--input-size", "128"]
    if cuda:
        base.append("--amp")
    d["train_args"] = base

    def train(name: str, out: Path, extra: list[str], share: float) -> dict[str, Any]:
        """One torchrun job of the trainer; ``share`` of the stage time left goes to it."""
        clock.need(20, f"training run {name}")
        budget = clock.left() * share
        minutes = max((budget - 25) / 60, 0.2)  # the trainer's own stop, with a checkpoint, before the kill
        mem = work / f"mem_{name}.json"
        cmd = torchrun_cmd("--_train-child", str(mem), "--", *base, "--out", str(out), *extra,
                           "--max-minutes", f"{minutes:.2f}")  # fmt: skip
        rc, text, secs = run_logged(cmd, work / f"train_{name}.log", budget, env)
        res: dict[str, Any] = {"rc": rc, "wall_s": round(secs, 1), "args": extra, "max_minutes": round(minutes, 2)}
        res.update(read_json(mem) or {})
        res["rc"] = rc
        for line in text.splitlines():
            if line.startswith("PADet ") or line.startswith("stopped:") or "error" in line.lower():
                res.setdefault("lines", []).append(line.strip()[:300])
        if rc != 0:
            res["output_tail"] = text[-1500:]
        stop = [ln for ln in text.splitlines() if ln.startswith("stopped:")]
        if stop and " at step " in stop[-1]:
            res["final_step"] = int(stop[-1].split(" at step ")[1].split()[0])
        return res

    run_ab = work / "run_ab"
    # 3. run A, then B resumes it
    a = train("a", run_ab, ["--max-steps", str(rec["steps_a"]), "--ckpt-every-steps", str(max(1, rec["steps_a"] // 3)),
                            "--channels-last", "no"], 0.45)  # fmt: skip
    rows_a = read_rows(run_ab)
    a["throughput"] = throughput(rows_a, rec["batch"])
    d["run_a"] = a
    part.check("run A (NCHW) finished", a["rc"] == 0 and "final_step" in a, rc=a["rc"], final_step=a.get("final_step"))
    if a["rc"] != 0 or "final_step" not in a:
        raise Skip("run A failed, so there is nothing to resume")
    k1 = a["final_step"]
    b = train("b", run_ab, ["--max-steps", str(k1 + rec["steps_b"]), "--resume", "--channels-last", "no",
                            "--ckpt-every-steps", str(max(1, rec["steps_b"] // 2))], 0.5)  # fmt: skip
    rows_ab = read_rows(run_ab)
    rows_b = [r for r in rows_ab if r["step"] > k1]
    b["throughput"] = throughput(rows_b, rec["batch"])
    d["run_b"] = b
    steps = [r["step"] for r in rows_ab]
    resumed = [ln for ln in b.get("lines", []) if "resumed at epoch" in ln]
    resume = {
        "step_before": k1,
        "resumed_line": resumed[0] if resumed else None,
        "resumed_at_step": int(resumed[0].rsplit("step ", 1)[1].split(";")[0]) if resumed else None,
        "final_step": b.get("final_step"),
        "log_steps_increasing": all(s2 > s1 for s1, s2 in zip(steps, steps[1:])),
        "log_rows_after_resume": len(rows_b),
        "first_logged_step_after_resume": rows_b[0]["step"] if rows_b else None,
        "lr_before_after": [rows_ab[len(rows_ab) - len(rows_b) - 1]["lr"] if len(rows_ab) > len(rows_b) else None,
                            rows_b[0]["lr"] if rows_b else None],
    }  # fmt: skip
    le = rec["log_every"]
    resume["first_logged_step_expected"] = (k1 // le + 1) * le
    ok = (b["rc"] == 0 and resume["resumed_at_step"] == k1 and resume["final_step"] == k1 + rec["steps_b"]
          and resume["log_steps_increasing"] and bool(rows_b) and rows_b[0]["step"] == (k1 // le + 1) * le)  # fmt: skip
    if b["rc"] == 0 and b.get("final_step") is not None and b["final_step"] < k1 + rec["steps_b"]:
        resume["why"] = "run B stopped early (its --max-minutes share of the budget), so the final step is lower"
        ok = ok or (resume["resumed_at_step"] == k1 and resume["log_steps_increasing"] and bool(rows_b)
                    and rows_b[0]["step"] == resume["first_logged_step_expected"])
    d["resume"] = resume
    part.check("resume continues the step counter and the log", ok, **resume)
    trend = loss_trend(rows_ab)
    d["loss_ab"] = trend
    part.check("loss finite (runs A+B)", trend["finite"], first=trend.get("first"), last=trend.get("last"))
    part.check("loss decreases (runs A+B)", trend.get("decreased"),
               **{k: trend.get(k) for k in ("mean_first_n", "mean_last_n", "n", "logged_rows", "why") if k in trend})  # fmt: skip

    # 4. channels-last
    c_dir = work / "run_c"
    c = train("c", c_dir, ["--max-steps", str(rec["steps_c"]), "--channels-last", "yes"], 0.9)
    rows_c = read_rows(c_dir)
    c["throughput"] = throughput(rows_c, rec["batch"])
    c["loss"] = loss_trend(rows_c)
    d["run_c_channels_last"] = c
    part.check("run C (--channels-last yes) finished", c["rc"] == 0 and "final_step" in c, rc=c["rc"])
    part.check("loss finite (run C)", c["loss"]["finite"])
    part.check("loss decreases (run C)", c["loss"].get("decreased"),
               **{k: c["loss"].get(k) for k in ("mean_first_n", "mean_last_n", "why") if k in c["loss"]})  # fmt: skip
    ta, tc = a["throughput"].get("images_per_s_wall"), c["throughput"].get("images_per_s_wall")
    d["channels_last_speedup"] = tc / ta if ta and tc else None


# ---------------------------------------------------------------------------------------------- stages: inference, compile

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


def precision_ctx(precision: str, device: Any) -> Any:
    import contextlib

    import torch

    allow_tf32(precision == "tf32")
    if precision in ("fp16", "bf16"):
        return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)
    return contextlib.nullcontext()


def time_calls(fn: Callable[[], Any], device: Any, *, warmup: int, min_iters: int, max_iters: int, max_s: float) -> dict[str, Any]:
    """Median and p90 seconds per call: CUDA events around each call (synchronised), after ``warmup``
    untimed calls; stops after ``max_s`` once ``min_iters`` are in."""
    import torch

    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    stop = time.perf_counter() + max_s
    cuda = device.type == "cuda"
    while len(times) < max_iters:
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e) / 1000)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        if len(times) >= min_iters and time.perf_counter() > stop:
            break
    times.sort()
    return {"median_s": times[len(times) // 2], "p90_s": times[min(len(times) - 1, int(0.9 * len(times)))],
            "iters": len(times)}  # fmt: skip


def timing_opts(smoke: bool) -> dict[str, Any]:
    if smoke:
        return dict(warmup=1, min_iters=2, max_iters=3, max_s=0.0)
    return dict(warmup=3, min_iters=10, max_iters=60, max_s=0.5)


def bench_padet(model: Any, fwd: Any, preset: str, batch: int, precision: str, mode: str, device: Any,
                smoke: bool, pp: bool) -> dict[str, Any]:  # fmt: skip
    import torch

    s = model.cfg.input_size
    x = torch.randn(batch, 3, s, s, device=device)
    sizes = [(s, s)] * batch

    def call() -> Any:
        with precision_ctx(precision, device):
            out = fwd(x)
        if pp:
            return model.postprocess(out, image_sizes=sizes)
        return out

    with torch.inference_mode():
        t = time_calls(call, device, **timing_opts(smoke))
        row = {"preset": preset, "batch": batch, "precision": precision, "mode": mode, "postprocess": pp,
               "ms_per_batch": round(t["median_s"] * 1000, 3), "p90_ms": round(t["p90_s"] * 1000, 3),
               "fps": round(batch / t["median_s"], 2), "iters": t["iters"]}  # fmt: skip
        if pp:
            res = call()
            row["detections_per_image"] = round(sum(len(r["scores"]) for r in res) / batch, 1)
    allow_tf32(False)
    return row


def bench_ssd(device: Any, batch: int, precision: str, smoke: bool, full: bool) -> dict[str, Any]:
    import torch
    from torchvision.models.detection import ssd300_vgg16

    key = "ssd300"
    if key not in _SSD:
        _SSD[key] = ssd300_vgg16(weights=None, weights_backbone=None).eval().to(device)
    m = _SSD[key]
    x = torch.rand(batch, 3, 300, 300, device=device)
    imgs = list(x)

    def call() -> Any:
        with precision_ctx(precision, device):
            if full:
                return m(imgs)
            feats = m.backbone(x)
            return m.head(list(feats.values()))

    with torch.inference_mode():
        t = time_calls(call, device, **timing_opts(smoke))
    allow_tf32(False)
    return {"model": "torchvision ssd300_vgg16 (weights=None)", "batch": batch, "precision": precision,
            "pipeline": "transform + network + postprocess (NMS)" if full else "network (backbone + head)",
            "postprocess": full, "ms_per_batch": round(t["median_s"] * 1000, 3), "fps": round(batch / t["median_s"], 2),
            "iters": t["iters"]}  # fmt: skip


_SSD: dict[str, Any] = {}


def inference_setup(args: argparse.Namespace, ctx: dict[str, Any]) -> tuple[Any, list[str], list[int], list[str]]:
    import torch

    dev = torch.device(ctx["device"])
    strict_fp32()
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    presets = [p for p in (args.presets or (PRESETS[0] if args.smoke else ",".join(PRESETS))).split(",") if p]
    batches = [1] if args.smoke else [1, 8]
    if dev.type == "cuda":
        precisions = list(PRECISIONS) if torch.cuda.is_bf16_supported() else ["fp32", "tf32", "fp16"]
    else:
        precisions = ["fp32", "bf16"]  # autocast on a CPU is bf16; TF32 does not exist there
    return dev, presets, batches, precisions


def pp_precisions(dev: Any) -> tuple[str, ...]:
    """Precisions measured with post-processing too (it runs in float32 on the CPU whatever the network's)."""
    return ("fp32", "fp16") if dev.type == "cuda" else ("fp32",)


def build_bench_model(preset: str, smoke: bool, dev: Any) -> Any:
    import torch

    from training import build_model

    torch.manual_seed(0)
    sizes = {"width": 0.125, "input_size": 128} if smoke else {}
    return build_model(preset, NUM_CLASSES, **sizes).eval().to(dev)


def add_row(part: Part, key: str, row: dict[str, Any]) -> None:
    part.data.setdefault(key, []).append(row)
    part.save()


def stage_inference(args: argparse.Namespace, ctx: dict[str, Any], part: Part, clock: Clock) -> None:
    import torch

    dev, presets, batches, precisions = inference_setup(args, ctx)
    d = part.data
    d.update(device=str(dev), presets=presets, batches=batches, precisions=precisions,
             paper_fps_1080ti=PAPER_FPS, timing="CUDA events around each synchronised call, after warm-up calls; "
             "median; random weights (post-processing then sees few candidates: its cost is a lower bound)",
             precision_note="fp32 = TF32 off; tf32 = cuDNN/matmul TF32 on (PyTorch's default for cuDNN convs); "
             "fp16/bf16 = torch.autocast")  # fmt: skip
    if args.smoke:
        d["smoke_note"] = "width 0.125 at input 128: the FPS figures mean nothing"
    part.save()
    # the reference first: the ratio needs it for every row
    ssd: dict[tuple[int, str, bool], dict[str, Any]] = {}
    for batch in batches:
        for prec in precisions:
            for full in (False, True):
                if full and prec not in pp_precisions(dev):
                    continue
                try:
                    clock.need(3, "ssd300")
                    row = bench_ssd(dev, batch, prec, args.smoke, full)
                    ssd[(batch, prec, full)] = row
                    add_row(part, "ssd300", row)
                except Skip as e:
                    add_row(part, "skipped", {"what": f"ssd300 b{batch} {prec}", "reason": str(e)})
                except Exception as e:
                    add_row(part, "skipped", {"what": f"ssd300 b{batch} {prec}", "reason": short_error(e)})
    _SSD.clear()
    for preset in presets:
        try:
            clock.need(5, preset)
            model = build_bench_model(preset, args.smoke, dev)
        except Exception as e:
            add_row(part, "skipped", {"what": preset, "reason": short_error(e)})
            continue
        for batch in batches:
            for prec in precisions:
                for pp in (False, True):
                    if pp and prec not in pp_precisions(dev):
                        continue
                    what = f"{preset} b{batch} {prec} eager{' +postprocess' if pp else ''}"
                    try:
                        clock.need(2, what)
                        row = bench_padet(model, model, preset, batch, prec, "eager", dev, args.smoke, pp)
                    except Skip as e:
                        add_row(part, "skipped", {"what": what, "reason": str(e)})
                        continue
                    except Exception as e:
                        add_row(part, "skipped", {"what": what, "reason": short_error(e)})
                        continue
                    ref = ssd.get((batch, prec, pp))
                    if ref:
                        row["ssd300_fps"] = ref["fps"]
                        row["ratio_to_ssd300"] = round(row["fps"] / ref["fps"], 3)
                    if batch == 1:
                        row["paper_fps_1080ti"] = PAPER_FPS.get(preset)
                    add_row(part, "rows", row)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def stage_compile(args: argparse.Namespace, ctx: dict[str, Any], part: Part, clock: Clock) -> None:
    import torch

    dev, presets, batches, precisions = inference_setup(args, ctx)
    backend = args.compile_backend or ("eager" if args.smoke else "inductor")
    d = part.data
    d.update(device=str(dev), backend=backend, mode=f"{args.compile_mode}, dynamic=False (one graph per batch size)")
    if args.smoke:
        d["smoke_note"] = "backend 'eager' (dynamo tracing only, no code generation): checks that the model compiles"
    if backend == "inductor" and dev.type == "cuda":
        try:
            from torch.utils._triton import has_triton

            if not has_triton():
                raise Skip("inductor on CUDA needs triton, which is not installed")
        except ImportError:
            pass
    part.save()
    # most important first: the budget decides how far down the list this gets
    order = []
    for preset in presets:
        for prec in ("fp16", "fp32") if dev.type == "cuda" else ("fp32",):
            for batch in batches:
                order.append((preset, prec, batch))
    order.sort(key=lambda t: (t[1] != "fp16", presets.index(t[0]), t[2]) if dev.type == "cuda" else 0)
    eager_rows = {}
    compile_s: list[float] = []
    models: dict[str, Any] = {}
    for preset, prec, batch in order:
        what = f"{preset} b{batch} {prec} compile"
        try:
            est = 1.3 * max(compile_s) if compile_s else (10 if args.smoke else 45)
            clock.need(est + 5, what)
            if preset not in models:
                models.clear()
                torch._dynamo.reset()
                m = build_bench_model(preset, args.smoke, dev)
                kw = {} if args.compile_mode == "default" else {"mode": args.compile_mode}
                models[preset] = (m, torch.compile(m, backend=backend, dynamic=False, **kw))
            m, cm = models[preset]
            s = m.cfg.input_size
            x = torch.randn(batch, 3, s, s, device=dev)
            t = time.time()
            with torch.inference_mode(), precision_ctx(prec, dev):
                cm(x)
            synchronize(dev)
            allow_tf32(False)
            compile_s.append(time.time() - t)
            rows = []
            for pp in (False, True):
                row = bench_padet(m, cm, preset, batch, prec, f"compile ({backend})", dev, args.smoke, pp)
                row["compile_s"] = round(compile_s[-1], 1)
                key = (preset, batch, prec, pp)
                if key not in eager_rows:
                    eager_rows[key] = bench_padet(m, m, preset, batch, prec, "eager", dev, args.smoke, pp)
                row["eager_fps"] = eager_rows[key]["fps"]
                row["speedup_vs_eager"] = round(row["fps"] / eager_rows[key]["fps"], 3)
                if batch == 1:
                    row["paper_fps_1080ti"] = PAPER_FPS.get(preset)
                rows.append(row)
            for row in rows:
                add_row(part, "rows", row)
        except Skip as e:
            add_row(part, "skipped", {"what": what, "reason": str(e)})
        except Exception as e:
            add_row(part, "skipped", {"what": what, "reason": "compile failed: " + short_error(e, 400)})
            models.clear()
    if not part.data.get("rows"):
        reasons = {r["reason"] for r in part.data.get("skipped", [])}
        raise Skip("no configuration compiled: " + "; ".join(sorted(reasons))[:600])


# ---------------------------------------------------------------------------------------------- summary


def fmt(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def short_error(e: BaseException, limit: int = 300) -> str:
    """``Type: message`` with C++ source locations cut (torchvision's errors start with one)."""
    msg = str(e).strip()
    if ".cpp:" in msg and '"' in msg:
        msg = msg[msg.index('"'):]
    return f"{type(e).__name__}: {msg[:limit]}"


def summary_text(rep: dict[str, Any]) -> str:
    st = rep.get("stages", {})
    lines = [f"PADet GPU check ({rep.get('mode')}), started {rep.get('started')}, {fmt(rep.get('elapsed_s'), '.0f')} s",
             f"command: {rep.get('command')}"]  # fmt: skip
    env = st.get("environment", {})
    if env.get("torch"):
        gpu = env.get("gpu") or {}
        lines.append(f"torch {env.get('torch')} (cuda {env.get('torch_cuda')}), device {env.get('device_used')}"
                     + (f": {gpu.get('name')} {gpu.get('memory_gib')} GiB, cuDNN {gpu.get('cudnn')}, nccl {gpu.get('nccl')}" if gpu else "")
                     + f"; missing: {', '.join(env.get('missing') or []) or 'none'}; pycocotools: {env.get('pycocotools')}")  # fmt: skip
    for name in STAGES:
        if name not in st:
            continue
        s = st[name]
        lines.append("")
        lines.append(f"[{name}] {s.get('status')}" + (f" - {s['reason']}" if s.get("reason") else "")
                     + (f" ({fmt(s.get('elapsed_s'), '.0f')} s)" if s.get("elapsed_s") is not None else ""))  # fmt: skip
        for cname, c in (s.get("checks") or {}).items():
            mark = {True: "PASS", False: "FAIL", None: "info"}[c.get("pass")]
            nums = ", ".join(f"{k}={fmt(v)}" for k, v in c.items()
                             if k not in ("pass",) and isinstance(v, (int, float)) and not isinstance(v, bool))  # fmt: skip
            lines.append(f"  {mark} {cname}" + (f": {nums}" if nums else "") + (f" ({c['why']})" if c.get("why") else ""))
        if name == "correctness":
            for what, why in (s.get("skipped") or {}).items():
                lines.append(f"  skipped {what}: {why}")
            for preset, m in (s.get("models") or {}).items():
                if "tf32_forward_rel_l2" in m:
                    lines.append(f"  info {preset} with TF32 on: forward rel_l2 {fmt(max(m['tf32_forward_rel_l2'].values()))}"
                                 f" (fails the float32 tolerance: {m.get('tf32_would_fail_forward_tolerance')})")  # fmt: skip
            if s.get("onnx"):
                o = s["onnx"]
                lines.append(f"  info ONNX: {o.get('exporter')} exporter, {o.get('file_mib')} MiB, export {o.get('export_s')} s, "
                             f"max abs {fmt(max((o.get('max_abs') or {0: None}).values()))}")  # fmt: skip
        if name == "training":
            for key in ("run_a", "run_b", "run_c_channels_last"):
                r = s.get(key)
                if r:
                    t = r.get("throughput", {})
                    lines.append(f"  {key}: final step {r.get('final_step')}, {fmt(t.get('images_per_s_wall'))} img/s, "
                                 f"peak CUDA {fmt(r.get('cuda_max_memory_allocated_mib'), '.0f')} MiB, "
                                 f"RSS {fmt(r.get('peak_rss_mib'), '.0f')} MiB")  # fmt: skip
        if name in ("inference", "compile"):
            if s.get("smoke_note"):
                lines.append(f"  ({s['smoke_note']})")
            rows = s.get("rows") or []
            if rows:
                lines.append("  preset         batch precision mode               pp       FPS  (paper 1080 Ti; ratio to ssd300 / to eager)")
            for r in rows:
                extra = [f"paper {r['paper_fps_1080ti']}" if r.get("paper_fps_1080ti") else "",
                         f"x{r['ratio_to_ssd300']} ssd300" if r.get("ratio_to_ssd300") else "",
                         f"x{r['speedup_vs_eager']} eager" if r.get("speedup_vs_eager") else ""]  # fmt: skip
                lines.append(f"  {r['preset']:14s} b{r['batch']:<4d} {r['precision']:9s} {r['mode'][:18]:18s} "
                             f"{'pp' if r['postprocess'] else '--'} {r['fps']:9.1f}  " + " ".join(e for e in extra if e))  # fmt: skip
            for r in s.get("ssd300") or []:
                lines.append(f"  ssd300_vgg16   b{r['batch']:<4d} {r['precision']:9s} {'full pipeline' if r['postprocess'] else 'network':18s} "
                             f"{'pp' if r['postprocess'] else '--'} {r['fps']:9.1f}")  # fmt: skip
            for x in s.get("skipped") or []:
                lines.append(f"  skipped {x['what']}: {x['reason'][:160]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- entry points

STAGE_FUNCS: dict[str, Callable[[argparse.Namespace, dict[str, Any], Part, Clock], None]] = {
    "environment": stage_environment, "correctness": stage_correctness, "training": stage_training,
    "inference": stage_inference, "compile": stage_compile,
}  # fmt: skip


def stage_main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, kill_children_and_exit)
    part = Part(args._part)
    part.save()
    ctx = read_json(args._context) or {}
    t = time.time()
    try:
        STAGE_FUNCS[args._stage](args, ctx, part, Clock(args._deadline))
        part.finish()
    except Skip as e:
        part.data.update(status="skipped", reason=str(e))
    except Exception as e:
        part.data.update(status="error", reason=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
        traceback.print_exc()
    part.data["elapsed_s"] = round(time.time() - t, 1)
    part.save()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_train-child"]:  # inside torchrun: gpu_check.py --_train-child MEMFILE -- TRAIN ARGS
        train_child(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    if argv[:1] == ["--_ddp-check"]:
        ddp_child(argv[1], argv[2])
        return 0
    args = build_parser().parse_args(argv)
    if args._stage:
        return stage_main(args)
    return Runner(args, argv).run()


if __name__ == "__main__":
    raise SystemExit(main())
