"""The metadata document survives ONNX and IR files and rebuilds the training anchors."""
from __future__ import annotations

import numpy as np
import pytest

from padet_sdk.metadata import MetadataError


def test_metadata_round_trips_through_onnx(narrow_meta, exported):
    from padet_sdk.model_file import read_metadata

    assert read_metadata(exported["onnx"]) == narrow_meta


def test_metadata_round_trips_through_ir(narrow_meta, exported):
    from padet_sdk.model_file import read_metadata

    assert read_metadata(exported["xml"]) == narrow_meta


def test_metadata_readable_from_loaded_openvino_models(narrow_meta, exported):
    """The SDK path: rt_info of a model read from IR, and of one read from ONNX by OpenVINO."""
    import openvino as ov

    from padet_sdk.model_file import metadata_from_ov_model
    from padet_sdk.ov_extensions import read_onnx_with_extensions

    assert metadata_from_ov_model(ov.Core().read_model(str(exported["xml"]))) == narrow_meta
    assert metadata_from_ov_model(read_onnx_with_extensions(ov.Core(), exported["onnx"])) == narrow_meta


def test_ir_rt_info_raw_read_path_documented_for_sdk(narrow_meta, exported):
    import openvino as ov

    from padet_sdk.metadata import ModelMetadata

    model = ov.Core().read_model(str(exported["xml"]))
    assert ModelMetadata.from_json(model.get_rt_info("padet").astype(str)) == narrow_meta


def test_anchors_rebuilt_from_file_metadata_equal_model_anchors(narrow_model, exported):
    from padet_sdk.model_file import read_metadata

    for key in ("onnx", "xml"):
        meta = read_metadata(exported[key])
        anchors = meta.anchors()
        assert anchors.shape == (meta.num_anchors, 4)
        np.testing.assert_array_equal(anchors, narrow_model.anchors.numpy())


def test_exported_output_shapes_agree_with_metadata(narrow_meta, exported):
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    assert [o.name for o in proto.graph.output] == list(narrow_meta.outputs)
    n = narrow_meta.num_anchors
    dims = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim][1:] for o in proto.graph.output}
    assert dims["cls_scores"] == [n, narrow_meta.num_classes + 1]
    assert dims["det_deltas"] == [n, 4]


def test_read_metadata_errors_are_clear(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from padet_sdk.model_file import read_metadata

    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "missing.xml")
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(MetadataError, match="unsupported model file type"):
        read_metadata(tmp_path / "model.tflite")
    node = helper.make_node("Relu", ["x"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"]
    bare = helper.make_model(helper.make_graph([node], "g", vi[:1], vi[1:]))
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(MetadataError, match="no PADet metadata"):
        read_metadata(tmp_path / "bare.onnx")
    (tmp_path / "bad.xml").write_text("<notnet/>")
    with pytest.raises(MetadataError, match="not an OpenVINO IR"):
        read_metadata(tmp_path / "bad.xml")


def test_onnx_metadata_scan_agrees_with_onnx_parser(exported):
    """The dependency-free protobuf scan reads what onnx itself reads."""
    import onnx

    from padet_sdk.model_file import onnx_metadata_props

    proto = onnx.load(str(exported["onnx"]), load_external_data=False)
    assert onnx_metadata_props(exported["onnx"]) == {p.key: p.value for p in proto.metadata_props}


def test_untrained_flag_and_precision_are_recorded(narrow_model, tmp_path):
    import dataclasses

    from export.graph import build_metadata
    from export.onnx_export import set_onnx_metadata
    from padet_sdk.model_file import read_metadata

    meta = build_metadata(narrow_model, ["a", "b", "c"], trained=False)
    import onnx
    from onnx import TensorProto, helper

    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"]
    proto = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", vi[:1], vi[1:]))
    set_onnx_metadata(proto, dataclasses.replace(meta, precision="int8"))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    got = read_metadata(tmp_path / "m.onnx")
    assert got.trained is False and got.precision == "int8"
