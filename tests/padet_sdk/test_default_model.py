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
