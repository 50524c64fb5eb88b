"""Export a PADet checkpoint (or an untrained preset) to an OpenVINO IR (.xml + .bin).

Examples (from the repository root):
  python export/to_openvino.py --checkpoint runs/voc/best.pth --output padet_voc.xml
  python export/to_openvino.py --preset vgg16_384 --random-init --output /tmp/padet_vgg384.xml
  python export/to_openvino.py --checkpoint best.pth --precision fp16 --via torch

By default the model goes through ONNX (standard DeformConv, mapped to OpenVINO's
DeformableConvolution by padet_sdk.ov_extensions); --via torch uses openvino.convert_model on
the PyTorch module instead. The batch axis is dynamic. fp32 keeps FP32 weights; fp16 stores
FP16 weights (half the file). The metadata is in the IR's rt_info["padet"]. After writing, the
IR is checked against torch with OpenVINO (INFERENCE_PRECISION_HINT=f32) on a random batch.
For INT8 run export/quantize.py on the result.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `training`, `export`, `padet_sdk` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from export import cli_common as cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="to_openvino", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_model_args(p)
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="weight precision (default fp32)")
    p.add_argument("--via", choices=("onnx", "torch"), default="onnx",
                   help="conversion route: through ONNX (default) or openvino.convert_model on the torch module")
    cli.add_export_args(p, ".xml")
    return p


def _export(model, meta, out: Path, args: argparse.Namespace) -> None:
    from export.openvino_export import export_openvino

    export_openvino(model, out, meta, precision=args.precision, via=args.via, opset=args.opset,
                    dynamo=not args.no_dynamo, dynamic_batch=not args.static_batch)


def _run(path: Path, x, names: list[str]) -> list:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res = compiled(x)
    # by name: compiling may give an output extra names (e.g. a fused Squeeze's), so the
    # order or get_any_name() of compiled.outputs is not reliable
    return [res[compiled.output(n)] for n in names]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run_export_cli(
        args, suffix=".xml", what=f"converting to OpenVINO via {args.via} ({args.precision} weights)",
        export=_export, runtime="OpenVINO (CPU, f32 hint)", run=_run,
        rel_tol=1e-3 if args.precision == "fp32" else None,  # FP16 weights legitimately differ: report only
        files=lambda p: [p, p.with_suffix(".bin")],
    )


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    sys.exit(run_entry_point(main, extras="train,export"))
