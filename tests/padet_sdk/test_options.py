"""PostprocessOptions: defaults, validation naming the field, replace, and the legacy flat names."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from padet_sdk.options import LEGACY_NAMES, NMS_METHODS, PostprocessOptions


def test_defaults_are_the_papers_inference_settings():
    o = PostprocessOptions()
    assert (o.theta, o.conf, o.nms, o.iou, o.sigma, o.nms_floor, o.pre_nms_top_k, o.max_det) == (
        0.01, 0.01, "soft-linear", 0.3, 0.5, 0.001, 1000, 300
    )


def test_frozen_and_replace_returns_a_validated_copy():
    o = PostprocessOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.conf = 0.5  # type: ignore[misc]
    p = o.replace(conf=0.25, nms="hard")
    assert (p.conf, p.nms, o.conf, o.nms) == (0.25, "hard", 0.01, "soft-linear")
    with pytest.raises(ValueError, match="conf"):
        o.replace(conf=2.0)


def test_replace_rejects_unknown_names_listing_the_valid_ones():
    with pytest.raises(TypeError, match=r"\['conf_threshold'\].*'max_det'"):
        PostprocessOptions().replace(conf_threshold=0.2)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"theta": -0.1}, "theta"),
        ({"conf": 1.5}, "conf"),
        ({"conf": math.nan}, "conf"),
        ({"iou": math.inf}, "iou"),
        ({"iou": "0.3"}, "iou"),
        ({"nms_floor": 2.0}, "nms_floor"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": math.inf}, "sigma"),
        ({"nms": "linear"}, "nms"),
        ({"nms": "soft"}, "nms"),
        ({"max_det": 0}, "max_det"),
        ({"max_det": -1}, "max_det"),
        ({"max_det": 2.5}, "max_det"),
        ({"pre_nms_top_k": True}, "pre_nms_top_k"),
        ({"pre_nms_top_k": 0}, "pre_nms_top_k"),
    ],
)
def test_invalid_values_raise_value_error_naming_the_field(change, field):
    with pytest.raises(ValueError, match=rf"^{field} must"):
        PostprocessOptions(**change)


def test_numbers_of_other_types_are_stored_as_python_floats_and_ints():
    o = PostprocessOptions(conf=np.float32(0.5), iou=1, max_det=np.int64(20), pre_nms_top_k=100.0)
    assert type(o.conf) is float and type(o.iou) is float and o.conf == 0.5
    assert type(o.max_det) is int and type(o.pre_nms_top_k) is int and (o.max_det, o.pre_nms_top_k) == (20, 100)
    assert o == PostprocessOptions(conf=0.5, iou=1.0, max_det=20, pre_nms_top_k=100)


def test_dict_round_trip():
    o = PostprocessOptions(conf=0.2, nms="soft-gaussian", sigma=0.3, max_det=10)
    assert PostprocessOptions.from_dict(o.to_dict()) == o
    with pytest.raises(TypeError, match="unknown"):
        PostprocessOptions.from_dict({**o.to_dict(), "extra": 1})


def test_legacy_flat_names_map_to_fields():
    legacy = {
        "theta": 0.02, "conf_threshold": 0.05, "nms_method": "gaussian", "nms_iou": 0.4, "nms_sigma": 0.6,
        "nms_score_threshold": 0.002, "pre_nms_top_k": 500, "max_det": 100, "class_names": ["a"],
    }
    assert PostprocessOptions.from_legacy(legacy) == PostprocessOptions(
        theta=0.02, conf=0.05, nms="soft-gaussian", iou=0.4, sigma=0.6, nms_floor=0.002, pre_nms_top_k=500, max_det=100
    )
    # every field of format 1 has its flat name; agnostic_iou came later (absent: None)
    assert set(LEGACY_NAMES.values()) == {f.name for f in dataclasses.fields(PostprocessOptions)} - {"agnostic_iou"}
    assert {PostprocessOptions.from_legacy({"nms_method": m}).nms for m in ("linear", "gaussian", "hard")} == set(NMS_METHODS)
