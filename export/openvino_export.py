"""PADet → OpenVINO IR (``.xml`` + ``.bin``) with the metadata in rt_info.

Two routes, same result within float precision:

- ``via="onnx"`` (default): the ONNX export (real ``DeformConv``) read by OpenVINO with the
  conversion rule of :mod:`padet_sdk.ov_extensions`. The shipped ``.onnx`` and ``.xml`` then
  come from one graph.
- ``via="torch"``: ``openvino.convert_model`` on the torch module (OpenVINO's PyTorch front end
  has its own deform_conv2d rule) — a cross-check, and a fallback if the ONNX route breaks.

Reading the metadata back (SDK side, torch-free): :func:`padet_sdk.model_file.read_metadata`
on the file, or :func:`padet_sdk.model_file.metadata_from_ov_model` on a loaded model, i.e.
``ModelMetadata.from_json(model.get_rt_info("padet").astype(str))``.
"""
from __future__ import annotations

import dataclasses
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

from padet_sdk.metadata import INPUT_NAME, ModelMetadata
from padet_sdk.model_file import read_metadata, set_ov_metadata
from padet_sdk.ov_extensions import read_onnx_with_extensions
from training.model import PADet

from .graph import InferenceGraph
from .onnx_export import MIN_OPSET, export_onnx

__all__ = ["export_openvino", "onnx_to_openvino", "to_ov_model", "save_ov_model", "read_metadata", "PRECISIONS"]

PRECISIONS = ("fp32", "fp16")


def _convert_from_torch(model: PADet) -> Any:
    import openvino as ov

    graph = InferenceGraph(model.eval().cpu()).eval()
    s = model.cfg.input_size
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(graph, example_input=torch.zeros(1, 3, s, s))
    ov_model.inputs[0].get_tensor().set_names({INPUT_NAME})
    for out, name in zip(ov_model.outputs, graph.output_names):
        out.get_tensor().set_names({name})
    return ov_model


def to_ov_model(
    model: PADet, *, via: Literal["onnx", "torch"] = "onnx", opset: int = MIN_OPSET, dynamo: bool = True,
    dynamic_batch: bool = True,
) -> Any:
    """An in-memory ``openvino.Model`` of ``model``'s inference graph (no metadata yet)."""
    import openvino as ov

    if via == "onnx":
        with tempfile.TemporaryDirectory(prefix="padet_ov_") as tmp:
            onnx_path = Path(tmp, "model.onnx")
            # placeholder metadata: the real document is written into rt_info afterwards
            export_onnx(model, onnx_path, _placeholder_meta(model), opset=opset, dynamo=dynamo,
                        dynamic_batch=dynamic_batch)
            ov_model = read_onnx_with_extensions(ov.Core(), onnx_path)
    elif via == "torch":
        ov_model = _convert_from_torch(model)
    else:
        raise ValueError(f"via must be 'onnx' or 'torch', got {via!r}")
    _set_batch(ov_model, model.cfg.input_size, dynamic_batch)
    return ov_model


def _set_batch(ov_model: Any, size: int, dynamic: bool) -> None:
    """Input (B, 3, S, S) with B dynamic (-1) or 1; the outputs follow by shape inference."""
    import openvino as ov

    ov_model.reshape({ov_model.input(0): ov.PartialShape([-1 if dynamic else 1, 3, size, size])})


def _placeholder_meta(model: PADet) -> ModelMetadata:
    from .graph import build_metadata

    return build_metadata(model, [f"class_{i}" for i in range(model.cfg.num_classes)], trained=False)


def save_ov_model(ov_model: Any, xml_path: str | Path, meta: ModelMetadata, *, compress_to_fp16: bool) -> Path:
    """Write ``meta`` into rt_info and save the IR. ``compress_to_fp16`` stores FP16 weights
    (openvino's default is True; FP32 and INT8 IRs must pass False or their FP32 parts lose bits)."""
    import openvino as ov

    xml_path = Path(xml_path)
    if xml_path.suffix.lower() != ".xml":
        raise ValueError(f"OpenVINO IR path must end in .xml, got {xml_path}")
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    set_ov_metadata(ov_model, meta)
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=compress_to_fp16)
    return xml_path


def export_openvino(
    model: PADet,
    xml_path: str | Path,
    meta: ModelMetadata,
    *,
    precision: Literal["fp32", "fp16"] = "fp32",
    via: Literal["onnx", "torch"] = "onnx",
    opset: int = MIN_OPSET,
    dynamo: bool = True,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` to an OpenVINO IR at ``xml_path`` (and its ``.bin``); returns the path.

    ``precision="fp16"`` stores weights in FP16 (the runtime still picks its own inference
    precision; compile with ``INFERENCE_PRECISION_HINT=f32`` for FP32 math). The metadata's
    ``precision`` field is set to ``precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    ov_model = to_ov_model(model, via=via, opset=opset, dynamo=dynamo, dynamic_batch=dynamic_batch)
    meta = dataclasses.replace(meta, precision=precision)
    return save_ov_model(ov_model, xml_path, meta, compress_to_fp16=precision == "fp16")


def onnx_to_openvino(
    onnx_path: str | Path, xml_path: str | Path, meta: ModelMetadata | None = None, *,
    precision: Literal["fp32", "fp16"] = "fp32", dynamic_batch: bool = True,
) -> Path:
    """An exported PADet ``.onnx`` → IR (the ``via="onnx"`` route without re-exporting).

    ``meta`` defaults to the ONNX file's own metadata; its precision is set to ``precision``.
    """
    import openvino as ov

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    meta = read_metadata(onnx_path) if meta is None else meta
    ov_model = read_onnx_with_extensions(ov.Core(), onnx_path)
    _set_batch(ov_model, meta.input_size, dynamic_batch)
    meta = dataclasses.replace(meta, precision=precision)
    return save_ov_model(ov_model, xml_path, meta, compress_to_fp16=precision == "fp16")
