"""Reading and writing the PADet metadata of model files, torch-free and without loading graphs.

Where the JSON document (:class:`~padet_sdk.metadata.ModelMetadata`) lives:

- ONNX: ``metadata_props`` entry with key ``"padet"``.
- OpenVINO IR (``.xml``): ``<net><rt_info><padet value="..."/>``, written by
  ``ov_model.set_rt_info(json, "padet")``. On a loaded ``ov.Model`` read it back with
  ``model.get_rt_info("padet").astype(str)`` (see :func:`metadata_from_ov_model`). A model
  read from ONNX by OpenVINO carries the ONNX entry under ``["framework", "padet"]`` instead.

:func:`read_metadata` parses the files directly (a protobuf scan of the ONNX top level, an XML
parse of the IR), so asking a file for its classes costs milliseconds and needs neither
onnx nor openvino.

Where the SDK finds a model (:func:`resolve_model_path`, with :data:`DEFAULT_MODEL` for no path)
and the cheap checks that a file really is IR or ONNX (:func:`check_model_file`) live here too:
they are facts about file formats, the same whichever engine then reads the file.
"""
from __future__ import annotations

import mmap
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, ModelNotFoundError
from .metadata import METADATA_KEY, MetadataError, ModelMetadata

#: The model used by ``Detector()`` without a path (shipped inside the package).
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "padet_shapes.xml"

_ONNX_METADATA_PROPS_FIELD = 14  # ModelProto.metadata_props (repeated StringStringEntryProto)


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MetadataError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: Any, start: int, end: int):
    """Yield (field number, wire type, value) of one protobuf message; LEN values as (a, b) spans."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = None, pos + 8
        elif wt == 5:
            val, pos = None, pos + 4
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = (pos, pos + n), pos + n
        else:
            raise MetadataError(f"not an ONNX file (protobuf wire type {wt})")
        if pos > end:
            raise MetadataError("truncated ONNX file")
        yield num, wt, val


def onnx_metadata_props(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (weights are skipped, not parsed)."""
    with open(path, "rb") as f:
        if Path(path).stat().st_size == 0:
            raise MetadataError(f"{path}: empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            props: dict[str, str] = {}
            for num, wt, val in _fields(buf, 0, len(buf)):
                if num != _ONNX_METADATA_PROPS_FIELD or wt != 2:
                    continue
                entry = {n: bytes(buf[v[0]:v[1]]).decode("utf-8") for n, w, v in _fields(buf, *val) if w == 2}
                props[entry.get(1, "")] = entry.get(2, "")
            return props


def _ir_rt_info_value(path: Path) -> str | None:
    root = ET.parse(path).getroot()
    if root.tag != "net":
        raise MetadataError(f"{path}: not an OpenVINO IR (root element <{root.tag}>)")
    for where in (f"rt_info/{METADATA_KEY}", f"rt_info/framework/{METADATA_KEY}"):
        el = root.find(where)
        if el is not None and el.get("value") is not None:
            return el.get("value")
    return None


def read_metadata(path: str | Path) -> ModelMetadata:
    """The PADet metadata of an ``.onnx`` or OpenVINO ``.xml`` file.

    Raises:
        FileNotFoundError: no such file.
        MetadataError: unknown extension, unreadable file, or no PADet metadata in it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        text = onnx_metadata_props(path).get(METADATA_KEY)
    elif suffix == ".xml":
        try:
            text = _ir_rt_info_value(path)
        except ET.ParseError as e:
            raise MetadataError(f"{path}: not a valid OpenVINO IR XML: {e}") from e
    else:
        raise MetadataError(f"{path}: unsupported model file type {suffix!r} (expected .onnx or .xml)")
    if text is None:
        raise MetadataError(f"{path} has no PADet metadata (key {METADATA_KEY!r}); was it exported by padet?")
    return ModelMetadata.from_json(text)


def metadata_from_ov_model(model: Any) -> ModelMetadata:
    """The metadata of a loaded ``openvino.Model`` (read from IR or from ONNX)."""
    for key in (METADATA_KEY, ["framework", METADATA_KEY]):
        if model.has_rt_info(key):
            return ModelMetadata.from_json(model.get_rt_info(key).astype(str))
    raise MetadataError(f"the OpenVINO model has no PADet metadata in rt_info[{METADATA_KEY!r}]")


def set_ov_metadata(model: Any, meta: ModelMetadata) -> None:
    """Write ``meta`` into an ``openvino.Model``'s rt_info (kept by ``save_model``).

    A model converted from ONNX also carries the ONNX copy under ``["framework", "padet"]``;
    it is overwritten too so that no stale document (e.g. precision fp32 in an INT8 IR) remains.
    """
    text = meta.to_json()
    model.set_rt_info(text, METADATA_KEY)
    if model.has_rt_info(["framework", METADATA_KEY]):
        model.set_rt_info(text, ["framework", METADATA_KEY])


def resolve_model_path(path: str | os.PathLike[str] | None) -> Path:
    """The model file to load: ``path``, or :data:`DEFAULT_MODEL` for None.

    Raises:
        ModelNotFoundError: no such file (or the default model is not installed).
        ModelLoadError: ``path`` is a directory or not a regular file (a FIFO, a device).
    """
    if path is None:
        if not DEFAULT_MODEL.is_file():
            raise ModelNotFoundError(
                f"no model path given and the embedded default model is not installed ({DEFAULT_MODEL}). "
                "Pass a model file, e.g. Detector('padet_vgg384.xml'), or export one from a checkpoint: "
                "python export/to_openvino.py --checkpoint best.pt --output model.xml "
                "(python export/to_openvino.py --help)"
            )
        return DEFAULT_MODEL
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFoundError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelLoadError(f"{p} is a directory; pass the model's .xml or .onnx file")
    if not p.is_file():  # a FIFO, socket or device: an engine would block reading it
        raise ModelLoadError(f"{p} is not a regular file (a pipe, socket or device); pass the model's .xml or .onnx file")
    return p


def check_model_file(path: Path) -> None:
    """Raise :class:`ModelLoadError` for an ``.xml`` that is not an OpenVINO IR with its
    ``.bin`` beside it, or an ``.onnx`` that is not a protobuf; other suffixes pass unchecked.

    Why: OpenVINO tries every front end on a file it cannot read, which ends in a long message
    and TensorFlow parser noise on stderr; this says in one line what is wrong.
    """
    suffix = path.suffix.lower()
    if suffix == ".xml":
        weights = path.with_suffix(".bin")
        if not weights.is_file():
            raise ModelLoadError(f"{path}: the weights file {weights.name} is missing next to it")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise ModelLoadError(f"{path} is not a valid OpenVINO IR XML ({e}); is it corrupt or truncated?") from e
        if root.tag != "net":
            raise ModelLoadError(f"{path} is an XML file but not an OpenVINO IR (root <{root.tag}>, expected <net>)")
    elif suffix == ".onnx":
        try:
            onnx_metadata_props(path)
        except (MetadataError, OSError, ValueError) as e:
            raise ModelLoadError(f"{path} is not a valid ONNX file ({e}); is it corrupt or truncated?") from e
