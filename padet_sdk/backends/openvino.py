"""OpenVINO engine: OpenVINO IR (``.xml`` + ``.bin``), and PADet ``.onnx`` through the
DeformConv conversion rule of :mod:`padet_sdk.ov_extensions`.

Infer requests are not thread-safe, so the backend keeps a pool of them: an inference takes one
for its duration and gives it back, for synchronous calls from any thread and for asynchronous
submits alike. The pool size, ``num_requests``, is also the back-pressure of :meth:`submit`.
"""
from __future__ import annotations

import queue
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingMetadataError, ModelLoadError
from ..metadata import MetadataError
from ..model_file import check_model_file, metadata_from_ov_model
from ..util import first_line
from .base import Backend, EngineOptions, check_model_io


class OpenVINOBackend(Backend):
    """A model compiled by OpenVINO, with a pool of ``num_requests`` infer requests.

    ``precision_hint="auto"`` asks for f32 on fp32/fp16 models: OpenVINO would otherwise run
    bf16 on CPUs that have it, and its scores then differ from the fp32 ones the model was
    checked with. INT8 models keep the device default.
    """

    def __init__(self, path: Path, options: EngineOptions) -> None:
        super().__init__(path, options)
        try:
            import openvino as ov
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ModelLoadError("the OpenVINO backend needs the 'openvino' package (pip install openvino)") from e

        check_model_file(path)
        core = ov.Core()
        try:
            if path.suffix.lower() == ".onnx":
                from ..ov_extensions import read_onnx_with_extensions

                model = read_onnx_with_extensions(core, path)
            else:
                model = core.read_model(str(path))
        except Exception as e:
            raise ModelLoadError(f"OpenVINO cannot read {path}: {first_line(e)}") from e
        try:
            self.metadata = metadata_from_ov_model(model)
        except MetadataError as e:
            raise MissingMetadataError(f"{path}: {e}; export it with export/to_openvino.py or export/to_onnx.py") from e
        pshape = model.input(0).get_partial_shape()
        dims = [d.get_length() if d.is_static else -1 for d in pshape] if pshape.rank.is_static else []
        out_names = [o.get_any_name() for o in model.outputs]
        shapes = [[d.get_length() if d.is_static else -1 for d in o.get_partial_shape()] if o.get_partial_shape().rank.is_static
                  else [-1, -1, -1][: 2 + (n != "apm_scores")] for o, n in zip(model.outputs, out_names)]  # fmt: skip
        check_model_io(path, self.metadata, dims, out_names, shapes)
        self.static_batch = dims[0] if dims[0] != -1 else None
        self.compiled = self._compile(core, model, path, options)
        self._out_idx = [out_names.index(n) for n in self.metadata.outputs]
        num_requests = options.num_requests
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

    def _compile(self, core: Any, model: Any, path: Path, options: EngineOptions) -> Any:
        precision_hint = options.precision_hint
        if precision_hint == "auto":
            precision_hint = "f32" if self.metadata.precision in ("fp32", "fp16") else None
        config: dict[str, Any] = {}
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        if options.performance_hint:
            config["PERFORMANCE_HINT"] = options.performance_hint.upper()
        if options.num_threads:
            config["INFERENCE_NUM_THREADS"] = int(options.num_threads)
        config.update(options.ov_config or {})
        try:
            return core.compile_model(model, options.device, config)
        except Exception as e:
            raise ModelLoadError(f"OpenVINO cannot compile {path} for device {options.device!r} ({config}): {first_line(e)}") from e

    def close(self) -> None:
        """Refuse new inferences and wait (up to 2 min) for those in flight to give back their request."""
        super().close()
        taken = []
        try:
            for _ in range(self.num_requests):
                taken.append(self._pool.get(timeout=120))
        except queue.Empty:
            pass
        for req in taken:
            self._pool.put(req)

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        self.check_open()
        req = self._pool.get()  # as in submit(): no call between the take and the try
        try:
            self.check_open()
            res = req.infer({0: blob}, share_inputs=True)  # outputs are copies: safe after release
            return [res[i] for i in self._out_idx]
        finally:
            self._pool.put(req)

    def submit(self, blob: np.ndarray) -> "Future[list[np.ndarray]]":
        fut: Future = Future()

        def done(_userdata: Any) -> None:
            try:
                outs = [req.get_output_tensor(i).data.copy() for i in self._out_idx]
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                self._pool.put(req)
                fut.set_exception(e)
                return
            self._pool.put(req)
            fut.set_result(outs)

        # Nothing but an assignment between taking the request and the try: a KeyboardInterrupt
        # landing in between (Python checks for signals at calls) would lose the request, and
        # close() would then wait its 2 minutes for it (seen as a Ctrl-C that did not end).
        self.check_open()
        req = self._pool.get()  # blocks while all requests are busy (back-pressure)
        try:
            self.check_open()  # closed while this call waited
            req.set_callback(done, blob)  # userdata keeps the shared input alive until done
            req.start_async({0: blob}, share_inputs=True)
        except BaseException:
            self._pool.put(req)
            raise
        return fut

    @classmethod
    def video_tuning(cls, cores: int) -> dict[str, Any]:
        """The THROUGHPUT hint (several CPU streams, each running its own inference) with CPU
        pinning off: pinned stream threads cannot make room for the pipeline's threads."""
        return {"performance_hint": "THROUGHPUT", "ov_config": {"ENABLE_CPU_PINNING": False}}


__all__ = ["OpenVINOBackend"]
