"""The metadata document: format 2 (one nested "postprocess" object) and format 1 files, among
them the embedded demo model, which still load."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import padet_sdk
from padet_sdk.metadata import FORMAT_VERSION, METADATA_KEY, MetadataError, ModelMetadata
from padet_sdk.model_file import onnx_metadata_props, read_metadata
from padet_sdk.options import PostprocessOptions

MODELS = Path(padet_sdk.__file__).parent / "models"
EMBEDDED = {"xml": MODELS / "padet_shapes.xml", "onnx": MODELS / "padet_shapes.onnx"}

#: A complete format-1 document, with every post-processing value off its default.
V1 = {
    "format_version": 1,
    "class_names": ["a", "b"],
    "input_size": 96,
    "pixel_order": "RGB",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "feature_sizes": [12, 6, 3, 2, 1, 1],
    "anchor_scales": [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
    "anchor_extra_ratios": [[2.0, 0.5, 3.0, 1 / 3]] * 4 + [[2.0, 0.5]] * 2,
    "variances": [0.1, 0.2],
    "outputs": ["apm_scores", "apm_deltas", "cls_scores", "det_deltas"],
    "theta": 0.02,
    "conf_threshold": 0.05,
    "nms_method": "gaussian",
    "nms_iou": 0.45,
    "nms_sigma": 0.6,
    "nms_score_threshold": 0.002,
    "pre_nms_top_k": 500,
    "max_det": 100,
    "preset": "custom",
    "model_version": "7",
    "precision": "fp32",
    "trained": True,
}
V1_OPTIONS = PostprocessOptions(
    theta=0.02, conf=0.05, nms="soft-gaussian", iou=0.45, sigma=0.6, nms_floor=0.002, pre_nms_top_k=500, max_det=100
)


def _raw_document(path) -> dict:
    """The JSON text stored in the file, parsed (not through ModelMetadata)."""
    if path.suffix == ".onnx":
        return json.loads(onnx_metadata_props(path)[METADATA_KEY])
    return json.loads(ET.parse(path).getroot().find(f"rt_info/{METADATA_KEY}").get("value"))


def test_format_2_nests_the_options_and_round_trips():
    meta = ModelMetadata.from_json(json.dumps(V1))
    doc = json.loads(meta.to_json())
    assert FORMAT_VERSION == doc["format_version"] == 2
    assert doc["postprocess"] == V1_OPTIONS.to_dict()
    assert not {"theta", "conf_threshold", "nms_method", "nms_iou", "max_det"} & doc.keys()
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_a_format_1_document_loads_into_the_current_format():
    meta = ModelMetadata.from_json(json.dumps(V1))
    assert meta.postprocess == V1_OPTIONS
    assert meta.format_version == FORMAT_VERSION  # re-written files (e.g. by quantize.py) are format 2
    assert (meta.class_names, meta.input_size, meta.model_version) == (("a", "b"), 96, "7")
    assert meta.num_anchors == len(meta.anchors())


@pytest.mark.parametrize("kind", ["xml", "onnx"])
def test_the_embedded_model_files_load_in_the_current_format(kind):
    """The embedded model was rebuilt in format 2 (#17, calibrated conf); format 1 documents are
    covered by the V1 tests in this file."""
    raw = _raw_document(EMBEDDED[kind])
    assert raw["format_version"] == 2
    meta = read_metadata(EMBEDDED[kind])
    assert meta.postprocess.conf == raw["postprocess"]["conf"] > 0.01  # the calibrated threshold
    assert meta.class_names == tuple(raw["class_names"]) and meta.input_size == raw["input_size"]
    assert ModelMetadata.from_json(meta.to_json()) == meta


@pytest.mark.parametrize("version", [None, 0, 3, "2"])
def test_unknown_format_versions_are_refused(version):
    doc = {**V1, "format_version": version}
    with pytest.raises(MetadataError, match="reads formats 1, 2"):
        ModelMetadata.from_json(json.dumps(doc))


@pytest.mark.parametrize(
    "postprocess, field",
    [({"conf": 3.0}, "conf"), ({"nms": "linear"}, "nms"), ({"max_det": 0}, "max_det"), ([1, 2], "")],
)
def test_unusable_options_in_a_file_are_a_metadata_error_naming_the_field(postprocess, field):
    doc = json.loads(ModelMetadata.from_json(json.dumps(V1)).to_json())
    doc["postprocess"] = postprocess
    with pytest.raises(MetadataError, match=f"post-processing options: {field}"):
        ModelMetadata.from_json(json.dumps(doc))


def test_unknown_keys_are_ignored_at_both_levels():
    """A newer exporter may add fields; an older SDK keeps reading what it knows."""
    doc = json.loads(ModelMetadata.from_json(json.dumps(V1)).to_json())
    doc["future"] = 1
    doc["postprocess"]["future_option"] = 2
    assert ModelMetadata.from_json(json.dumps(doc)).postprocess == V1_OPTIONS
