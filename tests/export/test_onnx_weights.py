"""export/onnx_weights.py: an exported file's weights come back into a PyTorch PADet that computes
what the file does (BatchNorm folded by the exporter returns as identity + bias)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export.onnx_weights import state_dict_from_onnx
from export_helpers import random_images, run_ort, torch_outputs
from training.model import PADet


def test_state_dict_from_onnx_rebuilds_the_network_of_the_file(narrow_model, exported):
    fresh = PADet(narrow_model.cfg).eval()
    fresh.load_state_dict(state_dict_from_onnx(exported["onnx"], fresh))
    x = random_images(2)
    want = run_ort(exported["onnx"], x)
    got = torch_outputs(fresh, x)
    # float32 through ~20-60 convs, the folded BatchNorm multiplied in once more: measured <= 1e-5
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    # and the rebuilt BatchNorms are the identity in eval mode: same outputs as the original network
    for a, b in zip(got, torch_outputs(narrow_model, x)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_state_dict_from_onnx_refuses_another_network(narrow_model, exported):
    other = PADet(narrow_model.cfg.replace(num_classes=5)).eval()
    with pytest.raises(ValueError, match="heads.0.cls.weight is .* expected"):
        state_dict_from_onnx(exported["onnx"], other)
    torch.manual_seed(0)
