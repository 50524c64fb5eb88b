"""Fixtures of the export tests: the narrow PADet of ``export_helpers``, exported once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from export.graph import build_metadata
from export_helpers import CLASS_NAMES, make_narrow_model
from training.model import PADet


@pytest.fixture(scope="session", params=["vgg", "light", "light_s16", "light_r18"])
def narrow_model(request) -> PADet:
    """Each export test runs on the paper's narrow network and on the light (mobile) ones."""
    return make_narrow_model(kind=request.param)


@pytest.fixture(scope="session")
def narrow_meta(narrow_model):
    return build_metadata(narrow_model, CLASS_NAMES, model_version="test-1")


@pytest.fixture(scope="session")
def exported(narrow_model, narrow_meta, tmp_path_factory) -> dict[str, Path]:
    """The narrow model as ONNX (dynamo) and as an FP32 IR through ONNX: exported once."""
    from export.onnx_export import export_onnx
    from export.openvino_export import export_openvino

    d = tmp_path_factory.mktemp("export")
    return {
        "onnx": export_onnx(narrow_model, d / "narrow.onnx", narrow_meta),
        "xml": export_openvino(narrow_model, d / "narrow.xml", narrow_meta),
        "dir": d,
    }
