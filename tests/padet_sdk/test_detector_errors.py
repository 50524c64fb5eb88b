"""Bad models and bad frames raise the documented exception types with messages that say what
to do — never a bare engine error or a wrong result."""
from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sdk_helpers import model_and_files

import padet_sdk.model_file as model_file
from padet_sdk import (
    Detector, DetectorClosedError, FrameSource, InvalidFrameError, MissingMetadataError, ModelLoadError,
    ModelNotFoundError, PadetError, stream,
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


# ---------------------------------------------------------------- close() from another thread
@pytest.mark.parametrize("kind", ["onnx", "xml"])
def test_close_while_other_threads_use_the_detector(kind):
    """Was (onnxruntime): RuntimeError 'cannot schedule new futures after shutdown'. Now calls in
    flight finish, later ones raise DetectorClosedError, on both engines."""
    _, files = model_and_files()
    if kind not in files:
        pytest.skip("no IR")
    d = Detector(files[kind], num_requests=2)
    frame = np.zeros((96, 128, 3), np.uint8)
    d(frame)
    errors: list[BaseException] = []
    done = [0]
    started = threading.Barrier(5)

    def work(use_submit: bool) -> None:
        started.wait()
        try:
            while True:
                d.submit(frame).result(timeout=60) if use_submit else d(frame)
                done[0] += 1
        except DetectorClosedError:
            pass
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i % 2 == 0,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.3)
    d.close()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert done[0] > 0
    for call in (lambda: d(frame), lambda: d.submit(frame)):
        with pytest.raises(DetectorClosedError, match="closed") as e:
            call()
        assert isinstance(e.value, PadetError)
    d.close()  # twice is fine


def test_a_stream_over_a_closed_detector_ends_with_detector_closed_error(tmp_path):
    _, files = model_and_files()
    d = Detector(files["onnx"])
    d.close()
    src = FrameSource(lambda: np.zeros((64, 64, 3), np.uint8), name="gen", kind="camera", live=True)
    with pytest.raises(DetectorClosedError):
        for _ in stream(d, src):
            pass


def _load_in_thread(path, **kw):
    """Detector(path) on a thread; (finished, exception) after at most 20 s (a FIFO must not hang)."""
    box: list[BaseException | None] = []

    def load():
        try:
            Detector(path, **kw)
            box.append(None)
        except BaseException as e:  # noqa: BLE001
            box.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # unblock the reader so that the thread ends
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    return (not t.is_alive() or bool(box)), (box[0] if box else None)


@pytest.mark.parametrize("name,backend", [("x.onnx", "auto"), ("x.onnx", "openvino"), ("x.xml", "auto")])
def test_a_fifo_named_like_a_model_is_refused_at_once(tmp_path, name, backend):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    finished, err = _load_in_thread(fifo, backend=backend)
    assert finished, "loading a FIFO hung"
    assert isinstance(err, ModelLoadError) and "not a regular file" in str(err), err


def test_a_directory_named_like_a_model_is_refused(tmp_path):
    (tmp_path / "x.onnx").mkdir()
    with pytest.raises(ModelLoadError, match="directory"):
        Detector(tmp_path / "x.onnx")


@pytest.mark.parametrize("path", ["", "photo.jpg", b"photo.jpg"])
def test_a_path_is_not_a_frame(det, path):
    """Was: det("") returned [] (a str counted as a list of letters)."""
    for call in (det, det.submit):
        with pytest.raises(TypeError, match=r"cv2\.imread") as e:
            call(path)
        assert isinstance(e.value, InvalidFrameError)
    with pytest.raises(TypeError, match=r"cv2\.imread"):
        det(Path("photo.jpg"))
    with pytest.raises(InvalidFrameError, match=r"cv2\.imread"):
        det([path or "x"])
