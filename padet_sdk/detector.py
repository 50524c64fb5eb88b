"""The SDK's entry point: ``Detector("model.xml")(frame) -> Detections``.

Everything the detector needs (classes, input size, normalisation, anchors, thresholds) comes
from the metadata embedded in the model file, so a model file is all a device needs. Inference
runs on OpenVINO (``.xml``, or ``.onnx`` through the DeformConv extension) or onnxruntime
(``.onnx``); both are imported lazily so that ``import padet_sdk`` stays cheap.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence, overload

import numpy as np

from . import native
from .cpu import warn_if_int8_mismatch
from .detections import DETECTION_DTYPE, Detections, Timing
from .errors import InvalidFrameError, MissingMetadataError, ModelLoadError, ModelNotFoundError
from .metadata import INPUT_NAME, METADATA_KEY, MetadataError, ModelMetadata

log = logging.getLogger("padet_sdk")

#: The model used by ``Detector()`` without a path (shipped inside the package).
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "padet_shapes.xml"

#: ``nms`` argument → method name of :func:`padet_sdk.native.postprocess`.
NMS_METHODS = {"soft-linear": "linear", "soft-gaussian": "gaussian", "hard": "hard"}
_META_TO_NMS = {v: k for k, v in NMS_METHODS.items()}
BACKENDS = ("auto", "openvino", "onnxruntime")


# ----------------------------------------------------------------------------- frame checks
def check_frame(frame: Any, where: str = "frame") -> np.ndarray:
    """``frame`` if it is an HxWx3 uint8 array (any strides), else :class:`InvalidFrameError`
    saying how to convert it."""
    if frame is None:
        raise InvalidFrameError(
            f"{where} is None: cv2.imread returns None for a missing/unreadable file and "
            "VideoCapture.read() returns (False, None) at the end of a stream"
        )
    if isinstance(frame, (bool, np.bool_)):
        raise InvalidFrameError(
            f"{where} is a bool: pass the frame of VideoCapture.read(), not its (ok, frame) tuple"
        )
    if not isinstance(frame, np.ndarray):
        raise InvalidFrameError(
            f"{where} must be a numpy array (H, W, 3) uint8 in BGR order, got {type(frame).__name__}; "
            "for a PIL image use cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)"
        )
    shape = frame.shape
    if frame.ndim == 2 or (frame.ndim == 3 and shape[2] == 1):
        raise InvalidFrameError(
            f"{where} is single-channel (shape {shape}); the detector expects 3-channel BGR: "
            "convert with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)"
        )
    if frame.ndim != 3:
        raise InvalidFrameError(
            f"{where} must have shape (H, W, 3), got {frame.ndim} dimensions {shape}; "
            "pass a list of frames for a batch, not a stacked 4-D array"
            if frame.ndim == 4 else f"{where} must have shape (H, W, 3), got {shape}"
        )
    if shape[2] == 4:
        raise InvalidFrameError(
            f"{where} has 4 channels (BGRA, shape {shape}); drop alpha with cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)"
        )
    if shape[2] != 3:
        raise InvalidFrameError(f"{where} must have 3 channels (BGR), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise InvalidFrameError(f"{where} is empty (shape {shape}); check that the image/video read succeeded")
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            hint = (
                "if it holds 0..1 values use (frame * 255).round().clip(0, 255).astype(np.uint8); "
                "if 0..255, frame.round().clip(0, 255).astype(np.uint8)"
            )
        else:
            hint = "scale it to 0..255 and convert with .astype(np.uint8) (e.g. cv2.convertScaleAbs)"
        raise InvalidFrameError(f"{where} has dtype {frame.dtype}; the detector expects uint8 BGR pixels: {hint}")
    return frame


# ----------------------------------------------------------------------------- backends
class _Backend:
    """One loaded model: ``infer`` is synchronous and thread-safe, ``submit`` asynchronous."""

    name = "?"
    static_batch: int | None = None  # None = dynamic batch axis

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def submit(self, blob: np.ndarray) -> "Future[list[np.ndarray]]":
        raise NotImplementedError

    def close(self) -> None:
        pass


def _check_model_io(path: Path, meta: ModelMetadata, input_shape: Sequence[Any], output_names: Sequence[str]) -> None:
    """Fail at load time, with a clear message, when graph and metadata disagree."""
    missing = [n for n in meta.outputs if n not in output_names]
    if missing:
        raise ModelLoadError(f"{path}: outputs {missing} named in the PADet metadata are not in the graph ({list(output_names)})")
    s = meta.input_size
    if len(input_shape) != 4 or any(isinstance(d, int) and d not in (want, -1) for d, want in zip(input_shape[1:], (3, s, s))):
        raise ModelLoadError(f"{path}: input shape {list(input_shape)} does not match metadata input_size {s} (expected (B, 3, {s}, {s}))")


class _OpenVINOBackend(_Backend):
    """OpenVINO: a pool of infer requests shared by sync calls (any thread) and async submits.

    A request is taken from the pool for the duration of one inference and returned afterwards,
    so concurrent callers never share a request (they are not thread-safe) and at most
    ``num_requests`` inferences run at once — the pool is also the async back-pressure.
    """

    name = "openvino"

    def __init__(
        self, path: Path, device: str, precision_hint: str | None, num_requests: int | None,
        num_threads: int | None, performance_hint: str | None, ov_config: dict[str, Any] | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ModelLoadError("the OpenVINO backend needs the 'openvino' package (pip install openvino)") from e
        from .model_file import metadata_from_ov_model

        _sniff_format(path)
        core = ov.Core()
        try:
            if path.suffix.lower() == ".onnx":
                from .ov_extensions import read_onnx_with_extensions

                model = read_onnx_with_extensions(core, path)
            else:
                model = core.read_model(str(path))
        except Exception as e:
            raise ModelLoadError(f"OpenVINO cannot read {path}: {_first_line(e)}") from e
        try:
            self.meta = metadata_from_ov_model(model)
        except MetadataError as e:
            raise MissingMetadataError(f"{path}: {e}; export it with export/to_openvino.py or export/to_onnx.py") from e
        pshape = model.input(0).get_partial_shape()
        dims = [d.get_length() if d.is_static else -1 for d in pshape] if pshape.rank.is_static else []
        out_names = [o.get_any_name() for o in model.outputs]
        _check_model_io(path, self.meta, dims, out_names)
        self.static_batch = dims[0] if dims[0] != -1 else None
        if precision_hint == "auto":
            precision_hint = "f32" if self.meta.precision in ("fp32", "fp16") else None
        config: dict[str, Any] = {}
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        if performance_hint:
            config["PERFORMANCE_HINT"] = performance_hint.upper()
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        config.update(ov_config or {})
        try:
            self.compiled = core.compile_model(model, device, config)
        except Exception as e:
            raise ModelLoadError(f"OpenVINO cannot compile {path} for device {device!r} ({config}): {_first_line(e)}") from e
        self._out_idx = [out_names.index(n) for n in self.meta.outputs]
        if num_requests is None:
            try:
                num_requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            except Exception:
                num_requests = 2
            num_requests = max(2, num_requests)
        self.num_requests = int(num_requests)
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self.num_requests):
            self._pool.put(self.compiled.create_infer_request())

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        req = self._pool.get()
        try:
            res = req.infer({0: blob}, share_inputs=True)  # outputs are copies: safe after release
            return [res[i] for i in self._out_idx]
        finally:
            self._pool.put(req)

    def submit(self, blob: np.ndarray) -> "Future[list[np.ndarray]]":
        fut: Future = Future()
        req = self._pool.get()  # blocks while all requests are busy (back-pressure)

        def done(_userdata: Any) -> None:
            try:
                outs = [req.get_output_tensor(i).data.copy() for i in self._out_idx]
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                self._pool.put(req)
                fut.set_exception(e)
                return
            self._pool.put(req)
            fut.set_result(outs)

        req.set_callback(done, blob)  # userdata keeps the shared input alive until done
        try:
            req.start_async({0: blob}, share_inputs=True)
        except BaseException:
            self._pool.put(req)
            raise
        return fut


class _OnnxRuntimeBackend(_Backend):
    """onnxruntime: ``session.run`` is thread-safe; async submits run on a small thread pool."""

    name = "onnxruntime"

    def __init__(self, path: Path, device: str, num_requests: int | None, num_threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ModelLoadError("the onnxruntime backend needs the 'onnxruntime' package (pip install onnxruntime)") from e
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
        # no busy-waiting: spinning intra-op threads steal the cores that pre/post-processing
        # of the other in-flight frames needs (2 cores, 720p video: pipeline 170 vs 144 FPS)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        dev = device.upper()
        available = ort.get_available_providers()
        if dev == "CPU":
            providers = ["CPUExecutionProvider"]
        elif dev in ("GPU", "CUDA") and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            raise ModelLoadError(f"onnxruntime has no provider for device {device!r} (available: {available})")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:
            raise ModelLoadError(f"onnxruntime cannot load {path}: {_first_line(e)}") from e
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise MissingMetadataError(
                f"{path} has no PADet metadata (ONNX metadata_props[{METADATA_KEY!r}]); export it with export/to_onnx.py"
            )
        try:
            self.meta = ModelMetadata.from_json(text)
        except MetadataError as e:
            raise MissingMetadataError(f"{path}: {e}") from e
        inp = self.session.get_inputs()[0]
        dims = [d if isinstance(d, int) else -1 for d in inp.shape]
        _check_model_io(path, self.meta, dims, [o.name for o in self.session.get_outputs()])
        self.static_batch = dims[0] if dims and dims[0] != -1 else None
        self._input = inp.name
        self.num_requests = int(num_requests or 2)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(self.meta.outputs), {self._input: blob})

    def submit(self, blob: np.ndarray) -> "Future[list[np.ndarray]]":
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.num_requests, thread_name_prefix="padet-ort")
        return self._executor.submit(self.infer, blob)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _choose_backend(path: Path, backend: str) -> str:
    """The engine for ``path``: "auto" is OpenVINO for ``.xml`` and onnxruntime (if installed)
    for ``.onnx``. Raises for combinations that cannot work."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    suffix = path.suffix.lower()
    if suffix not in (".xml", ".onnx"):
        raise ModelLoadError(f"{path}: unsupported model file type {suffix!r}; use an OpenVINO .xml or an .onnx")
    if backend == "auto":
        backend = "openvino" if suffix == ".xml" or not _has_module("onnxruntime") else "onnxruntime"
    if backend == "onnxruntime" and suffix == ".xml":
        raise ModelLoadError(f"{path}: onnxruntime cannot read OpenVINO IR; use backend='openvino' or the .onnx file")
    return backend


def _sniff_format(path: Path) -> None:
    """Reject files that are obviously not IR/ONNX before OpenVINO tries every front end on
    them (which ends in a long message and TensorFlow parser noise on stderr)."""
    from .model_file import onnx_metadata_props

    if path.suffix.lower() == ".xml":
        import xml.etree.ElementTree as ET

        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise ModelLoadError(f"{path} is not a valid OpenVINO IR XML ({e}); is it corrupt or truncated?") from e
        if root.tag != "net":
            raise ModelLoadError(f"{path} is an XML file but not an OpenVINO IR (root <{root.tag}>, expected <net>)")
    else:
        try:
            onnx_metadata_props(path)
        except (MetadataError, OSError, ValueError) as e:
            raise ModelLoadError(f"{path} is not a valid ONNX file ({e}); is it corrupt or truncated?") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 else " | ".join(lines[:1] + lines[-2:])


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
            data = self._detector._postprocess_one(outs, 0, self._size)
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
            (also for ``.onnx``, via the DeformConv extension) or "onnxruntime".
        conf: minimum class score (default: the model's ``conf_threshold``).
        nms: "soft-linear", "soft-gaussian" or "hard" (default: the model's method, soft-linear
            for models exported by padet).
        max_det, iou, sigma, theta, pre_nms_top_k: override the model's post-processing values.
        precision_hint: OpenVINO ``INFERENCE_PRECISION_HINT``. "auto" = "f32" for fp32/fp16
            models (OpenVINO would otherwise pick bf16 on CPUs that have it, shifting scores by
            ~1e-2), the device default for INT8 models; None = device default; or "bf16"/"f16".
        num_requests: inferences that may run at once (OpenVINO infer requests / onnxruntime
            worker threads for :meth:`submit`); default max(2, device optimum).
        num_threads: inference threads (OpenVINO ``INFERENCE_NUM_THREADS``, onnxruntime
            intra-op threads); default: the engine's choice (all cores).
        performance_hint: OpenVINO "LATENCY" or "THROUGHPUT" (several CPU streams, each
            running its own inference), None = device default (LATENCY on CPU).
        ov_config: further OpenVINO compile properties (e.g. ``{"ENABLE_CPU_PINNING": False}``);
            applied last, so they win over the options above. OpenVINO backend only.

    For video, :meth:`for_video` sets these up for :func:`padet_sdk.stream`.

    Thread safety: one Detector may be called from several threads at once and gives the same
    results as serial calls. OpenVINO calls each take their own infer request from a pool (a
    caller waits while all ``num_requests`` are busy); onnxruntime's ``session.run`` is
    thread-safe. Pre- and post-processing use no shared mutable state.

    Errors: :class:`~padet_sdk.errors.ModelNotFoundError` (no file),
    :class:`~padet_sdk.errors.ModelLoadError` (corrupt/unsupported file),
    :class:`~padet_sdk.errors.MissingMetadataError` (not a padet export),
    :class:`~padet_sdk.errors.InvalidFrameError` (frame not HxWx3 uint8), ``ValueError`` (bad option).
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
    ) -> None:
        self.path = _resolve_model_path(path)
        backend = _choose_backend(self.path, backend)
        suffix = self.path.suffix.lower()
        if ov_config and backend != "openvino":
            raise ValueError(f"ov_config applies to the OpenVINO backend only, this detector uses {backend}")
        if suffix == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise ModelLoadError(f"{self.path}: the weights file {self.path.with_suffix('.bin').name} is missing next to it")
        if backend == "openvino":
            self._backend: _Backend = _OpenVINOBackend(
                self.path, device, precision_hint, num_requests, num_threads, performance_hint, ov_config
            )
        else:
            self._backend = _OnnxRuntimeBackend(self.path, device, num_requests, num_threads)
        self.device = device
        self.for_video_setup = False  # set by for_video()
        self.metadata: ModelMetadata = self._backend.meta  # type: ignore[attr-defined]
        meta = self.metadata
        warn_if_int8_mismatch(self.path, meta.precision, meta.quant_target_cpu, meta.quant_scheme)
        self.anchors = meta.anchors()  # built once, (N, 4) float32 cxcywh
        if len(self.anchors) != meta.num_anchors:  # pragma: no cover - generator invariant
            raise ModelLoadError(f"{self.path}: {len(self.anchors)} anchors built, metadata says {meta.num_anchors}")
        nms = nms if nms is not None else _META_TO_NMS.get(meta.nms_method, meta.nms_method)
        if nms not in NMS_METHODS:
            raise ValueError(f"nms must be one of {sorted(NMS_METHODS)}, got {nms!r}")
        self.nms = nms
        self.postprocess_options: dict[str, Any] = dict(
            theta=_opt(theta, meta.theta, "theta", 0.0, 1.0),
            conf=_opt(conf, meta.conf_threshold, "conf", 0.0, 1.0),
            method=NMS_METHODS[nms],
            iou_threshold=_opt(iou, meta.nms_iou, "iou", 0.0, 1.0),
            sigma=_opt(sigma, meta.nms_sigma, "sigma", 1e-6, float("inf")),
            score_threshold=meta.nms_score_threshold,
            pre_nms_top_k=int(_opt(pre_nms_top_k, meta.pre_nms_top_k, "pre_nms_top_k", 1, float("inf"))),
            max_det=int(_opt(max_det, meta.max_det, "max_det", 1, float("inf"))),
            variances=meta.variances,
        )
        self._blob_params = self._make_blob_params()
        self.last_timing: Timing | None = None

    # ---- properties ---------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend.name

    @classmethod
    def for_video(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> "Detector":
        """A Detector set up to feed :func:`padet_sdk.stream`: several narrower inferences
        side by side instead of one inference spread over every core.

        Why: the pipeline's reader, pre/post-processing and writer threads (decode, resize,
        draw, encode) need CPU too. With one inference on all cores (the default), they preempt
        its workers mid-layer and the whole parallel layer waits. With several narrower ones, a
        preempted inference slows down alone. OpenVINO gets the THROUGHPUT hint (on 2 cores:
        two single-threaded streams) with CPU pinning off, since pinned stream threads cannot
        make room. onnxruntime gets one intra-op thread per inference and one inference per
        core. Measured on 2 cores (README, "Async vs sync video"): the pipeline ran 1.48-2.29x
        the synchronous loop with the shipped model, and 1.0x (never slower) with a model 40x
        heavier. There, the earlier rule of leaving a core free halved the speed. For one frame
        at a time (``detector(frame)``) the default is faster.

        ``kwargs`` are :class:`Detector` arguments and override these settings (None values
        keep them, so that CLI options left unset can be passed straight through).
        """
        from .stream import available_cores

        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        resolved = _resolve_model_path(path)
        backend = _choose_backend(resolved, kwargs.get("backend", "auto"))
        if backend == "openvino":
            tuned: dict[str, Any] = {"performance_hint": "THROUGHPUT", "ov_config": {"ENABLE_CPU_PINNING": False}}
            kwargs["ov_config"] = {**tuned["ov_config"], **kwargs.get("ov_config", {})}
        else:
            tuned = {"num_threads": 1, "num_requests": max(2, available_cores())}
        det = cls(resolved, **{**tuned, **kwargs})
        det.for_video_setup = True
        return det

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.metadata.class_names

    @property
    def input_size(self) -> int:
        return self.metadata.input_size

    @property
    def num_requests(self) -> int:
        return self._backend.num_requests  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return (
            f"Detector({str(self.path)!r}, backend={self.backend!r}, device={self.device!r}, "
            f"classes={len(self.class_names)}, input={self.input_size}, nms={self.nms!r}, conf={self.postprocess_options['conf']})"
        )

    # ---- pre-processing -----------------------------------------------------------------
    def _make_blob_params(self) -> Any:
        """cv2.dnn blob parameters doing resize, BGR→RGB, (x/255 - mean)/std and HWC→NCHW in
        one OpenCV call writing straight into the float32 blob (no intermediate images).
        None when this OpenCV has no ``dnn.blobFromImageWithParams`` (numpy path instead)."""
        import cv2

        if not hasattr(getattr(cv2, "dnn", None), "blobFromImageWithParams"):
            return None
        meta = self.metadata
        s = meta.input_size
        p = cv2.dnn.Image2BlobParams()
        p.size = (s, s)
        # blob = (pixel - mean) * scalefactor, both given in the model's channel order
        p.mean = tuple(255.0 * m for m in meta.mean) + (0.0,)
        p.scalefactor = tuple(1.0 / (255.0 * sd) for sd in meta.std) + (0.0,)
        p.swapRB = meta.pixel_order == "RGB"
        p.ddepth = cv2.CV_32F
        p.datalayout = getattr(cv2, "DNN_LAYOUT_NCHW", None) or cv2.dnn.DNN_LAYOUT_NCHW
        p.paddingmode = cv2.dnn.DNN_PMODE_NULL  # plain resize to S x S (what training does)
        return p

    def preprocess(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """(B, 3, S, S) float32 network input of BGR uint8 frames: cv2.resize (INTER_LINEAR) to
        S x S, BGR→RGB per the metadata, (x / 255 - mean) / std. Frames may differ in size and
        may be non-contiguous views."""
        import cv2

        for i, f in enumerate(frames):
            check_frame(f, "frame" if len(frames) == 1 else f"frame {i}")
        if self._blob_params is None:
            return self._preprocess_numpy(frames)
        if len(frames) == 1:
            return cv2.dnn.blobFromImageWithParams(frames[0], self._blob_params)
        return cv2.dnn.blobFromImagesWithParams(list(frames), self._blob_params)

    def _preprocess_numpy(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Same result as the cv2.dnn path: resize, then one multiply-subtract per channel
        written into the preallocated blob."""
        import cv2

        meta = self.metadata
        s = meta.input_size
        scale = [1.0 / (255.0 * sd) for sd in meta.std]
        shift = [m / sd for m, sd in zip(meta.mean, meta.std)]
        src = (2, 1, 0) if meta.pixel_order == "RGB" else (0, 1, 2)
        out = np.empty((len(frames), 3, s, s), np.float32)
        for b, f in enumerate(frames):
            r = cv2.resize(f, (s, s), interpolation=cv2.INTER_LINEAR)
            for c in range(3):
                np.multiply(r[..., src[c]], np.float32(scale[c]), out=out[b, c], casting="unsafe")
                out[b, c] -= np.float32(shift[c])
        return out

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
            **self.postprocess_options,
        )
        h, w = size
        data = np.empty(len(scores), DETECTION_DTYPE)
        data["box"] = boxes * np.array([w, h, w, h], np.float32)
        data["score"] = scores
        data["class_id"] = labels - 1
        data["anchor"] = anchor_idx
        return data

    @overload
    def __call__(self, frames: np.ndarray) -> Detections: ...
    @overload
    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...

    def __call__(self, frames: np.ndarray | Sequence[np.ndarray]) -> Detections | list[Detections]:
        """Detect objects in one BGR frame (→ Detections) or a list of frames (one batch → list)."""
        single = frames is None or isinstance(frames, np.ndarray)
        batch: list[Any] = [frames] if single else list(frames)  # type: ignore[list-item]
        if not batch:
            return []
        t0 = time.perf_counter()
        blob = self.preprocess(batch)
        t1 = time.perf_counter()
        outs = self._infer(blob)
        t2 = time.perf_counter()
        sizes = [(int(f.shape[0]), int(f.shape[1])) for f in batch]
        datas = [self._postprocess_one(outs, b, sizes[b]) for b in range(len(batch))]
        t3 = time.perf_counter()
        timing = Timing((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        self.last_timing = timing
        dets = [Detections(d, self.class_names, s, timing) for d, s in zip(datas, sizes)]
        return dets[0] if single else dets

    def submit(self, frame: np.ndarray) -> PendingDetections:
        """Start detecting one frame asynchronously; blocks only while ``num_requests``
        inferences are already in flight. Pre-processing runs in the calling thread, the
        post-processing in the thread that calls ``.result()``."""
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
        """Release worker threads (the model itself is freed with the object)."""
        self._backend.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_options(self, **overrides: Any) -> "Detector":
        """A shallow copy sharing the loaded model, with other post-processing options
        (``conf``, ``iou``, ``sigma``, ``max_det``, ``theta``, ``pre_nms_top_k``, ``nms``)."""
        new = object.__new__(Detector)
        new.__dict__.update(self.__dict__)
        new.postprocess_options = dict(self.postprocess_options)
        names = {"conf": "conf", "iou": "iou_threshold", "sigma": "sigma", "max_det": "max_det",
                 "theta": "theta", "pre_nms_top_k": "pre_nms_top_k"}
        for k, v in overrides.items():
            if k == "nms":
                if v not in NMS_METHODS:
                    raise ValueError(f"nms must be one of {sorted(NMS_METHODS)}, got {v!r}")
                new.nms = v
                new.postprocess_options["method"] = NMS_METHODS[v]
            elif k in names:
                new.postprocess_options[names[k]] = v
            else:
                raise TypeError(f"unknown option {k!r}; expected one of {sorted(names) + ['nms']}")
        return new


def _opt(value: float | None, default: float, name: str, lo: float, hi: float) -> float:
    """``value`` (or the metadata ``default``) checked to lie in [lo, hi]."""
    v = default if value is None else value
    if not (lo <= float(v) <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v!r}")
    return v


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _resolve_model_path(path: str | os.PathLike[str] | None) -> Path:
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
    return p


__all__ = ["Detector", "PendingDetections", "check_frame", "DEFAULT_MODEL", "NMS_METHODS", "INPUT_NAME"]
