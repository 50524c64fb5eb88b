"""The ``padet`` command: runtime subcommands on a real exported model, delegation to training
and export with their own --help."""
import json

import cv2
import pytest

from padet_sdk.cli import main
from sdk_helpers import make_frame, model_and_files, write_video


def test_padet_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("detect", "benchmark", "train", "eval", "export", "quantize", "stats", "experiments"):
        assert cmd in out


@pytest.mark.parametrize("cmd", ["train", "eval", "stats", "experiments", "export", "quantize"])
def test_delegated_subcommands_show_their_own_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_detect_on_an_image_writes_annotated_image_and_json(tmp_path, capsys):
    _, files = model_and_files()
    img = tmp_path / "frame.png"
    cv2.imwrite(str(img), make_frame(240, 320, seed=1))
    out = tmp_path / "annotated.png"
    assert main(["detect", str(img), "--model", str(files["xml"]), "--conf", "0.4", "--output", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (240, 320, 3)
    dets = json.loads(out.with_suffix(".json").read_text())
    assert dets["image_size"] == {"height": 240, "width": 320}
    assert len(dets["detections"]) > 0


def test_detect_on_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "x.png"), "--model", str(tmp_path / "missing.xml")]) == 2
    assert "missing.xml" in capsys.readouterr().err


def test_benchmark_prints_one_row_per_engine(capsys):
    _, files = model_and_files()
    assert main(["benchmark", str(files["xml"]), str(files["onnx"]), "--runs", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("narrow.")]
    assert len(rows) == 3  # IR on OpenVINO; ONNX on onnxruntime and on OpenVINO
    assert "1.00x" in rows[0]


def _other_path_to(path, how, tmp_path):
    """``path`` itself, a symlink to it or a hard link to it (another name, one file)."""
    if how == "same":
        return path
    alias = tmp_path / "alias" / f"other{path.suffix}"
    alias.parent.mkdir(exist_ok=True)
    (alias.symlink_to if how == "symlink" else alias.hardlink_to)(path)
    return alias


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("kind", ["video", "image"])
def test_detect_refuses_to_overwrite_its_input(tmp_path, capsys, kind, how):
    """Was: `padet detect c.mp4 --output c.mp4` left 9 of 300 frames, exit 0."""
    if kind == "video":
        src = write_video(tmp_path / "c.mp4", 10)
    else:
        src = tmp_path / "c.png"
        cv2.imwrite(str(src), make_frame(120, 160, seed=1))
    before = src.read_bytes()
    out = _other_path_to(src, how, tmp_path)
    assert main(["detect", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing to overwrite the input" in err, err
    assert src.read_bytes() == before
    assert not src.with_suffix(".json").exists() and not src.with_suffix(".jsonl").exists()


def _image(tmp_path):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), make_frame(120, 160, seed=2))
    return img


def _one_line_error(capsys, *must_contain):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert all(m in last for m in must_contain), err
    return last


@pytest.mark.parametrize("conf", ["2", "-0.5", "nan", "inf", "high"])
def test_detect_refuses_a_conf_outside_0_1_without_a_traceback(tmp_path, capsys, conf):
    with pytest.raises(SystemExit) as e:
        main(["detect", str(_image(tmp_path)), "--conf", conf])
    assert e.value.code == 2
    _one_line_error(capsys, "--conf", conf)


def test_detect_creates_a_missing_output_folder(tmp_path, capsys):
    out = tmp_path / "new" / "sub" / "o.png"
    assert main(["detect", str(_image(tmp_path)), "--output", str(out)]) == 0
    assert cv2.imread(str(out)) is not None and out.with_suffix(".json").is_file()
    video = write_video(tmp_path / "c.mp4", 4)
    vout = tmp_path / "v" / "new" / "o.mp4"
    assert main(["detect", str(video), "--output", str(vout)]) == 0
    assert vout.is_file() and vout.with_suffix(".jsonl").is_file()


@pytest.mark.parametrize("kind", ["image", "video"])
def test_detect_says_when_the_output_folder_cannot_be_created(tmp_path, capsys, kind):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    src = _image(tmp_path) if kind == "image" else write_video(tmp_path / "c.mp4", 4)
    out = blocker / "sub" / ("o.png" if kind == "image" else "o.mp4")
    assert main(["detect", str(src), "--output", str(out)]) == 2
    _one_line_error(capsys, "cannot create the output folder", "is a file, not a folder")


def test_detect_refuses_a_video_output_for_an_image(tmp_path, capsys):
    assert main(["detect", str(_image(tmp_path)), "--output", str(tmp_path / "o.mp4")]) == 2
    _one_line_error(capsys, "image file", "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_detect_reports_an_image_that_cannot_be_written(tmp_path, capsys):
    out = tmp_path / "taken.png"
    out.mkdir()  # a folder where the image should go: cv2.imwrite fails
    assert main(["detect", str(_image(tmp_path)), "--output", str(out)]) == 2
    _one_line_error(capsys, "cannot write image", "taken.png")
