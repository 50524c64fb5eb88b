"""The demo-model rebuild (``export/build_demo_model.py``) end to end on a tiny budget: both
stages, the stage-2 options (input size, augmentation) reaching the training run, and a
fine-tuning from a previous model file naming its lineage in the model version."""
from __future__ import annotations

import json

import pytest

from export.build_demo_model import main

TINY = ["--train", "12", "--val", "4", "--clip-train", "8", "--clip-val", "4", "--data-size", "128",
        "--input-size", "128", "--batch-size", "4", "--steps", "2", "--ft-steps", "2", "--calib", "4"]  # fmt: skip


@pytest.mark.slow
def test_stage2_options_reach_training_and_lineage_is_recorded(tmp_path):
    import torch

    from padet_sdk.model_file import read_metadata

    first = tmp_path / "first"
    assert main([*TINY, "--work", str(tmp_path / "w1"), "--dest", str(first), "--ft-input-size", "160",
                 "--ft-augment", "--ft-expand-max-ratio", "2"]) == 0  # fmt: skip
    meta = read_metadata(first / "padet_shapes.onnx")
    assert meta.input_size == 160 and meta.model_version == "shapes-seed0-step2-ft2@160"
    assert read_metadata(first / "padet_shapes.xml").input_size == 160 and meta.postprocess.conf > 0.0
    stage1 = torch.load(tmp_path / "w1" / "run_base" / "last.pth", weights_only=False)["train_args"]
    stage2 = torch.load(tmp_path / "w1" / "run" / "last.pth", weights_only=False)["train_args"]
    assert stage1["no_augment"] and stage1["input_size"] == 128
    assert not stage2["no_augment"] and stage2["input_size"] == 160 and stage2["expand_max_ratio"] == 2.0
    card = json.loads((first / "padet_shapes.json").read_text())
    assert card["recipe"]["ft_augment"] is True and card["stage1"] == "trained here"

    second = tmp_path / "second"  # the shipped model's way: fine-tune the previous file
    assert main([*TINY, "--work", str(tmp_path / "w2"), "--dest", str(second),
                 "--init-onnx", str(first / "padet_shapes.onnx")]) == 0  # fmt: skip
    assert not (tmp_path / "w2" / "run_base").exists()  # no stage 1
    meta2 = read_metadata(second / "padet_shapes.onnx")
    assert meta2.model_version == "shapes-seed0-step2-ft2@160-ft2@192" and meta2.input_size == 192
    assert "shapes-seed0-step2-ft2@160" in json.loads((second / "padet_shapes.json").read_text())["stage1"]
