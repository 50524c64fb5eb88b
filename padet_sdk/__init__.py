"""PADet runtime SDK (torch-free): ``Detector("model.xml")(frame) -> Detections``.

Needs numpy, OpenCV and OpenVINO or onnxruntime — never torch. The inference engines and
OpenCV are imported only when a detector or video source is created, so ``import padet_sdk``
is cheap.

    from padet_sdk import Detector, stream
    det = Detector("padet_vgg384.xml")            # for stream(): Detector.for_video("padet_vgg384.xml")
    dets = det(cv2.imread("street.jpg"))          # boxes in pixels, scores, class names
    for r in stream(det, "video.mp4", output="out.mp4"):
        print(r.index, len(r.detections), r.latency_ms)
"""
from .detections import Detection, Detections, Timing
from .detector import DEFAULT_MODEL, Detector, PendingDetections
from .errors import (
    DetectorClosedError, InvalidFrameError, MissingMetadataError, ModelLoadError, ModelNotFoundError, PadetError, SourceError,
)
from .metadata import MetadataError, ModelMetadata
from .multistream import MultiStats, MultiStream, SourceStats, multi_stream
from .reconnect import ReconnectPolicy, SourceEvent
from .sinks import CocoSink, CsvSink, JsonlSink, YoloTxtSink
from .stream import FrameResult, FrameSource, StreamStats, VideoStream, open_source, stream
from .track import Tracker
from .zones import LineCounter, PolygonZone

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Detector",
    "Detections",
    "Detection",
    "Timing",
    "Tracker",
    "PolygonZone",
    "LineCounter",
    "JsonlSink",
    "CsvSink",
    "CocoSink",
    "YoloTxtSink",
    "PendingDetections",
    "DEFAULT_MODEL",
    "stream",
    "open_source",
    "FrameResult",
    "FrameSource",
    "StreamStats",
    "VideoStream",
    "ReconnectPolicy",
    "multi_stream",
    "MultiStream",
    "MultiStats",
    "SourceStats",
    "SourceEvent",
    "ModelMetadata",
    "PadetError",
    "ModelLoadError",
    "ModelNotFoundError",
    "MissingMetadataError",
    "MetadataError",
    "InvalidFrameError",
    "DetectorClosedError",
    "SourceError",
]
