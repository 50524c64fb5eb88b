"""onnxruntime engine for ``.onnx`` files (CPU, or CUDA where the CUDA provider is installed).

``InferenceSession.run`` is thread-safe, so synchronous calls need no pool; asynchronous
submits use the default worker threads of :class:`~padet_sdk.backends.base.Backend`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingMetadataError, ModelLoadError
from ..metadata import METADATA_KEY, MetadataError, ModelMetadata
from ..util import first_line
from .base import Backend, EngineOptions, check_model_io


class OnnxRuntimeBackend(Backend):
    """An onnxruntime session; ``num_requests`` worker threads for :meth:`submit`.

    ``performance_hint`` and ``precision_hint`` have no onnxruntime equivalent and are ignored;
    ``ov_config`` is refused. For video it takes the default tuning, one single-threaded
    inference per core.
    """

    thread_name_prefix = "padet-ort"

    def __init__(self, path: Path, options: EngineOptions) -> None:
        super().__init__(path, options)
        if options.ov_config:
            raise ValueError("ov_config applies to the OpenVINO backend only, this detector uses onnxruntime")
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ModelLoadError("the onnxruntime backend needs the 'onnxruntime' package (pip install onnxruntime)") from e
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if options.num_threads:
            opts.intra_op_num_threads = int(options.num_threads)
        # no busy-waiting: spinning intra-op threads take the cores that the pre- and
        # post-processing of the other frames in flight need
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        dev = options.device.upper()
        available = ort.get_available_providers()
        if dev == "CPU":
            providers = ["CPUExecutionProvider"]
        elif dev in ("GPU", "CUDA") and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            raise ModelLoadError(f"onnxruntime has no provider for device {options.device!r} (available: {available})")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:
            raise ModelLoadError(f"onnxruntime cannot load {path}: {first_line(e)}") from e
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise MissingMetadataError(
                f"{path} has no PADet metadata (ONNX metadata_props[{METADATA_KEY!r}]); export it with export/to_onnx.py"
            )
        try:
            self.metadata = ModelMetadata.from_json(text)
        except MetadataError as e:
            raise MissingMetadataError(f"{path}: {e}") from e
        inp = self.session.get_inputs()[0]
        dims = [d if isinstance(d, int) else -1 for d in inp.shape]
        outs = self.session.get_outputs()
        shapes = [[d if isinstance(d, int) else -1 for d in o.shape] for o in outs]
        check_model_io(path, self.metadata, dims, [o.name for o in outs], shapes)
        self.static_batch = dims[0] if dims and dims[0] != -1 else None
        self._input = inp.name
        self.num_requests = int(options.num_requests or 2)

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(self.metadata.outputs), {self._input: blob})


__all__ = ["OnnxRuntimeBackend"]
