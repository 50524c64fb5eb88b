"""An engine added from outside the SDK: a Backend subclass plus one register_backend line is
all that Detector, Detector.for_video and stream() need.

The fake engine reads a metadata JSON file (the embedded model's) and "detects" exactly one
object per frame: the anchor picked by the frame's mean brightness, with zero deltas, so the
box is that anchor. Brighter frames pick later anchors, which makes frame order visible in the
results. Darker frames also take longer to infer, so in-flight inferences finish out of order.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from padet_sdk import Detector, ModelLoadError, stream
from padet_sdk.backends import Backend, EngineOptions, backend_names, register_backend, unregister_backend
from padet_sdk.metadata import ModelMetadata
from padet_sdk.model_file import DEFAULT_MODEL, read_metadata

pytestmark = pytest.mark.timeout(120)

GRAYS = (20, 60, 100, 140, 180, 220)  # one solid frame per value, darkest first
SCORE = 0.9


class FakeBackend(Backend):
    """Synthetic outputs with the shapes the metadata implies: (B, N) apm scores, (B, N, 4)
    deltas, (B, N, C + 1) class probabilities; one valid anchor per image."""

    thread_name_prefix = "padet-fake"

    def __init__(self, path: Path, options: EngineOptions) -> None:
        super().__init__(path, options)
        self.metadata = ModelMetadata.from_json(path.read_text())
        self.static_batch = None
        self.num_requests = options.num_requests or 2
        self.device = options.device
        m = self.metadata
        mean, std = np.array(m.mean), np.array(m.std)
        self._black, self._white = float(np.mean(-mean / std)), float(np.mean((1 - mean) / std))

    def brightness(self, image_blob: np.ndarray) -> float:
        """0 for a black frame, 1 for a white one (undoes the normalisation of the blob)."""
        return (float(image_blob.mean()) - self._black) / (self._white - self._black)

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        m = self.metadata
        b, n, c = len(blob), m.num_anchors, m.num_classes
        out = {
            "apm_scores": np.zeros((b, n), np.float32),
            "apm_deltas": np.zeros((b, n, 4), np.float32),
            "cls_scores": np.zeros((b, n, c + 1), np.float32),
            "det_deltas": np.zeros((b, n, 4), np.float32),
        }
        out["cls_scores"][..., 0] = 1.0  # background everywhere ...
        for i in range(b):
            t = self.brightness(blob[i])
            a = int(np.clip(t, 0.0, 1.0) * (n - 1))
            out["apm_scores"][i, a] = 1.0  # ... except one positive anchor
            out["cls_scores"][i, a] = 0.0
            out["cls_scores"][i, a, 0] = 1.0 - SCORE
            out["cls_scores"][i, a, 1 + a % c] = SCORE
            time.sleep(0.03 * (1.0 - t))  # darker = slower: results complete out of order
        return [out[k] for k in m.outputs]

    @classmethod
    def video_tuning(cls, cores: int) -> dict:
        return {"num_requests": 3}


@pytest.fixture()
def fake_model(tmp_path) -> Path:
    register_backend("fake", FakeBackend, suffixes=(".fake",))
    path = tmp_path / "shapes.fake"
    path.write_text(read_metadata(DEFAULT_MODEL).to_json())
    yield path
    unregister_backend("fake")


def _frames() -> list[np.ndarray]:
    return [np.full((120, 160, 3), g, np.uint8) for g in GRAYS]


def _check(dets, frame: np.ndarray, names: tuple[str, ...]) -> int:
    """The one detection of ``frame``: inside the frame, the fake's score; returns its anchor."""
    h, w = frame.shape[:2]
    assert len(dets) == 1 and dets.image_size == (h, w)
    box = dets.boxes[0]
    assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, box
    assert dets.scores[0] == pytest.approx(SCORE, abs=1e-6)  # float32 0.9 is 2.4e-8 off
    assert dets[0].class_name == names[int(dets.anchor_ids[0]) % len(names)]
    return int(dets.anchor_ids[0])


def test_a_registered_engine_is_picked_by_suffix_and_detects(fake_model):
    assert "fake" in backend_names()
    det = Detector(fake_model)  # backend="auto": the only engine that reads .fake
    assert det.backend == "fake" and isinstance(det._backend, FakeBackend)
    assert det.class_names == read_metadata(DEFAULT_MODEL).class_names
    frames = _frames()
    anchors = [_check(det(f), f, det.class_names) for f in frames]
    assert anchors == sorted(anchors) and len(set(anchors)) == len(anchors)  # brighter → later anchor
    batch = det(frames[:3])
    assert [_check(d, f, det.class_names) for d, f in zip(batch, frames)] == anchors[:3]
    np.testing.assert_array_equal(det.submit(frames[4]).result(timeout=10).boxes, det(frames[4]).boxes)
    det.close()


def test_for_video_takes_the_engines_tuning_and_stream_keeps_frame_order(fake_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = _frames()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"f{i}.png"), f)
    det = Detector.for_video(fake_model)
    assert det.for_video_setup and det.num_requests == 3
    assert Detector.for_video(fake_model, num_requests=5).num_requests == 5  # explicit values win
    out = tmp_path / "annotated.avi"
    with stream(det, folder, output=out) as results:
        got = list(results)
    assert [r.index for r in got] == list(range(len(frames)))
    anchors = [_check(r.detections, f, det.class_names) for r, f in zip(got, frames)]
    assert anchors == [int(det(f).anchor_ids[0]) for f in frames]
    assert anchors == sorted(anchors) and len(set(anchors)) == len(anchors)
    assert results.stats.frames == len(frames) and results.stats.end_reason == "end"
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == len(frames)
    det.close()


def test_registry_refuses_what_it_cannot_run(fake_model):
    with pytest.raises(ModelLoadError, match="onnxruntime cannot read .fake files"):
        Detector(fake_model, backend="onnxruntime")
    with pytest.raises(ModelLoadError, match="fake cannot read OpenVINO IR"):
        Detector(DEFAULT_MODEL, backend="fake")
    with pytest.raises(TypeError, match="Backend subclass"):
        register_backend("bogus", object, suffixes=(".x",))  # type: ignore[arg-type]
    unregister_backend("fake")
    assert "fake" not in backend_names()
    with pytest.raises(ModelLoadError, match="unsupported model file type '.fake'"):
        Detector(fake_model)
    with pytest.raises(ValueError, match="backend must be one of"):
        Detector(fake_model, backend="fake")
