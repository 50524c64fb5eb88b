"""--track, --zone, --line, --save-* and the progress bar, in padet detect and the webcam example,
as a new user runs them: the embedded model on the demo clip."""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import demo_clip
from padet_sdk.cli import main
from padet_sdk.cli_args import point_list

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return demo_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=FRAMES, size=(320, 240), seed=1)


def test_webcam_example_tracks_a_file_into_a_csv(clip, tmp_path):
    """The command of the README, as written there."""
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "webcam.py"), "--source", str(clip), "--track", "--save-csv", str(out),
                        "--no-show"], capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"{FRAMES} frames" in r.stdout and f"wrote {out}" in r.stderr
    assert f"{FRAMES}/{FRAMES}" in r.stderr  # the progress bar of a file reached its end
    rows = list(csv.DictReader(out.open(newline="")))
    assert {int(row["frame"]) for row in rows} == set(range(FRAMES))
    ids = {row["track_id"] for row in rows if row["class_id"]}
    assert ids and "" not in ids and len(ids) < FRAMES  # every box tracked, identities persist


def test_detect_writes_every_result_file_and_prints_the_counts(clip, tmp_path, capsys):
    paths = {"json": tmp_path / "r.jsonl", "coco": tmp_path / "r.json", "txt": tmp_path / "labels", "csv": tmp_path / "r.csv"}
    code = main(["detect", str(clip), "--track", "--zone", "0,0 160,0 160,240 0,240", "--line", "160,240 160,0",
                 "--classes", "0", "1", "2", "3", "4", "5", *[a for k, p in paths.items() for a in (f"--save-{k}", str(p))]])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "zone1: " in out and "line1: in " in out
    recs = [json.loads(line) for line in paths["json"].read_text().splitlines()]
    assert len(recs) == FRAMES and set(recs[-1]["zones"]) == {"zone1", "line1"}
    assert f"zone1: {recs[-1]['zones']['zone1']['inside']} inside" in out
    assert f"line1: in {recs[-1]['zones']['line1']['in']}, out {recs[-1]['zones']['line1']['out']}" in out
    coco = json.loads(paths["coco"].read_text())
    assert len(coco) == sum(len(r["detections"]) for r in recs) and {c["image_id"] for c in coco} <= set(range(1, FRAMES + 1))
    assert len(list(paths["txt"].iterdir())) == FRAMES
    assert next(csv.reader(paths["csv"].open()))[-3:] == ["zone1.inside", "line1.in", "line1.out"]


def test_classes_keep_only_those(clip, tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["detect", str(clip), "--classes", "ring", "--save-json", str(out), "--max-frames", "5"]) == 0
    names = {d["class_name"] for line in out.read_text().splitlines() for d in json.loads(line)["detections"]}
    assert names == {"ring"}


@pytest.mark.parametrize("argv, message", [
    (["--line", "1,1 2,2"], "--line counts tracks: add --track"),
    (["--track", "--zone", "1,1 2,2"], "--zone needs at least 3 points"),
    (["--track", "--line", "1,1 2,2 3,3"], "--line takes 2 points"),
    (["--save-csv", "{clip}"], "refusing to overwrite the input"),
])  # fmt: skip
def test_bad_analytics_flags_are_one_line_usage_errors(clip, tmp_path, capsys, argv, message):
    argv = [a.format(clip=clip, tmp=tmp_path) for a in argv]
    assert main(["detect", str(clip), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_several_sources_get_a_tracker_zones_and_result_files_each(clip, tmp_path, capsys):
    """Two sources on one detector: --save-* files are per source (``_<stem>``), each with the
    frames of its own source and its own track identities; the counts are printed per source."""
    other = demo_clip(tmp_path / "other.mp4", frames=20, size=(320, 240), seed=2)
    code = main(["detect", str(clip), str(other), "--track", "--line", "160,240 160,0",
                 "--save-csv", str(tmp_path / "r.csv"), "--save-json", str(tmp_path / "r.jsonl")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert f"line1 [{clip}]: in " in out and f"line1 [{other}]: in " in out
    for stem, n in (("clip", FRAMES), ("other", 20)):
        rows = list(csv.DictReader((tmp_path / f"r_{stem}.csv").open(newline="")))
        assert sorted({int(r["frame"]) for r in rows}) == list(range(n))
        ids = [int(r["track_id"]) for r in rows if r["track_id"]]
        assert ids and min(ids) == 1  # each source's tracker numbers its own objects from 1
        recs = [json.loads(x) for x in (tmp_path / f"r_{stem}.jsonl").read_text().splitlines()]
        assert [r["frame"] for r in recs] == list(range(n)) and "line1" in recs[-1]["zones"]


def test_tracking_an_image_is_refused(tmp_path, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 90, np.uint8))
    assert main(["detect", str(img), "--track"]) == 2
    assert "not images" in capsys.readouterr().err


def test_point_list():
    assert point_list("1,2 3.5,4") == [(1.0, 2.0), (3.5, 4.0)]
    for bad in ("1,2,3", "x,1", "", "1,nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            point_list(bad)
