"""The export CLIs: run as files from the repo root, clear errors, checkpoint round trip."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from export_helpers import CLASS_NAMES, make_narrow_model, max_abs_diff, random_images, run_ort, torch_outputs

REPO = Path(__file__).resolve().parents[2]
NARROW = ["--width", "0.125", "--input-size", "192", "--num-classes", "3"]


def _run_script(*args: str) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo root WITHOUT PYTHONPATH: the scripts must find the
    project themselves."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_random_init_script_writes_untrained_ir_that_openvino_loads(tmp_path):
    import openvino as ov

    from padet_sdk.model_file import metadata_from_ov_model, read_metadata

    out = tmp_path / "padet_vgg384.xml"
    res = _run_script("export/to_openvino.py", "--preset", "vgg16_384", "--random-init", *NARROW, "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert "UNTRAINED" in res.stderr
    model = ov.Core().read_model(str(out))
    assert model.input(0).get_partial_shape()[0].is_dynamic
    assert metadata_from_ov_model(model).trained is False
    meta = read_metadata(out)
    assert meta.trained is False and meta.preset == "vgg16_384" and meta.precision == "fp32"


def test_missing_checkpoint_is_a_clear_error_with_nonzero_exit(tmp_path):
    res = _run_script("-m", "export.to_onnx", "--checkpoint", str(tmp_path / "nope.pt"))
    assert res.returncode == 2
    assert "checkpoint not found" in res.stderr and "nope.pt" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("script", ["export/to_onnx.py", "export/to_openvino.py", "export/quantize.py"])
def test_scripts_explain_themselves_with_help(script):
    res = _run_script(script, "--help")
    assert res.returncode == 0, res.stderr
    assert "--checkpoint" in res.stdout and "--random-init" in res.stdout and "Examples" in res.stdout


def test_checkpoint_round_trip_through_to_onnx(tmp_path):
    from export import to_onnx
    from export.checkpoint import make_checkpoint
    from padet_sdk.model_file import read_metadata

    model = make_narrow_model(seed=4)
    ckpt = tmp_path / "best.pt"
    torch.save(make_checkpoint(model, CLASS_NAMES, epoch=7), ckpt)
    out = tmp_path / "best.onnx"
    assert to_onnx.main(["--checkpoint", str(ckpt), "--output", str(out)]) == 0
    meta = read_metadata(out)
    assert meta.trained is True and meta.class_names == tuple(CLASS_NAMES) and meta.model_version == "epoch7"
    x = random_images(2, seed=9)
    assert max_abs_diff(run_ort(out, x), torch_outputs(model, x)) <= 1e-4  # test_export_parity.TOL; 9.5e-7 measured


def test_load_checkpoint_rejects_files_that_are_not_padet_checkpoints(tmp_path):
    from export.checkpoint import CheckpointError, load_checkpoint, make_checkpoint

    model = make_narrow_model()
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a PADet checkpoint"):
        load_checkpoint(tmp_path / "bare.pt")
    no_names = make_checkpoint(model, CLASS_NAMES)
    del no_names["class_names"]
    torch.save(no_names, tmp_path / "no_names.pt")
    with pytest.raises(CheckpointError, match="no 'class_names'"):
        load_checkpoint(tmp_path / "no_names.pt")
    wrong = make_checkpoint(model, CLASS_NAMES)
    wrong["config"] = {**wrong["config"], "width": 0.25}
    torch.save(wrong, tmp_path / "wrong_width.pt")
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(tmp_path / "wrong_width.pt")
    wrong = make_checkpoint(model, CLASS_NAMES)
    wrong["config"] = {**wrong["config"], "fam": "sideways"}
    torch.save(wrong, tmp_path / "bad_config.pt")
    with pytest.raises(CheckpointError, match="invalid PADet config"):
        load_checkpoint(tmp_path / "bad_config.pt")
    torch.save(make_checkpoint(model, ["only-one"]), tmp_path / "names.pt")
    with pytest.raises(CheckpointError, match="1 class names"):
        load_checkpoint(tmp_path / "names.pt")


def test_checkpoint_written_by_training_exports(tmp_path):
    """The real format: training.checkpoint.save_checkpoint (format key, epoch, extra entries)."""
    from export.checkpoint import load_checkpoint
    from training.checkpoint import save_checkpoint

    model = make_narrow_model(seed=2)
    state = {"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": CLASS_NAMES, "epoch": 3,
             "best_ap50": 0.5}
    last = save_checkpoint(state, tmp_path)
    loaded, names, info = load_checkpoint(last)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert names == CLASS_NAMES and not loaded.training
    assert info["epoch"] == 3 and info["best_ap50"] == 0.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "vgg16_384", "--random-init", "--opset", "17"], "unsupported opset 17"),
        (["--preset", "vgg16_384"], "add --random-init"),
        ([], "no model given"),
        (["--preset", "vgg16_384", "--random-init", "--input-size", "100"], "invalid model options"),
        (["--preset", "vgg16_384", "--random-init", *NARROW, "--output", "x.xml"], "must end in .onnx"),
    ],
)
def test_to_onnx_usage_errors_exit_2_with_message(argv, message, capsys):
    from export import to_onnx

    assert to_onnx.main(argv) == 2
    assert message in capsys.readouterr().err


def test_quantize_without_images_is_a_clear_error(exported, tmp_path, capsys):
    from export import quantize

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    argv = ["--model", str(exported["xml"]), "--images", str(tmp_path / "empty")]
    assert quantize.main(argv) == 2
    assert "no images" in capsys.readouterr().err
    assert quantize.main(["--model", str(exported["xml"]), "--images", str(tmp_path / "missing")]) == 2
    assert "calibration folder not found" in capsys.readouterr().err


def test_default_output_name_comes_from_the_preset():
    from export.cli_common import default_stem
    from training.config import PRESETS

    assert default_stem(PRESETS["vgg16_384"]) == "padet_vgg384"
    assert default_stem(PRESETS["resnet101_512"]) == "padet_resnet512"
