"""Model metadata is validated completely at load: a real exported file whose metadata is
rewritten loads completely or fails at once with a documented error naming the file and the
field, never later (a ValueError per frame, an IndexError in draw, NaN boxes, 0 detections, a
ZeroDivisionError)."""
from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import padet_sdk
from padet_sdk import Detector, MissingMetadataError, ModelLoadError
from padet_sdk.metadata import METADATA_KEY, ModelMetadata
from padet_sdk.model_file import read_metadata

MODELS = Path(padet_sdk.__file__).parent / "models"
ONNX, XML = MODELS / "padet_shapes.onnx", MODELS / "padet_shapes.xml"
FRAME = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def _document() -> dict:
    """The embedded model's metadata in the current format, as a JSON object."""
    return json.loads(read_metadata(ONNX).to_json())


def _rewrite(tmp_path: Path, doc: dict | str, kind: str = "onnx") -> Path:
    """A copy of the embedded model with ``doc`` as its PADet metadata (written verbatim)."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    if kind == "onnx":
        import onnx

        model = onnx.load(str(ONNX))
        for p in model.metadata_props:
            if p.key == METADATA_KEY:
                p.value = text
        out = tmp_path / "model.onnx"
        onnx.save(model, str(out))
        return out
    tree = ET.parse(XML)
    tree.getroot().find(f"rt_info/{METADATA_KEY}").set("value", text)
    out = tmp_path / "model.xml"
    tree.write(out)
    shutil.copy(XML.with_suffix(".bin"), out.with_suffix(".bin"))
    return out


def _refused(path: Path, field: str, kind_of_error=MissingMetadataError) -> str:
    with pytest.raises(kind_of_error) as e:
        Detector(path)
    msg = str(e.value)
    assert str(path) in msg and field in msg, msg
    return msg


NAMED_CASES = {
    # field → (mutation of the document, text the error must contain)
    "anchors_vs_outputs": (lambda d: d.update(feature_sizes=[24, 12, 6, 3, 2, 2]), "anchors"),
    "too_few_classes": (lambda d: d.update(class_names=d["class_names"][:3]), "class_names"),
    "too_many_classes": (lambda d: d.update(class_names=d["class_names"] + ["extra"]), "class_names"),
    "class_names_string": (lambda d: d.update(class_names="circle"), "class_names"),
    "class_names_numbers": (lambda d: d.update(class_names=[1, 2, 3, 4, 5, 6]), "class_names"),
    "nan_variance": (lambda d: d.update(variances=[math.nan, 0.2]), "variances"),
    "inf_variance": (lambda d: d.update(variances=[0.1, math.inf]), "variances"),
    "nan_mean": (lambda d: d.update(mean=[0.5, math.nan, 0.5]), "mean"),
    "nan_std": (lambda d: d.update(std=[0.2, 0.2, math.nan]), "std"),
    "zero_std": (lambda d: d.update(std=[0.2, 0.0, 0.2]), "std"),
    "nan_conf": (lambda d: d["postprocess"].update(conf=math.nan), "conf"),
    "nan_theta": (lambda d: d["postprocess"].update(theta=math.nan), "theta"),
    "inf_iou": (lambda d: d["postprocess"].update(iou=math.inf), "iou"),
    "zero_input_size": (lambda d: d.update(input_size=0), "input_size"),
    "negative_input_size": (lambda d: d.update(input_size=-192), "input_size"),
    "float_input_size": (lambda d: d.update(input_size=192.5), "input_size"),
}


@pytest.mark.parametrize("kind", ["onnx", "xml"])
@pytest.mark.parametrize("case", sorted(NAMED_CASES))
def test_inconsistent_metadata_is_refused_at_load_naming_file_and_field(tmp_path, case, kind):
    mutate, field = NAMED_CASES[case]
    doc = _document()
    mutate(doc)
    _refused(_rewrite(tmp_path, doc, kind), field)


def test_the_unmodified_copy_loads_and_detects(tmp_path):
    """The rewrite itself is harmless (so the refusals above are the mutations')."""
    for kind in ("onnx", "xml"):
        # conf 0.01: the embedded model's calibrated default (0.61) finds nothing on a noise frame
        det = Detector(_rewrite(tmp_path, _document(), kind), conf=0.01)
        dets = det(FRAME)
        assert len(dets) > 0 and np.isfinite(dets.boxes).all()
        det.close()


def _mutations():
    """(label, document) for every field: removed, wrong type, NaN, inf, out of range."""
    base = _document()
    bad_values = {"str": "x", "dict": {"a": 1}, "nan": math.nan, "inf": math.inf, "neg": -1, "zero": 0,
                  "null": None, "bool": True, "empty_list": [], "nested_nan": [math.nan] * 3}  # fmt: skip
    for key in sorted(base):
        if key == "format_version":
            continue
        if key == "postprocess":
            for sub in sorted(base["postprocess"]):
                for label, value in bad_values.items():
                    doc = _document()
                    doc["postprocess"][sub] = value
                    yield f"postprocess.{sub}={label}", doc
            continue
        doc = _document()
        del doc[key]
        yield f"{key} removed", doc
        for label, value in bad_values.items():
            doc = _document()
            doc[key] = value
            yield f"{key}={label}", doc


def test_fuzzed_metadata_fails_at_load_or_works(tmp_path):
    """Each field removed, of the wrong type, NaN, inf or out of range: the load raises a
    documented error (ModelLoadError/MissingMetadataError naming the file), or the model loads
    and detects (finite boxes, class ids in range, drawing and JSON work). Never a later failure."""
    loaded, refused = [], []
    for label, doc in _mutations():
        path = _rewrite(tmp_path, doc)
        try:
            det = Detector(path)
        except ModelLoadError as e:
            assert str(path) in str(e), (label, str(e))
            refused.append(label)
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{label}: undocumented {type(e).__name__} at load: {e}")
        try:
            dets = det(FRAME)
            assert np.isfinite(dets.boxes).all() and np.isfinite(dets.scores).all(), label
            assert all(0 <= c < len(det.class_names) for c in dets.class_ids), label
            dets.draw(FRAME)
            dets.to_json()
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{label}: loaded, then failed: {type(e).__name__}: {e}")
        finally:
            det.close()
        loaded.append(label)
    # fields with defaults may be removed, free-text fields take any string, 0 is a valid
    # threshold; any other bad value never loads
    valid = {"model_version=str", "preset=str", "quant_scheme=str", "trained=bool"} | {
        f"postprocess.{k}=zero" for k in ("conf", "iou", "nms_floor", "theta", "agnostic_iou")
    } | {"postprocess.agnostic_iou=null"}  # None: no class-agnostic suppression (the default)
    assert all(label.endswith("removed") or label in valid for label in loaded), sorted(set(loaded) - valid)
    assert "class_names removed" in refused and "class_names=str" in refused


def test_direct_construction_validates_too():
    doc = read_metadata(ONNX)
    with pytest.raises(ValueError, match="std"):
        ModelMetadata(**{**doc.__dict__, "std": (0.2, 0.0, 0.2)})
