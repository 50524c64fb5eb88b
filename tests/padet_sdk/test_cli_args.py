"""The shared command-line flags: one definition, the same parse everywhere."""
import argparse

import pytest

from padet_sdk.cli_args import (
    GROUPS, add_common_args, annotated_path, collect_sources, detector_kwargs, source_stem, stream_kwargs,
)


def _parse(argv):
    return add_common_args(argparse.ArgumentParser(exit_on_error=False)).parse_args(argv)


def test_flags_parse_into_detector_arguments():
    args = _parse(["--conf", "0.3", "--iou", "0.5", "--nms", "hard", "--max-det", "7", "--threads", "2", "--device", "GPU"])
    assert detector_kwargs(args) == {"device": "GPU", "backend": "auto", "num_threads": 2, "conf": 0.3, "iou": 0.5,
                                     "nms": "hard", "max_det": 7, "classes": None}  # fmt: skip
    assert detector_kwargs(_parse(["--classes", "bar", "0"]))["classes"] == ["bar", 0]
    assert stream_kwargs(_parse(["--no-drop", "--no-reconnect", "--read-timeout", "2.5", "--max-frames", "9"])) == {
        "max_frames": 9, "live": False, "read_timeout": 2.5, "reconnect": False}
    assert _parse([]).show is False and _parse(["--show"]).show is True and _parse(["--show", "--no-show"]).show is False


@pytest.mark.parametrize("argv", [["--conf", "1.5"], ["--iou", "nan"], ["--max-det", "0"], ["--nms", "soft"], ["--read-timeout", "-1"]])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        add_common_args(argparse.ArgumentParser()).parse_args(argv)
    assert e.value.code == 2


def test_sources_come_from_positionals_flags_and_a_file(tmp_path):
    listing = tmp_path / "cams.txt"
    listing.write_text("# lobby\nrtsp://10.0.0.5/s1\n\n  clip.mp4  # a file\n")
    args = _parse(["--source", "0", "-s", "frames/", "--sources-file", str(listing)])
    assert collect_sources(args, ["a.mp4"]) == ["a.mp4", "0", "frames/", "rtsp://10.0.0.5/s1", "clip.mp4"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no sources"):
        collect_sources(_parse(["--sources-file", str(tmp_path / "empty.txt")]))


def test_classes_reach_the_detector_by_name_or_id():
    from padet_sdk import Detector

    det = Detector(**{**detector_kwargs(_parse(["--classes", "1", "circle"])), "backend": "auto"})
    try:
        assert det.classes == (1, det.class_names.index("circle"))
    finally:
        det.close()
    with pytest.raises(ValueError, match="cat"):
        Detector(classes=["cat"])


def test_output_naming_is_one_rule(tmp_path):
    assert annotated_path("clip.mp4", None, suffix=".mp4") is None
    assert annotated_path("clip.mp4", str(tmp_path / "o.mp4"), suffix=".mp4") == tmp_path / "o.mp4"
    assert annotated_path("d/clip.mp4", str(tmp_path), suffix=".mp4") == tmp_path / "clip_det.mp4"
    assert annotated_path("0", str(tmp_path / "o.mp4"), suffix=".mp4", several=True) == tmp_path / "o.mp4" / "camera0_det.mp4"
    assert source_stem("rtsp://user:pw@10.0.0.5/stream1") == "10_0_0_5_stream1"


def test_a_new_group_reaches_every_command():
    def add_extra(p):
        p.add_argument("--extra-flag", action="store_true")

    GROUPS.append(add_extra)
    try:
        assert _parse(["--extra-flag"]).extra_flag is True
    finally:
        GROUPS.remove(add_extra)
