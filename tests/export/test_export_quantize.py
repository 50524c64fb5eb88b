"""INT8 with NNCF (OpenVINO IR) and onnxruntime (QDQ ONNX): loadable, close to FP32, metadata kept."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from export_helpers import run_ort, run_ov


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory) -> Path:
    """20 generated images: coloured rectangles on flat backgrounds, mixed sizes and formats."""
    import cv2

    d = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    for i in range(20):
        img = np.full((150 + 5 * i, 200, 3), rng.integers(0, 255, 3), np.uint8)
        for _ in range(6):
            x, y = (int(v) for v in rng.integers(0, 150, 2))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 60)), y + int(rng.integers(10, 60))), color, -1)
        cv2.imwrite(str(d / f"img{i:02d}.{'jpg' if i % 2 else 'png'}"), img)
    return d


@pytest.fixture(scope="module")
def calib_batch(calib_dir, narrow_meta) -> np.ndarray:
    from export.quantize import find_images, preprocess_image

    return np.concatenate([preprocess_image(p, narrow_meta) for p in find_images(calib_dir)[:4]])


def _assert_close_to_fp32(fp32: list[np.ndarray], int8: list[np.ndarray], names) -> None:
    for n, a, b in zip(names, fp32, int8):
        corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert corr > 0.98, f"{n}: correlation {corr:.4f}"
    cls = list(names).index("cls_scores")
    assert np.abs(fp32[cls] - int8[cls]).mean() < 0.01


def test_nncf_int8_ir_loads_tracks_fp32_and_keeps_metadata(exported, narrow_meta, calib_dir, calib_batch, tmp_path):
    from export import quantize
    from padet_sdk.model_file import read_metadata

    out = tmp_path / "int8.xml"
    argv = ["--model", str(exported["xml"]), "--images", str(calib_dir), "--subset-size", "20", "--output", str(out)]
    assert quantize.main(argv) == 0
    names = list(narrow_meta.outputs)
    _assert_close_to_fp32(run_ov(exported["xml"], calib_batch, names), run_ov(out, calib_batch, names), names)
    meta = read_metadata(out)
    assert meta.precision == "int8"
    assert meta == narrow_meta.__class__(**{**narrow_meta.__dict__, "precision": "int8"})

    import openvino as ov

    ops = Counter(op.get_type_name() for op in ov.Core().read_model(str(out)).get_ordered_ops())
    assert ops["FakeQuantize"] > 10 and ops["DeformableConvolution"] == 4


def test_ort_int8_qdq_onnx_loads_tracks_fp32_and_keeps_metadata(exported, narrow_meta, calib_dir, calib_batch, tmp_path):
    import onnx

    from export import quantize
    from padet_sdk.model_file import read_metadata

    out = tmp_path / "int8.onnx"
    argv = ["--model", str(exported["onnx"]), "--images", str(calib_dir), "--output", str(out)]
    assert quantize.main(argv) == 0
    _assert_close_to_fp32(run_ort(exported["onnx"], calib_batch), run_ort(out, calib_batch), narrow_meta.outputs)
    assert read_metadata(out).precision == "int8"
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["QuantizeLinear"] > 10 and ops["DeformConv"] == 4
    # dynamic batch survives quantization
    assert run_ort(out, calib_batch[:1])[0].shape[0] == 1


def test_fam_offset_convs_are_found_and_kept_fp32(exported, narrow_meta, calib_dir, tmp_path):
    """--ignore-fam-offsets: 2 convs (c and Δs) per disentangled FAM, on 4 levels, left unquantized."""
    import onnx
    import openvino as ov

    from export.quantize import (
        fam_offset_convs_onnx, fam_offset_convs_ov, find_images, quantize_onnxruntime, quantize_openvino,
    )
    from padet_sdk.ov_extensions import read_onnx_with_extensions

    proto = onnx.load(str(exported["onnx"]))
    onnx_names = fam_offset_convs_onnx(proto)
    assert len(onnx_names) == 8
    ov_model = read_onnx_with_extensions(ov.Core(), exported["onnx"])
    ov_names = fam_offset_convs_ov(ov_model)
    assert len(ov_names) == 8

    images = find_images(calib_dir, subset_size=4)
    out = quantize_onnxruntime(exported["onnx"], narrow_meta, images, tmp_path / "q.onnx", ignore_fam_offsets=True)
    q = onnx.load(str(out))
    producer = {o: n for n in q.graph.node for o in n.output}
    kept = [n for n in q.graph.node if n.name in onnx_names]
    assert len(kept) == 8
    def weight_is_int8(node) -> bool:
        return node.input[1] in producer and producer[node.input[1]].op_type == "DequantizeLinear"

    assert not any(weight_is_int8(n) for n in kept)  # plain FP32 initializers
    assert sum(weight_is_int8(n) for n in q.graph.node if n.op_type == "Conv") > 10

    xml = quantize_openvino(ov_model, narrow_meta, images, tmp_path / "q.xml", ignore_fam_offsets=True)
    qm = ov.Core().read_model(str(xml))
    convs = {op.get_friendly_name(): op for op in qm.get_ordered_ops() if op.get_type_name() == "Convolution"}

    def weight_is_int8(op) -> bool:  # NNCF stores INT8 weights as Constant(i8) -> Convert -> Multiply
        return op.input(1).get_source_output().get_node().get_type_name() != "Constant"

    assert set(ov_names) <= set(convs)
    assert not any(weight_is_int8(convs[n]) for n in ov_names)
    assert sum(weight_is_int8(op) for op in convs.values()) > 10


def test_calibration_images_follow_metadata_preprocessing(calib_dir, narrow_meta):
    import dataclasses

    import cv2

    from export.quantize import find_images, preprocess_image

    path = find_images(calib_dir, subset_size=1)[0]
    x = preprocess_image(path, narrow_meta)
    s = narrow_meta.input_size
    assert x.shape == (1, 3, s, s) and x.dtype == np.float32
    bgr = cv2.resize(cv2.imread(str(path)), (s, s))
    r = (bgr[..., 2] / 255.0 - narrow_meta.mean[0]) / narrow_meta.std[0]
    np.testing.assert_allclose(x[0, 0], r, atol=1e-5)
    x_bgr = preprocess_image(path, dataclasses.replace(narrow_meta, pixel_order="BGR", mean=(0, 0, 0), std=(1, 1, 1)))
    np.testing.assert_allclose(x_bgr[0, 0], bgr[..., 0] / 255.0, atol=1e-6)
    assert len(find_images(calib_dir, subset_size=5)) == 5
