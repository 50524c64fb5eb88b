"""Faults a deployed detector meets: each gives a clear error or a clean end, never a hang
(every test here has a timeout)."""
from __future__ import annotations

import logging
import shutil

import cv2
import pytest

from padet_sdk import Detector, ModelLoadError, SourceError, stream
from sdk_helpers import make_frame, model_and_files, write_video

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def det():
    _, files = model_and_files()
    d = Detector(files["xml"])
    yield d
    d.close()


def test_video_truncated_mid_stream_ends_cleanly_with_the_frames_before_the_cut(det, tmp_path):
    # MJPG in AVI: frames are independent, so a file cut in the middle still plays up to the cut
    full = tmp_path / "full.avi"
    w = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for i in range(40):
        w.write(make_frame(120, 160, seed=i % 5))
    w.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    results = stream(det, cut)
    with results:
        indices = [r.index for r in results]
    assert 5 < len(indices) < 40
    assert indices == list(range(len(indices)))


def test_mp4_cut_before_its_index_is_a_clear_source_error(det, tmp_path):
    # mp4v in .mp4 writes its index (moov atom) last: a cut file cannot be opened at all
    full = write_video(tmp_path / "full.mp4", n=20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(SourceError, match="cut.mp4"):
        stream(det, cut)


def test_unreadable_frame_in_an_image_folder_is_skipped_with_a_warning(det, tmp_path, caplog):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), make_frame(120, 160, seed=i))
    (tmp_path / "001b.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING):
        results = stream(det, tmp_path)
        with results:
            frames = [r.frame.shape for r in results]
    assert frames == [(120, 160, 3)] * 3
    assert "001b.png" in caplog.text


def test_model_file_truncated_on_disk_is_a_model_load_error(tmp_path):
    _, files = model_and_files()
    xml = shutil.copy(files["xml"], tmp_path / "m.xml")
    bin_ = files["xml"].with_suffix(".bin").read_bytes()
    (tmp_path / "m.bin").write_bytes(bin_[: len(bin_) // 3])
    with pytest.raises(ModelLoadError, match="m.xml"):
        Detector(xml)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(files["onnx"].read_bytes()[:100_000])
    with pytest.raises(ModelLoadError, match="m.onnx"):
        Detector(onnx)


def test_checkpoint_from_another_config_is_refused_by_the_exporter(tmp_path):
    import torch

    from export.checkpoint import CheckpointError, load_checkpoint, make_checkpoint
    from training import build_model

    a = build_model("vgg16_384", 3, width=0.125, input_size=128)
    b = build_model("vgg16_384", 3, width=0.25, input_size=128)
    ckpt = make_checkpoint(b, ["a", "b", "c"])
    ckpt["config"] = a.cfg.to_dict()  # weights of one network under the config of another
    torch.save(ckpt, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(tmp_path / "mixed.pth")
