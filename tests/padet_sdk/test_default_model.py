"""The embedded demo model ships inside the package and ``Detector()`` uses it."""
import json

import numpy as np

from padet_sdk import Detector
from padet_sdk.detector import DEFAULT_MODEL
from training.data.synth import CLASS_NAMES


def test_detector_without_a_path_loads_the_embedded_trained_model():
    det = Detector()
    try:
        assert det.metadata.trained and det.metadata.precision == "int8"
        assert tuple(det.class_names) == CLASS_NAMES[:6]
        dets = det(np.full((240, 320, 3), 127, np.uint8))
        assert (dets.scores >= det.postprocess_options.conf).all()
    finally:
        det.close()


def test_embedded_model_files_are_small_and_described_by_their_card():
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    total = sum((DEFAULT_MODEL.parent / f).stat().st_size for f in card["files"])
    assert total < 8 * 2**20
    assert card["recipe"]["seed"] == 0 and card["model_version"].startswith("shapes-seed0")


def test_default_score_threshold_is_the_calibrated_one_and_shows_about_one_box_per_object():
    """The card's best-F1 threshold is the metadata's conf, hence Detector()'s default; on demo
    clip frames that shows about as many boxes as there are objects (at conf 0.01 it was ~100).
    Shown = scoring >= conf: soft-NMS decays the scores of overlapping boxes after the conf
    filter, so lower-scored ones come back too (what the demo draws is >= conf)."""
    from training.data.synth_clip import render_clip_frames

    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    with Detector() as det:
        assert det.postprocess_options.conf == card["default_conf"]["conf"] > 0.05
        counts, objects = [], []
        for t, (frame, boxes, _, crowd) in enumerate(render_clip_frames(60, seed=0)):
            if t % 10 == 0:
                counts.append(int((det(frame).scores >= det.postprocess_options.conf).sum()))
                objects.append(int((~crowd).sum()))
    assert sum(counts) <= 2 * sum(objects), (counts, objects)
    assert sum(counts) >= sum(objects) // 2, (counts, objects)
