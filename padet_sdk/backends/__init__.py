"""Inference engines behind one contract (:class:`Backend`) and one table (below).

To add an engine: write ``padet_sdk/backends/<engine>.py`` with a :class:`Backend` subclass
and add one ``register_backend`` line to this table. ``Detector`` and ``stream()`` need no
change. The engines import their packages only when a model is loaded, so importing this
package is cheap.
"""
from .base import Backend, EngineOptions, check_model_io
from .onnxruntime import OnnxRuntimeBackend
from .openvino import OpenVINOBackend
from .registry import (
    BackendEntry, backend_class, backend_names, backends_for, choose_backend, register_backend, unregister_backend,
)

# The table. Order is preference for backend="auto": a .onnx runs on onnxruntime when it is
# installed; OpenVINO reads IR, and ONNX through the DeformConv rule.
register_backend("onnxruntime", OnnxRuntimeBackend, suffixes=(".onnx",), requires="onnxruntime")
register_backend("openvino", OpenVINOBackend, suffixes=(".xml", ".onnx"), requires="openvino")

__all__ = [
    "Backend", "BackendEntry", "EngineOptions", "OnnxRuntimeBackend", "OpenVINOBackend", "backend_class",
    "backend_names", "backends_for", "check_model_io", "choose_backend", "register_backend", "unregister_backend",
]
