"""PADet → ONNX with the deformable conv as the standard ``DeformConv`` operator (opset ≥ 19)."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from padet_sdk.metadata import INPUT_NAME, METADATA_KEY, ModelMetadata
from training.model import PADet

from .deform_symbolic import MIN_OPSET, register_deform_conv_symbolic
from .graph import InferenceGraph


def set_onnx_metadata(model_proto: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Write (or replace) the PADet metadata in ``metadata_props``."""
    for p in list(model_proto.metadata_props):
        if p.key == METADATA_KEY:
            model_proto.metadata_props.remove(p)
    entry = model_proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()


def export_onnx(
    model: PADet,
    path: str | Path,
    meta: ModelMetadata,
    *,
    opset: int = MIN_OPSET,
    dynamic_batch: bool = True,
    dynamo: bool = True,
) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` with ``meta`` embedded; returns the path."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} has no DeformConv; PADet needs opset >= {MIN_OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = InferenceGraph(model.eval().cpu()).eval()
    s = model.cfg.input_size
    example = torch.zeros(2 if dynamic_batch else 1, 3, s, s)
    names = graph.output_names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dyn = {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=256)}} if dynamic_batch else None
            torch.onnx.export(
                graph, (example,), str(path), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=names, dynamic_shapes=dyn, verbose=False,
            )
        else:
            register_deform_conv_symbolic(opset)
            axes = {INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}} if dynamic_batch else None
            torch.onnx.export(
                graph, (example,), str(path), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=names, dynamic_axes=axes,
            )
    proto = onnx.load(str(path), load_external_data=True)
    set_onnx_metadata(proto, meta)
    # one self-contained file: weights inline (the exporter may have written a .data sidecar)
    sidecars = {Path(path.parent, t.external_data[0].value) for t in proto.graph.initializer if t.external_data}
    for t in proto.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            t.data_location = onnx.TensorProto.DEFAULT
            del t.external_data[:]
    onnx.save(proto, str(path), save_as_external_data=False)
    for f in sidecars | {path.with_name(path.name + ".data")}:
        f.unlink(missing_ok=True)
    return path
