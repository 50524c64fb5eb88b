"""The exported graphs compute what the torch model computes, on every runtime and route."""
from __future__ import annotations

import pytest

from export_helpers import max_abs_diff, random_images, run_ort, run_ov, torch_outputs

#: float32 engines (OpenVINO forced to f32, see export_helpers.F32) vs torch: different conv/GEMM
#: kernels and summation orders per CPU (oneDNN/MLAS pick them from AVX2 / AVX-512 / AMX), outputs up
#: to |5.5|: measured max |diff| 1.2e-5 on a Xeon (AVX-512/AMX) and 1.5e-5 on AVX2 (qemu -cpu
#: EPYC-Rome), over every comparison here; 1e-4 leaves 6x, and a wrong op or output order gives >1e-2.
TOL = 1e-4


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_torch_at_dynamic_batch(narrow_model, exported, batch):
    x = random_images(batch, seed=batch)
    assert max_abs_diff(run_ort(exported["onnx"], x), torch_outputs(narrow_model, x)) <= TOL


@pytest.mark.parametrize("batch", [1, 3])
def test_openvino_ir_matches_torch_at_dynamic_batch(narrow_model, narrow_meta, exported, batch):
    x = random_images(batch, seed=10 + batch)
    got = run_ov(exported["xml"], x, list(narrow_meta.outputs))
    assert max_abs_diff(got, torch_outputs(narrow_model, x)) <= TOL


@pytest.mark.parametrize("batch", [1, 3])
def test_openvino_reading_onnx_with_deformconv_extension_matches_torch(narrow_model, narrow_meta, exported, batch):
    import openvino as ov

    from padet_sdk.ov_extensions import read_onnx_with_extensions

    model = read_onnx_with_extensions(ov.Core(), exported["onnx"])
    x = random_images(batch, seed=20 + batch)
    got = run_ov(model, x, list(narrow_meta.outputs))
    assert max_abs_diff(got, torch_outputs(narrow_model, x)) <= TOL


def test_fam_offsets_actually_deform(narrow_model):
    """Guards the other tests: with zero offsets a broken DeformConv mapping would still pass."""
    import torch

    from training.fam import FAM

    fam = next(m for m in narrow_model.modules() if isinstance(m, FAM))
    x = torch.randn(1, fam.weight.shape[1], 24, 24)
    reg = torch.randn(1, 4 * 6, 24, 24)
    with torch.no_grad():
        off = fam.offsets(x, reg)
    assert off.abs().mean() > 0.5


def test_legacy_exporter_symbolic_equals_dynamo_export(narrow_model, narrow_meta, exported, tmp_path):
    import onnx

    from export.onnx_export import export_onnx

    path = export_onnx(narrow_model, tmp_path / "legacy.onnx", narrow_meta, dynamo=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DeformConv" in ops
    x = random_images(3, seed=5)
    # two graphs of the same ops in one engine: measured 0 (bit-equal) on AVX-512 and AVX2
    assert max_abs_diff(run_ort(path, x), run_ort(exported["onnx"], x)) <= 1e-5


def test_legacy_symbolic_rejects_opset_without_deformconv():
    from export.deform_symbolic import register_deform_conv_symbolic

    with pytest.raises(ValueError, match="opset 18"):
        register_deform_conv_symbolic(18)


def test_openvino_via_torch_frontend_matches_torch(narrow_model, narrow_meta, tmp_path):
    from export.openvino_export import export_openvino

    xml = export_openvino(narrow_model, tmp_path / "via_torch.xml", narrow_meta, via="torch")
    x = random_images(2, seed=7)
    assert max_abs_diff(run_ov(xml, x, list(narrow_meta.outputs)), torch_outputs(narrow_model, x)) <= TOL


def test_fp16_ir_stores_half_weights_and_stays_close(narrow_model, narrow_meta, exported, tmp_path):
    from export.openvino_export import onnx_to_openvino
    from padet_sdk.model_file import read_metadata

    xml = onnx_to_openvino(exported["onnx"], tmp_path / "fp16.xml", precision="fp16")
    fp32_bin = exported["xml"].with_suffix(".bin").stat().st_size
    assert xml.with_suffix(".bin").stat().st_size < 0.6 * fp32_bin  # measured 0.500 (all weights in fp16)
    assert read_metadata(xml).precision == "fp16"
    x = random_images(1, seed=8)
    got = run_ov(xml, x, list(narrow_meta.outputs))
    # the fp16 rounding of the weights (2^-11 relative), computed in f32: 1.52e-2 on det_deltas (|max| 3.7),
    # the same on AVX-512 and AVX2 (qemu) since it is the weights' rounding, not the kernels' (~1e-5)
    assert max_abs_diff(got, torch_outputs(narrow_model, x)) <= 2e-2
