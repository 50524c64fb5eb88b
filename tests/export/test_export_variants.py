"""Every architecture variant of the ablations exports to ONNX and runs in onnxruntime."""
from __future__ import annotations

import pytest

from export_helpers import CLASS_NAMES, make_narrow_model, max_abs_diff, random_images, run_ort, torch_outputs
from training.config import FAM_MODES

VARIANTS = {f"fam_{m}": dict(fam=m) for m in FAM_MODES if m != "disentangled"}  # disentangled: the default model
VARIANTS["no_apm"] = dict(use_apm_score=False, use_apm_reg=False, fam="none")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_exports_to_onnx_and_matches_torch(name, tmp_path):
    import onnx

    from export.graph import build_metadata
    from export.onnx_export import export_onnx

    overrides = VARIANTS[name]
    model = make_narrow_model(seed=1, **overrides)
    meta = build_metadata(model, CLASS_NAMES)
    path = export_onnx(model, tmp_path / f"{name}.onnx", meta)
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == list(meta.outputs)
    n_deform = sum(n.op_type == "DeformConv" for n in proto.graph.node)
    expected = 0 if overrides["fam"] == "none" else sum(model.cfg.fam_on_level(i) for i in range(model.cfg.num_levels))
    assert n_deform == expected
    x = random_images(2, seed=3)
    # test_export_parity.TOL; measured worst variant fam_implicit: 2.6e-5 (AVX-512) / 3.0e-5 (AVX2, qemu)
    assert max_abs_diff(run_ort(path, x), torch_outputs(model, x)) <= 1e-4


def test_variant_without_apm_omits_apm_outputs():
    from export.graph import InferenceGraph

    model = make_narrow_model(**VARIANTS["no_apm"])
    assert InferenceGraph(model).output_names == ["cls_scores", "det_deltas"]
