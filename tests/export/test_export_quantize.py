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
    assert meta.quant_scheme.startswith("nncf:overflow-fix=") and meta.quant_target_cpu in ("vnni", "avx2")
    fields = {**narrow_meta.__dict__, "precision": "int8", "quant_scheme": meta.quant_scheme,
              "quant_target_cpu": meta.quant_target_cpu}
    assert meta == narrow_meta.__class__(**fields)

    import openvino as ov

    ops = Counter(op.get_type_name() for op in ov.Core().read_model(str(out)).get_ordered_ops())
    assert ops["FakeQuantize"] > 10 and ops["DeformableConvolution"] == 4


@pytest.fixture(scope="module")
def ort_int8(exported, calib_dir, tmp_path_factory) -> dict[str, Path]:
    """The narrow model quantized by onnxruntime for each target CPU (through the CLI)."""
    from export import quantize

    d = tmp_path_factory.mktemp("ort_int8")
    out = {}
    for target in ("vnni", "avx2"):
        out[target] = d / f"int8_{target}.onnx"
        argv = ["--model", str(exported["onnx"]), "--images", str(calib_dir), "--output", str(out[target]),
                "--target-cpu", target]
        assert quantize.main(argv) == 0
    return out


def test_ort_int8_qdq_onnx_loads_tracks_fp32_and_keeps_metadata(exported, narrow_meta, ort_int8, calib_batch):
    """The scheme --target-cpu auto picks for this CPU tracks FP32 here (on any x86 CPU)."""
    import onnx

    from padet_sdk.cpu import int8_target
    from padet_sdk.model_file import read_metadata

    out = ort_int8[int8_target()]
    _assert_close_to_fp32(run_ort(exported["onnx"], calib_batch), run_ort(out, calib_batch), narrow_meta.outputs)
    assert read_metadata(out).precision == "int8"
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["QuantizeLinear"] > 10 and ops["DeformConv"] == 4
    # dynamic batch survives quantization
    assert run_ort(out, calib_batch[:1])[0].shape[0] == 1


def test_ort_int8_for_avx2_keeps_scores_on_any_cpu_and_says_so_in_metadata(exported, narrow_meta, ort_int8, calib_batch):
    """--target-cpu avx2 (7-bit weights: no int16 saturation without VNNI) stays close to FP32
    whichever CPU runs this, and records its scheme and target for the SDK's check."""
    from export.quantize import DEFAULT_ORT_SCHEME
    from padet_sdk.model_file import read_metadata

    out = ort_int8["avx2"]
    _assert_close_to_fp32(run_ort(exported["onnx"], calib_batch), run_ort(out, calib_batch), narrow_meta.outputs)
    meta = read_metadata(out)
    assert (meta.quant_scheme, meta.quant_target_cpu) == (f"ort:{DEFAULT_ORT_SCHEME['avx2']}", "avx2")
    vnni = read_metadata(ort_int8["vnni"])
    assert (vnni.quant_scheme, vnni.quant_target_cpu) == (f"ort:{DEFAULT_ORT_SCHEME['vnni']}", "vnni")


def test_detector_warns_once_when_a_vnni_int8_model_runs_on_a_cpu_without_vnni(ort_int8, monkeypatch, caplog):
    import logging

    from padet_sdk import Detector, cpu

    monkeypatch.setattr(cpu, "_warned", set())
    caplog.set_level(logging.WARNING, logger="padet_sdk")
    monkeypatch.setenv(cpu.FLAGS_ENV, "sse4_2 avx avx2 fma avx512f avx512bw")  # e.g. Skylake-X: AVX-512, no VNNI
    for _ in range(2):
        Detector(ort_int8["vnni"]).close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "VNNI" in r.getMessage()]
    assert len(warnings) == 1
    assert "--target-cpu avx2" in warnings[0].getMessage() and "int8_vnni.onnx" in warnings[0].getMessage()
    caplog.clear()
    Detector(ort_int8["avx2"]).close()  # made for CPUs without VNNI: nothing to say
    monkeypatch.setattr(cpu, "_warned", set())
    monkeypatch.setenv(cpu.FLAGS_ENV, "avx2 avx512f avx512_vnni")
    Detector(ort_int8["vnni"]).close()  # the CPU it was made for
    assert not [r for r in caplog.records if "VNNI" in r.getMessage()]


def test_quantize_cli_rejects_conflicting_scheme_options(exported, calib_dir, tmp_path, capsys):
    from export import quantize

    base = ["--model", str(exported["onnx"]), "--images", str(calib_dir), "--output", str(tmp_path / "q.onnx")]
    assert quantize.main([*base, "--reduce-range", "--ort-scheme", "u8u8"]) != 0
    assert "--reduce-range" in capsys.readouterr().err
    xml = ["--model", str(exported["xml"]), "--images", str(calib_dir), "--output", str(tmp_path / "q.xml")]
    assert quantize.main([*xml, "--ort-scheme", "u8u8"]) != 0
    assert "ort backend only" in capsys.readouterr().err


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


def test_depthwise_convs_and_se_multiplies_stay_fp32_under_nncf(exported, narrow_model, narrow_meta, calib_dir, tmp_path):
    """Light models: NNCF leaves the depthwise convs' and the squeeze-excitation multiplies'
    inputs unquantized (faster on OpenVINO's CPU plugin); the dense graphs (VGG, ResNet with the
    paper's heads) have none of them."""
    import openvino as ov
    import torch

    from export.quantize import find_images, fp32_faster_ops_ov, quantize_openvino
    from padet_sdk.ov_extensions import read_onnx_with_extensions

    ov_model = read_onnx_with_extensions(ov.Core(), exported["onnx"])
    names = fp32_faster_ops_ov(ov_model)
    depthwise = sum(isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
                    for m in narrow_model.modules())  # fmt: skip
    se = sum(type(m).__name__ == "SqueezeExcitation" for m in narrow_model.modules())
    if not narrow_model.cfg.light_head:
        assert names == [] and depthwise == se == 0
        return
    assert depthwise > 10 and se == 8 and len(names) == depthwise + se
    xml = quantize_openvino(ov_model, narrow_meta, find_images(calib_dir, subset_size=4), tmp_path / "q.xml")
    ops = {op.get_friendly_name(): op for op in ov.Core().read_model(str(xml)).get_ordered_ops()}
    fed_by_fq = lambda op: any(i.get_source_output().get_node().get_type_name() == "FakeQuantize"  # noqa: E731
                               for i in op.inputs())  # fmt: skip
    assert not any(fed_by_fq(ops[n]) for n in names)
    assert sum(fed_by_fq(op) for op in ops.values() if op.get_type_name() == "Convolution") > 10  # the rest is INT8
