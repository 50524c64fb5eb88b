"""What the export CLIs (to_onnx, to_openvino, quantize) share: the model-source options, the
untrained-model banner, progress lines, output checks and error reporting."""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from padet_sdk.metadata import MetadataError, ModelMetadata

EXIT_USAGE = 2  # bad arguments or unusable input files
EXIT_VERIFY = 3  # the exported model does not reproduce torch


class CliError(Exception):
    """A user-facing error: printed as ``error: ...`` without a traceback."""


def log(msg: str) -> None:
    print(f"[padet] {msg}", file=sys.stderr, flush=True)


@contextmanager
def step(msg: str) -> Iterator[None]:
    """Print ``msg ...`` then ``done (Xs)``, so long steps show they are alive and how long they took."""
    log(f"{msg} ...")
    t0 = time.perf_counter()
    yield
    log(f"  done ({time.perf_counter() - t0:.1f}s)")


def add_model_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--checkpoint, or --preset with --random-init and its overrides."""
    from training.config import PRESETS

    g = parser.add_argument_group(
        "model source", "a training checkpoint, or an UNTRAINED model from a preset (--preset NAME --random-init)"
    )
    g.add_argument("--checkpoint", metavar="CKPT", help="training checkpoint (.pt): a dict with config, model, class_names")
    g.add_argument("--preset", choices=sorted(PRESETS), help="architecture preset for --random-init")
    g.add_argument("--random-init", action="store_true",
                   help="export randomly initialised weights (for benchmarks and pipeline tests; detects nothing)")
    g.add_argument("--num-classes", type=int, default=80, metavar="N", help="with --random-init (default 80)")
    g.add_argument("--width", type=float, metavar="W", help="with --random-init: channel multiplier (default: the preset's, 1.0 for most)")
    g.add_argument("--input-size", type=int, metavar="S", help="with --random-init: input size S (multiple of 8)")
    g.add_argument("--model-version", metavar="V", help="version string written into the metadata "
                   "(default: epoch<N> from the checkpoint, else 0)")
    parser.set_defaults(_model_source_required=required)


def add_export_args(parser: argparse.ArgumentParser, suffix: str) -> None:
    """The options to_onnx and to_openvino share (after their own)."""
    parser.add_argument("--output", "-o", metavar="PATH", help=f"output {suffix} (default: padet_<backbone><size>{suffix})")
    parser.add_argument("--opset", type=int, default=19, help="ONNX opset, >= 19 (default 19)")
    parser.add_argument("--no-dynamo", action="store_true",
                        help="use the legacy TorchScript ONNX exporter (with a DeformConv symbolic) instead of torch.export")
    parser.add_argument("--static-batch", action="store_true", help="fix the batch size to 1 (default: dynamic batch)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the check that the exported model reproduces the torch outputs on a random batch")


def has_model_source(args: argparse.Namespace) -> bool:
    return bool(args.checkpoint or args.preset or args.random_init)


UNTRAINED_BANNER = """
################################################################################
#  WARNING: exporting an UNTRAINED, randomly initialised PADet ({preset}).
#  Its outputs are noise: use it for latency benchmarks and pipeline tests only.
#  The metadata says trained=false.
################################################################################
"""


def load_model_from_args(args: argparse.Namespace) -> tuple[Any, ModelMetadata]:
    """(model in eval mode, metadata) from the model-source options; CliError when they are wrong."""
    import torch

    from export.checkpoint import CheckpointError, load_checkpoint
    from export.graph import build_metadata
    from training.model import build_model

    if args.checkpoint and (args.random_init or args.preset):
        raise CliError("give either --checkpoint or --preset NAME --random-init, not both")
    if args.checkpoint:
        for opt in ("width", "input_size"):
            if getattr(args, opt) is not None:
                raise CliError(f"--{opt.replace('_', '-')} only applies to --random-init (a checkpoint has its own config)")
        with step(f"loading checkpoint {args.checkpoint}"):
            try:
                model, class_names, info = load_checkpoint(args.checkpoint)
            except (FileNotFoundError, CheckpointError) as e:
                raise CliError(str(e)) from e
        version = args.model_version or (f"epoch{info['epoch']}" if "epoch" in info else "0")
        log(f"  {model.cfg.name}, {model.cfg.num_classes} classes, input {model.cfg.input_size}, version {version}")
        return model, build_metadata(model, class_names, model_version=version, trained=True)
    if not args.random_init:
        if args.preset:
            raise CliError(f"--preset {args.preset} has no weights: add --random-init to export an untrained model, "
                           "or give --checkpoint")
        raise CliError("no model given: use --checkpoint CKPT, or --preset NAME --random-init")
    if not args.preset:
        raise CliError("--random-init needs --preset NAME")
    overrides = {k: v for k, v in (("width", args.width), ("input_size", args.input_size)) if v is not None}
    torch.manual_seed(0)
    with step(f"building an untrained {args.preset} ({args.num_classes} classes{''.join(f', {k}={v}' for k, v in overrides.items())})"):
        try:
            model = build_model(args.preset, args.num_classes, **overrides).eval()
        except ValueError as e:
            raise CliError(f"invalid model options: {e}") from e
    print(UNTRAINED_BANNER.format(preset=args.preset), file=sys.stderr, flush=True)
    names = [f"class_{i}" for i in range(args.num_classes)]
    return model, build_metadata(model, names, model_version=args.model_version or "0", trained=False)


def default_stem(cfg: Any) -> str:
    """``padet_vgg384`` for vgg16_384: what --output defaults to (plus the file suffix); the
    backbone part is its encoder's ``short_name``."""
    from training.backbones import backbone_class

    encoder = backbone_class(cfg.backbone)
    return f"padet_{encoder.short_name or encoder.name}{cfg.input_size}"


def check_opset(opset: int) -> None:
    import onnx

    from export.onnx_export import MIN_OPSET

    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise CliError(f"unsupported opset {opset}: DeformConv needs opset >= {MIN_OPSET}")
    if opset > newest:
        raise CliError(f"unsupported opset {opset}: the installed onnx {onnx.__version__} knows opsets up to {newest}")


def compare_outputs(
    names: list[str], ref: list[np.ndarray], got: list[np.ndarray], *, rel_tol: float | None
) -> bool:
    """Log max abs differences per output; True when all are within rel_tol·max(1, |ref|) (or no tol)."""
    ok = True
    for n, r, g in zip(names, ref, got):
        err = float(np.max(np.abs(r - g))) if r.size else 0.0
        scale = max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)
        bad = rel_tol is not None and err > rel_tol * scale
        ok &= not bad
        log(f"  {n:<11} max |torch - exported| = {err:.2e}{'  <-- too large' if bad else ''}")
    return ok


def torch_reference(model: Any, batch: int = 2, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random input and the torch inference-graph outputs on it (for --verify)."""
    import torch

    from export.graph import InferenceGraph

    s = model.cfg.input_size
    x = np.random.default_rng(seed).standard_normal((batch, 3, s, s)).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in InferenceGraph(model.eval())(torch.from_numpy(x))]
    return x, ref


#: (model, meta, output path, args) -> None: writes the file
ExportFn = Callable[[Any, ModelMetadata, Path, argparse.Namespace], None]
#: (output path, input batch, output names) -> outputs in that order
RunFn = Callable[[Path, np.ndarray, list[str]], list[np.ndarray]]


def run_export_cli(
    args: argparse.Namespace, *, suffix: str, what: str, export: ExportFn, runtime: str, run: RunFn,
    rel_tol: float | None = 1e-3, files: Callable[[Path], list[Path]] = lambda p: [p],
) -> int:
    """The body of to_onnx / to_openvino: model from the options, export, verify, report."""

    def body() -> int:
        check_opset(args.opset)
        model, meta = load_model_from_args(args)
        out = output_path(args.output, default_stem(model.cfg), suffix)
        with step(f"{what} -> {out}"):
            export(model, meta, out, args)
        if not args.no_verify:
            with step(f"verifying with {runtime}"):
                x, ref = torch_reference(model, batch=1 if args.static_batch else 2)
                names = list(meta.outputs)
                if not compare_outputs(names, ref, run(out, x, names), rel_tol=rel_tol):
                    log(f"{runtime} does not reproduce the torch outputs")
                    return EXIT_VERIFY
        written = files(out)
        size = sum(f.stat().st_size for f in written) / 2**20
        log(f"wrote {' + '.join(str(f) for f in written)} ({size:.1f} MiB){'  [UNTRAINED]' if not meta.trained else ''}")
        return 0

    return run_main(body)


def run_main(fn: Callable[[], int]) -> int:
    """Run a CLI body; CliError / metadata / file errors become one ``error:`` line and exit 2."""
    try:
        return fn()
    except (CliError, MetadataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def output_path(arg: str | None, default_stem_: str, suffix: str) -> Path:
    """--output or ``<default stem><suffix>``; the suffix must match the format."""
    path = Path(arg) if arg else Path(default_stem_ + suffix)
    if path.suffix.lower() != suffix:
        raise CliError(f"--output {path} must end in {suffix}")
    return path
