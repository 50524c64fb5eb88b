"""The contract every inference engine of the SDK fulfils, so that ``Detector`` never asks
which engine it runs on.

An engine is a :class:`Backend` subclass in its own module of this package, listed once in the
table of ``padet_sdk/backends/__init__.py`` (:func:`~padet_sdk.backends.registry.register_backend`).
It loads one model file, reads the PADet metadata from it and runs the graph: blob in, raw
outputs out. Pre-processing (:mod:`padet_sdk.preprocess`) and post-processing
(:mod:`padet_sdk.native`) are the Detector's, the same for every engine.

Shapes (see :mod:`padet_sdk.metadata`): blob (B, 3, S, S) float32; outputs, in the order of
``metadata.outputs``, (B, N) or (B, N, K) float32 with N anchors.
"""
from __future__ import annotations

import abc
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..errors import DetectorClosedError, MissingMetadataError, ModelLoadError
from ..metadata import ModelMetadata


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """How to run the model, as ``Detector`` received it; an engine uses what it understands
    and raises ``ValueError`` for a value it cannot honour (e.g. ``ov_config`` off OpenVINO).

    Attributes:
        device: "CPU", "GPU", ... in the engine's vocabulary.
        precision_hint: "auto", None (device default) or an engine precision ("f32", "bf16").
        num_requests: inferences that may run at once; None = the engine's choice (at least 2).
        num_threads: threads per inference; None = the engine's choice (all cores).
        performance_hint: "LATENCY" or "THROUGHPUT"; None = device default.
        ov_config: further OpenVINO compile properties, applied last.
    """

    device: str = "CPU"
    precision_hint: str | None = "auto"
    num_requests: int | None = None
    num_threads: int | None = None
    performance_hint: str | None = None
    ov_config: Mapping[str, Any] | None = None


class Backend(abc.ABC):
    """One loaded model on one engine.

    After ``__init__`` an engine has set:

    - ``metadata``: the :class:`~padet_sdk.metadata.ModelMetadata` read from the file;
    - ``static_batch``: the graph's fixed batch size, or None for a dynamic batch axis (the
      Detector then pads or splits batches itself);
    - ``num_requests``: how many inferences may run at once (the bound of :meth:`submit`).

    :meth:`infer` must be thread-safe: one Detector may be called from several threads.
    ``__init__`` raises :class:`~padet_sdk.errors.ModelLoadError` for a file it cannot load and
    :class:`~padet_sdk.errors.MissingMetadataError` when the file has no PADet metadata.
    """

    metadata: ModelMetadata
    static_batch: int | None = None
    num_requests: int = 2
    #: names the worker threads of the default :meth:`submit` (seen in profilers and dumps)
    thread_name_prefix: ClassVar[str] = "padet-infer"

    def __init__(self, path: Path, options: EngineOptions) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (then calls raise :class:`DetectorClosedError`)."""
        return getattr(self, "_closed", False)  # an engine that skipped Backend.__init__: never

    def check_open(self) -> None:
        if self.closed:
            raise DetectorClosedError("the detector was closed; create a new Detector to run more inferences")

    @abc.abstractmethod
    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        """Raw outputs of ``blob`` (B, 3, S, S), in ``metadata.outputs`` order; synchronous."""

    def submit(self, blob: np.ndarray) -> "Future[list[np.ndarray]]":
        """:meth:`infer` started asynchronously. This default runs it on ``num_requests``
        worker threads; an engine with its own asynchronous API overrides it.
        Raises :class:`DetectorClosedError` after :meth:`close`."""
        with self._executor_lock:  # held while submitting, so close() cannot shut the pool down in between
            self.check_open()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.num_requests, thread_name_prefix=self.thread_name_prefix)
            return self._executor.submit(self.infer, blob)

    def close(self) -> None:
        """Refuse new work, wait for the inferences in flight, release worker threads (the model
        itself is freed with the object). Safe from any thread, and more than once."""
        with self._executor_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    @classmethod
    def video_tuning(cls, cores: int) -> dict[str, Any]:
        """``Detector`` keyword arguments that :meth:`Detector.for_video
        <padet_sdk.detector.Detector.for_video>` starts from on a machine with ``cores`` cores.

        Video wants several narrower inferences side by side rather than one inference on all
        cores, because the pipeline's decode, draw and encode threads preempt a wide one
        mid-layer. This default is one single-threaded inference per core.
        """
        return {"num_threads": 1, "num_requests": max(2, cores)}


def check_model_io(
    path: Path, meta: ModelMetadata, input_shape: Sequence[Any], output_names: Sequence[str],
    output_shapes: Sequence[Sequence[Any]] | None = None,
) -> None:
    """Fail at load time, with a clear message, when graph and metadata disagree
    (shapes with -1 for dynamic dimensions): the input size, the outputs' names and, given
    ``output_shapes`` (in ``output_names`` order), their anchor count and class count."""
    missing = [n for n in meta.outputs if n not in output_names]
    if missing:
        raise ModelLoadError(f"{path}: outputs {missing} named in the PADet metadata are not in the graph ({list(output_names)})")
    for name in meta.outputs if output_shapes is not None else ():
        got = list(output_shapes[list(output_names).index(name)])  # type: ignore[index]
        want = meta.output_shape(name)
        if len(got) != 1 + len(want):
            raise ModelLoadError(f"{path}: output {name} has shape {got}, expected (B, {', '.join(map(str, want))})")
        n, k = got[1], (got[2] if len(got) > 2 else None)
        if isinstance(n, int) and n not in (-1, want[0]):
            raise MissingMetadataError(
                f"{path}: output {name} has {n} anchors but the metadata's anchors (feature_sizes, anchor_scales, "
                f"anchor_extra_ratios) number {want[0]}; the metadata does not belong to this graph"
            )
        if name == "cls_scores" and isinstance(k, int) and k not in (-1, want[1]):
            raise MissingMetadataError(
                f"{path}: output cls_scores has {k} columns (background + {k - 1} classes) but class_names "
                f"lists {meta.num_classes}: {list(meta.class_names)}"
            )
    s = meta.input_size
    if len(input_shape) != 4 or any(isinstance(d, int) and d not in (want, -1) for d, want in zip(input_shape[1:], (3, s, s))):
        raise ModelLoadError(f"{path}: input shape {list(input_shape)} does not match metadata input_size {s} (expected (B, 3, {s}, {s}))")


__all__ = ["Backend", "EngineOptions", "check_model_io"]
