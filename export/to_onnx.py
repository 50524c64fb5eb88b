"""Export a PADet checkpoint (or an untrained preset) to one self-contained ONNX file.

Examples (from the repository root):
  python export/to_onnx.py --checkpoint runs/voc/best.pth --output padet_voc.onnx
  python export/to_onnx.py --preset vgg16_384 --random-init            # writes padet_vgg384.onnx
  python -m export.to_onnx --checkpoint best.pth --no-dynamo           # legacy TorchScript exporter

The graph ends at per-anchor probabilities and deltas (see padet_sdk/metadata.py); the
deformable convs are the standard DeformConv op (opset >= 19); the metadata (classes, input
size, normalisation, anchors, post-processing parameters) is in metadata_props["padet"].
After writing, the file is checked against torch with onnxruntime on a random batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `training`, `export`, `padet_sdk` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from export import cli_common as cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="to_onnx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_model_args(p)
    cli.add_export_args(p, ".onnx")
    return p


def _export(model, meta, out: Path, args: argparse.Namespace) -> None:
    from export.onnx_export import export_onnx

    export_onnx(model, out, meta, opset=args.opset, dynamic_batch=not args.static_batch, dynamo=not args.no_dynamo)


def _run(path: Path, x, names: list[str]) -> list:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(names, {sess.get_inputs()[0].name: x})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exporter = "legacy TorchScript" if args.no_dynamo else "torch.export (dynamo)"
    return cli.run_export_cli(args, suffix=".onnx", what=f"exporting ONNX opset {args.opset} with the {exporter} exporter",
                              export=_export, runtime="onnxruntime", run=_run)


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    sys.exit(run_entry_point(main, extras="train,export"))
