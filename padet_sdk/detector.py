"""The SDK's entry point: ``Detector("model.xml")(frame) -> Detections``.

A detector is pre-processing (:func:`padet_sdk.preprocess.to_blob`), inference on an engine
from :mod:`padet_sdk.backends` and post-processing (:func:`padet_sdk.native.postprocess`), each
timed. Everything it needs (classes, input size, normalisation, anchors, thresholds) comes from
the metadata embedded in the model file, so a model file is all a device needs. Engines are
imported only when a model is loaded, so that ``import padet_sdk`` stays cheap.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future
from typing import Any, Sequence, overload

import numpy as np

from . import native
from .backends import Backend, EngineOptions, backend_class, choose_backend
from .cpu import warn_if_int8_mismatch
from .detections import DETECTION_DTYPE, Detections, Timing, resolve_classes
from .errors import FramePathError, ModelLoadError
from .metadata import INPUT_NAME, ModelMetadata
from .model_file import DEFAULT_MODEL, resolve_model_path
from .options import NMS_METHODS, PostprocessOptions
from .preprocess import check_frame, to_blob
from .util import available_cores

log = logging.getLogger("padet_sdk")


# ----------------------------------------------------------------------------- pending result
class PendingDetections:
    """An inference in flight (from :meth:`Detector.submit`). :meth:`result` waits for it and
    post-processes in the calling thread (once; later calls return the same object)."""

    def __init__(self, detector: "Detector", future: Future, size: tuple[int, int], pre_ms: float, t_submit: float) -> None:
        self._detector = detector
        self._future = future
        self._size = size
        self._pre_ms = pre_ms
        self._t_submit = t_submit
        self._t_done: float | None = None
        self._result: Detections | None = None
        future.add_done_callback(self._mark_done)

    def _mark_done(self, _f: Future) -> None:
        self._t_done = time.perf_counter()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> Detections:
        if self._result is None:
            outs = self._future.result(timeout)
            t0 = time.perf_counter()
            data = self._detector._keep_classes(self._detector._postprocess_one(outs, 0, self._size), self._detector.classes)
            infer_ms = ((self._t_done or t0) - self._t_submit) * 1e3
            timing = Timing(self._pre_ms, infer_ms, (time.perf_counter() - t0) * 1e3)
            self._result = Detections(data, self._detector.class_names, self._size, timing)
        return self._result


# ----------------------------------------------------------------------------- detector
class Detector:
    """PADet object detector on OpenVINO or onnxruntime; torch-free.

    ``Detector(path)(frame)`` takes an HxWx3 uint8 **BGR** frame (as cv2.imread / VideoCapture
    give) and returns :class:`~padet_sdk.detections.Detections` with boxes in the frame's pixels;
    a list of frames runs as one batch and returns a list.

    Args:
        path: ``.xml`` (OpenVINO IR) or ``.onnx``; None = the embedded default model.
        device: OpenVINO device ("CPU", "GPU", "AUTO", ...) or, for onnxruntime, "CPU"/"CUDA".
        backend: "auto" (``.xml`` → OpenVINO, ``.onnx`` → onnxruntime), "openvino"
            (also for ``.onnx``, via the DeformConv extension), "onnxruntime", or another
            engine registered in :mod:`padet_sdk.backends`.
        conf: minimum class score (default: the model's, ``metadata.postprocess.conf``).
        nms: "soft-linear", "soft-gaussian" or "hard" (default: the model's method, soft-linear
            for models exported by padet).
        max_det, iou, sigma, theta, pre_nms_top_k: override the model's post-processing values
            (the fields of :class:`~padet_sdk.options.PostprocessOptions`).
        precision_hint: OpenVINO ``INFERENCE_PRECISION_HINT``. "auto" = "f32" for fp32/fp16
            models (OpenVINO would otherwise pick bf16 on CPUs that have it, and the scores would
            drift from the fp32 ones), the device default for INT8 models; None = device
            default; or "bf16"/"f16".
        num_requests: inferences that may run at once (OpenVINO infer requests / onnxruntime
            worker threads for :meth:`submit`); default max(2, device optimum).
        num_threads: inference threads (OpenVINO ``INFERENCE_NUM_THREADS``, onnxruntime
            intra-op threads); default: the engine's choice (all cores).
        performance_hint: OpenVINO "LATENCY" or "THROUGHPUT" (several CPU streams, each
            running its own inference), None = device default (LATENCY on CPU).
        ov_config: further OpenVINO compile properties (e.g. ``{"ENABLE_CPU_PINNING": False}``);
            applied last, so they win over the options above. OpenVINO backend only.
        classes: keep only these classes (names or 0-based ids; ValueError for one the model
            lacks), in every call, submit and stream; a call's own ``classes=`` overrides it.
            Applied after NMS, so ``max_det`` counts every class.

    For video, :meth:`for_video` sets these up for :func:`padet_sdk.stream`.

    Thread safety: one Detector may be called from several threads at once and gives the same
    results as serial calls. OpenVINO calls each take their own infer request from a pool (a
    caller waits while all ``num_requests`` are busy); onnxruntime's ``session.run`` is
    thread-safe. Pre- and post-processing use no shared mutable state.

    Errors: :class:`~padet_sdk.errors.ModelNotFoundError` (no file),
    :class:`~padet_sdk.errors.ModelLoadError` (corrupt/unsupported file),
    :class:`~padet_sdk.errors.MissingMetadataError` (not a padet export),
    :class:`~padet_sdk.errors.InvalidFrameError` (frame not HxWx3 uint8; ``FramePathError``, also a
    ``TypeError``, for a path such as ``det("photo.jpg")``), ``ValueError`` (bad option),
    :class:`~padet_sdk.errors.DetectorClosedError` (used after :meth:`close`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        device: str = "CPU",
        backend: str = "auto",
        conf: float | None = None,
        nms: str | None = None,
        max_det: int | None = None,
        iou: float | None = None,
        sigma: float | None = None,
        precision_hint: str | None = "auto",
        num_requests: int | None = None,
        num_threads: int | None = None,
        performance_hint: str | None = None,
        theta: float | None = None,
        pre_nms_top_k: int | None = None,
        ov_config: dict[str, Any] | None = None,
        classes: Sequence[str | int] | None = None,
    ) -> None:
        self.path = resolve_model_path(path)
        self._backend_name = choose_backend(self.path, backend)
        engine = EngineOptions(
            device=device, precision_hint=precision_hint, num_requests=num_requests, num_threads=num_threads,
            performance_hint=performance_hint, ov_config=ov_config,
        )
        self._backend: Backend = backend_class(self._backend_name)(self.path, engine)
        self.device = device
        self._for_video_setup = False
        self.metadata: ModelMetadata = self._backend.metadata
        meta = self.metadata
        warn_if_int8_mismatch(self.path, meta.precision, meta.quant_target_cpu, meta.quant_scheme)
        self.anchors = meta.anchors()  # built once, (N, 4) float32 cxcywh
        if len(self.anchors) != meta.num_anchors:  # pragma: no cover - generator invariant
            raise ModelLoadError(f"{self.path}: {len(self.anchors)} anchors built, metadata says {meta.num_anchors}")
        self.nms, self.postprocess_options = _postprocess_options(
            meta, conf=conf, nms=nms, max_det=max_det, iou=iou, sigma=sigma, theta=theta, pre_nms_top_k=pre_nms_top_k
        )
        self.last_timing: Timing | None = None
        self.classes: tuple[int, ...] | None = None if classes is None else tuple(resolve_classes(classes, self.class_names))

    # ---- properties ---------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The engine's name in :mod:`padet_sdk.backends` ("openvino", "onnxruntime", ...)."""
        return self._backend_name

    @property
    def for_video_setup(self) -> bool:
        """Whether :meth:`for_video` made this detector (:func:`padet_sdk.stream` suggests it
        otherwise)."""
        return self._for_video_setup

    @classmethod
    def for_video(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> "Detector":
        """A Detector set up to feed :func:`padet_sdk.stream`: several narrower inferences
        side by side instead of one inference spread over every core.

        Why: the pipeline's reader, pre/post-processing and writer threads (decode, resize,
        draw, encode) need CPU too. With one inference on all cores (the default), they preempt
        its workers mid-layer and the whole parallel layer waits. With several narrower ones, a
        preempted inference slows down alone. Each engine says what "narrower" means for it
        (:meth:`Backend.video_tuning <padet_sdk.backends.base.Backend.video_tuning>`): OpenVINO
        takes the THROUGHPUT hint with CPU pinning off, onnxruntime one intra-op thread per
        inference and one inference per core. The README's "Async vs sync video" table has the
        measurements. For one frame at a time (``detector(frame)``) the default is faster.

        ``kwargs`` are :class:`Detector` arguments and override these settings (None values
        keep them, so that CLI options left unset can be passed straight through; dict values
        such as ``ov_config`` are merged key by key).
        """
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        resolved = resolve_model_path(path)
        name = choose_backend(resolved, kwargs.get("backend", "auto"))
        tuned = backend_class(name).video_tuning(available_cores())
        merged = {**tuned, **kwargs}
        for key, value in tuned.items():
            if isinstance(value, dict) and isinstance(kwargs.get(key), dict):
                merged[key] = {**value, **kwargs[key]}
        det = cls(resolved, **merged)
        det._for_video_setup = True
        return det

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.metadata.class_names

    @property
    def input_size(self) -> int:
        return self.metadata.input_size

    @property
    def num_requests(self) -> int:
        """Inferences that may run at once (what :meth:`submit` and :func:`padet_sdk.stream` use)."""
        return self._backend.num_requests

    def __repr__(self) -> str:
        return (
            f"Detector({str(self.path)!r}, backend={self.backend!r}, device={self.device!r}, "
            f"classes={len(self.class_names)}, input={self.input_size}, nms={self.nms!r}, conf={self.postprocess_options.conf})"
        )

    # ---- pre-processing -----------------------------------------------------------------
    def preprocess(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """(B, 3, S, S) float32 network input of BGR uint8 frames, as the model's metadata says
        (:func:`padet_sdk.preprocess.to_blob`). Frames may differ in size and may be
        non-contiguous views."""
        meta = self.metadata
        return to_blob(frames, meta.input_size, meta.pixel_order, meta.mean, meta.std)

    # ---- inference ----------------------------------------------------------------------
    def _infer(self, blob: np.ndarray) -> list[np.ndarray]:
        """Outputs (metadata order) for the whole blob, in chunks if the graph's batch is fixed."""
        b = self._backend.static_batch
        if b is None or b == len(blob):
            return self._backend.infer(blob)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(blob), b):
            chunk = blob[start:start + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), chunk.dtype)])
            parts.append([o[:n] for o in self._backend.infer(chunk)])
        return [np.concatenate(p) for p in zip(*parts)]

    def _postprocess_one(self, outs: list[np.ndarray], b: int, size: tuple[int, int]) -> np.ndarray:
        """Packed detections (frame pixels) of image ``b`` of the raw outputs."""
        named = dict(zip(self.metadata.outputs, outs))
        apm_s = named.get("apm_scores")
        apm_d = named.get("apm_deltas")
        boxes, scores, labels, anchor_idx = native.postprocess(
            self.anchors,
            None if apm_s is None else apm_s[b],
            None if apm_d is None else apm_d[b],
            named["cls_scores"][b],
            named["det_deltas"][b],
            self.postprocess_options,
            self.metadata.variances,
        )
        h, w = size
        data = np.empty(len(scores), DETECTION_DTYPE)
        data["box"] = boxes * np.array([w, h, w, h], np.float32)
        data["score"] = scores
        data["class_id"] = labels - 1
        data["anchor"] = anchor_idx
        return data

    @staticmethod
    def _keep_classes(data: np.ndarray, classes: tuple[int, ...] | None) -> np.ndarray:
        return data if classes is None else data[np.isin(data["class_id"], classes)]

    @overload
    def __call__(self, frames: np.ndarray, *, classes: Sequence[str | int] | None = None) -> Detections: ...
    @overload
    def __call__(self, frames: Sequence[np.ndarray], *, classes: Sequence[str | int] | None = None) -> list[Detections]: ...

    def __call__(
        self, frames: np.ndarray | Sequence[np.ndarray], *, classes: Sequence[str | int] | None = None,
    ) -> Detections | list[Detections]:
        """Detect objects in one BGR frame (→ Detections) or a list of frames (one batch → list);
        ``classes`` (names or ids) keeps only those, overriding the Detector's ``classes``."""
        _refuse_path(frames)
        keep = self.classes if classes is None else tuple(resolve_classes(classes, self.class_names))
        single = frames is None or isinstance(frames, np.ndarray)
        batch: list[Any] = [frames] if single else list(frames)  # type: ignore[list-item]
        if not batch:
            return []
        self._backend.check_open()
        t0 = time.perf_counter()
        blob = self.preprocess(batch)
        t1 = time.perf_counter()
        outs = self._infer(blob)
        t2 = time.perf_counter()
        sizes = [(int(f.shape[0]), int(f.shape[1])) for f in batch]
        datas = [self._keep_classes(self._postprocess_one(outs, b, sizes[b]), keep) for b in range(len(batch))]
        t3 = time.perf_counter()
        timing = Timing((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        self.last_timing = timing
        dets = [Detections(d, self.class_names, s, timing) for d, s in zip(datas, sizes)]
        return dets[0] if single else dets

    def submit(self, frame: np.ndarray) -> PendingDetections:
        """Start detecting one frame asynchronously; blocks only while ``num_requests``
        inferences are already in flight. Pre-processing runs in the calling thread, the
        post-processing in the thread that calls ``.result()``."""
        _refuse_path(frame)
        self._backend.check_open()
        t0 = time.perf_counter()
        blob = self.preprocess([frame])
        t1 = time.perf_counter()
        if self._backend.static_batch not in (None, 1):
            fut: Future = Future()
            fut.set_result(self._infer(blob))
        else:
            fut = self._backend.submit(blob)
        return PendingDetections(self, fut, (int(frame.shape[0]), int(frame.shape[1])), (t1 - t0) * 1e3, t1)

    def warmup(self, runs: int = 1) -> None:
        """Run a few inferences on a blank frame (first calls are slower: lazy allocations)."""
        s = self.input_size
        for _ in range(runs):
            self(np.zeros((s, s, 3), np.uint8))

    def close(self) -> None:
        """Release worker threads (the model itself is freed with the object). Safe from any
        thread: inferences in flight finish; calls and submits after it raise
        :class:`~padet_sdk.errors.DetectorClosedError` (copies from :meth:`with_options` share
        the engine, so they are closed too)."""
        self._backend.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_options(self, **overrides: Any) -> "Detector":
        """A shallow copy sharing the loaded model, with other post-processing options: fields of
        :class:`~padet_sdk.options.PostprocessOptions` (``conf``, ``iou``, ``sigma``, ``max_det``,
        ``theta``, ``pre_nms_top_k``, ``nms``, ``nms_floor``) and ``classes`` (None = all)."""
        new = object.__new__(Detector)
        new.__dict__.update(self.__dict__)
        if "classes" in overrides:
            classes = overrides.pop("classes")
            new.classes = None if classes is None else tuple(resolve_classes(classes, self.class_names))
        new.postprocess_options = self.postprocess_options.replace(**overrides)
        new.nms = new.postprocess_options.nms
        return new


def _refuse_path(frames: Any) -> None:
    """A str/bytes/path is not a frame (a str would otherwise count as a list of letters):
    :class:`~padet_sdk.errors.FramePathError`, an InvalidFrameError and a TypeError."""
    if isinstance(frames, (list, tuple)):  # a list of paths: name the first one
        frames = next((f for f in frames if isinstance(f, (str, bytes, os.PathLike))), None)
    if isinstance(frames, (str, bytes, os.PathLike)):
        raise FramePathError(f"Detector takes a frame (an HxWx3 uint8 BGR numpy array) or a list of frames, not the path "
                        f"{os.fsdecode(frames)!r}: read the image first, det(cv2.imread(path))")  # fmt: skip


def _postprocess_options(
    meta: ModelMetadata, *, conf: float | None, nms: str | None, max_det: int | None, iou: float | None,
    sigma: float | None, theta: float | None, pre_nms_top_k: int | None,
) -> tuple[str, PostprocessOptions]:
    """(nms name, options): the metadata's options with the Detector's overrides (None keeps the
    model's value), validated by :class:`~padet_sdk.options.PostprocessOptions` (``ValueError``)."""
    overrides = dict(theta=theta, conf=conf, nms=nms, iou=iou, sigma=sigma, pre_nms_top_k=pre_nms_top_k, max_det=max_det)
    options = meta.postprocess.replace(**{k: v for k, v in overrides.items() if v is not None})
    return options.nms, options


__all__ = ["Detector", "PendingDetections", "check_frame", "DEFAULT_MODEL", "NMS_METHODS", "INPUT_NAME"]
