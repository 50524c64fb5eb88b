"""Bad models and bad frames raise the documented exception types with messages that say what
to do — never a bare engine error or a wrong result."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from sdk_helpers import model_and_files

import padet_sdk.model_file as model_file
from padet_sdk import (
    Detector, InvalidFrameError, MissingMetadataError, ModelLoadError, ModelNotFoundError, PadetError,
)


@pytest.fixture(scope="module")
def det() -> Detector:
    _, files = model_and_files()
    return Detector(files["onnx"])


# ---------------------------------------------------------------- model files
def test_missing_model_file_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found") as e:
        Detector(tmp_path / "nope.xml")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ModelLoadError)


def test_missing_default_model_explains_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(model_file, "DEFAULT_MODEL", tmp_path / "models" / "padet_shapes.xml")
    with pytest.raises(ModelNotFoundError, match="to_openvino"):
        Detector()


@pytest.mark.parametrize("name", ["bad.onnx", "bad.xml"])
def test_corrupt_model_file_is_model_load_error(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"\x00\x01garbage" * 100)
    if name.endswith(".xml"):
        p.with_suffix(".bin").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=re.escape(str(p))):
        Detector(p)


def test_ir_without_bin_is_model_load_error(tmp_path):
    _, files = model_and_files()
    if "xml" not in files:
        pytest.skip("no IR")
    xml = shutil.copy(files["xml"], tmp_path / "m.xml")
    with pytest.raises(ModelLoadError, match=r"m\.bin"):
        Detector(xml)


def test_unsupported_extension_and_directory(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unsupported"):
        Detector(tmp_path / "m.pt")
    with pytest.raises(ModelLoadError, match="directory"):
        Detector(tmp_path)


def test_ir_with_onnxruntime_backend_is_refused():
    _, files = model_and_files()
    if "xml" not in files:
        pytest.skip("no IR")
    with pytest.raises(ModelLoadError, match="onnxruntime cannot read OpenVINO IR"):
        Detector(files["xml"], backend="onnxruntime")


def test_onnx_without_padet_metadata_is_missing_metadata(tmp_path):
    import onnx

    _, files = model_and_files()
    proto = onnx.load(str(files["onnx"]))
    del proto.metadata_props[:]
    p = tmp_path / "plain.onnx"
    onnx.save(proto, str(p))
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(MissingMetadataError, match="no PADet metadata") as e:
            Detector(p, backend=backend)
        assert isinstance(e.value, ValueError) and isinstance(e.value, ModelLoadError)


def test_ir_without_padet_metadata_is_missing_metadata(tmp_path):
    _, files = model_and_files()
    if "xml" not in files:
        pytest.skip("no IR")
    text = files["xml"].read_text()
    stripped = re.sub(r'<padet value="[^"]*"\s*/>', "", text)
    assert stripped != text
    (tmp_path / "plain.xml").write_text(stripped)
    shutil.copy(files["xml"].with_suffix(".bin"), tmp_path / "plain.bin")
    with pytest.raises(MissingMetadataError, match="PADet metadata"):
        Detector(tmp_path / "plain.xml")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"backend": "tensorrt"}, "backend"), ({"nms": "soft"}, "nms"), ({"conf": 1.5}, "conf"), ({"max_det": 0}, "max_det")],
)
def test_bad_options_are_value_errors(kwargs, match):
    _, files = model_and_files()
    with pytest.raises(ValueError, match=match):
        Detector(files["onnx"], **kwargs)


# ---------------------------------------------------------------- frames
BAD_FRAMES = {
    "gray_2d": (np.zeros((50, 60), np.uint8), "COLOR_GRAY2BGR"),
    "gray_1ch": (np.zeros((50, 60, 1), np.uint8), "COLOR_GRAY2BGR"),
    "bgra": (np.zeros((50, 60, 4), np.uint8), "COLOR_BGRA2BGR"),
    "two_channels": (np.zeros((50, 60, 2), np.uint8), "3 channels"),
    "float32": (np.zeros((50, 60, 3), np.float32), r"uint8.*\* 255"),
    "float64": (np.zeros((50, 60, 3), np.float64), "dtype float64"),
    "uint16": (np.zeros((50, 60, 3), np.uint16), "dtype uint16"),
    "empty": (np.zeros((0, 60, 3), np.uint8), "empty"),
    "stacked_4d": (np.zeros((2, 50, 60, 3), np.uint8), "list of frames"),
    "none": (None, "imread returns None"),
    "pil_like": ("not an image", "numpy array"),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frame_raises_invalid_frame_error_with_hint(det, name):
    frame, hint = BAD_FRAMES[name]
    with pytest.raises(InvalidFrameError, match=hint) as e:
        det(frame) if name != "pil_like" else det([frame])
    assert isinstance(e.value, ValueError) and isinstance(e.value, PadetError)
    with pytest.raises(InvalidFrameError):
        det.submit(frame)


def test_passing_the_read_tuple_says_so(det):
    with pytest.raises(InvalidFrameError, match=r"\(ok, frame\) tuple"):
        det((True, np.zeros((50, 60, 3), np.uint8)))


def test_bad_frame_in_a_batch_names_its_position(det):
    good = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(InvalidFrameError, match="frame 1"):
        det([good, np.zeros((50, 60), np.uint8)])
