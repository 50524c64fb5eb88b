"""The demo-model rebuild (``export/build_demo_model.py``) end to end on a tiny budget: both
stages, the stage-2 options (input size, augmentation, clip frames) reaching the training run,
and a lineage of fine-tunings, each from the previous link's file, named in the model version."""
from __future__ import annotations

import json

import pytest

import export.build_demo_model as bdm

TINY = ["--train", "12", "--val", "4", "--clip-train", "8", "--clip-val", "4", "--data-size", "128",
        "--input-size", "128", "--batch-size", "4", "--steps", "2", "--ft-steps", "2", "--calib", "4"]  # fmt: skip
# options beside --lineage override every link's, so the clip-frame counts are set per link below


@pytest.mark.slow
def test_lineage_links_fine_tune_each_other_with_their_own_stage2_options(tmp_path, monkeypatch):
    import torch

    from padet_sdk.model_file import read_metadata

    monkeypatch.setattr(bdm, "LINEAGE", (
        ("--ft-input-size", "160", "--ft-augment", "--ft-expand-max-ratio", "2", "--clip-frames-train", "0",
         "--clip-frames-val", "0"),
        ("--ft-input-size", "192", "--no-ft-augment", "--clip-frames-train", "4", "--clip-frames-val", "2"),
    ))  # fmt: skip
    dest = tmp_path / "dest"
    assert bdm.main(["--lineage", *TINY, "--work", str(tmp_path / "w"), "--dest", str(dest)]) == 0
    first = tmp_path / "w" / "link0" / "out"
    meta = read_metadata(first / "padet_shapes.onnx")
    assert meta.input_size == 160 and meta.model_version == "shapes-seed0-step2-ft2@160"
    assert read_metadata(first / "padet_shapes.xml").input_size == 160 and meta.postprocess.conf > 0.0
    stage1 = torch.load(tmp_path / "w" / "link0" / "run_base" / "last.pth", weights_only=False)["train_args"]
    stage2 = torch.load(tmp_path / "w" / "link0" / "run" / "last.pth", weights_only=False)["train_args"]
    assert stage1["no_augment"] and stage1["input_size"] == 128
    assert not stage2["no_augment"] and stage2["input_size"] == 160 and stage2["expand_max_ratio"] == 2.0
    card = json.loads((first / "padet_shapes.json").read_text())
    assert card["recipe"]["ft_augment"] is True and card["stage1"] == "trained here"

    # the second link fine-tunes the first one's file (no stage 1), on clip frames too, into --dest
    assert not (tmp_path / "w" / "link1" / "run_base").exists()
    meta2 = read_metadata(dest / "padet_shapes.onnx")
    assert meta2.model_version == "shapes-seed0-step2-ft2@160-ft2@192" and meta2.input_size == 192
    card2 = json.loads((dest / "padet_shapes.json").read_text())
    assert "shapes-seed0-step2-ft2@160" in card2["stage1"] and card2["recipe"]["clip_frames_train"] == 4
    merged = json.loads((tmp_path / "w" / "link1" / "data" / "annotations" / "instances_train.json").read_text())
    assert sum(im["file_name"].startswith("clipframes_") for im in merged["images"]) == 4


def test_lineage_takes_no_init_onnx(tmp_path):
    with pytest.raises(SystemExit) as e:
        bdm.main(["--lineage", "--init-onnx", str(tmp_path / "x.onnx")])
    assert e.value.code == 2


def test_shipped_lineage_ends_with_the_recipe_defaults():
    """RECIPE is the last link, so ``--init-onnx <previous link>`` alone rebuilds the shipped model."""
    args = bdm.RECIPE
    last = bdm.LINEAGE[-1]
    value = lambda flag: last[last.index(flag) + 1]  # noqa: E731
    assert float(value("--ft-lr")) == args["ft_lr"] and int(value("--ft-steps")) == args["ft_steps"]
    assert int(value("--ft-input-size")) == args["ft_input_size"] and "--ft-augment" in last
    assert int(value("--clip-frames-train")) == args["clip_frames_train"]
