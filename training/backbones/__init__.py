"""PADet encoders: one contract (:class:`Encoder`, which declares its taps) and one registry.

A new backbone is one module here whose :class:`Encoder` subclass carries
``@register_backbone("name")``, plus its line in the imports below.
"""
from __future__ import annotations

from .base import ChannelFn, Encoder, TapSpec, extra_stage
from .registry import backbone_class, backbone_names, build_backbone, register_backbone, unregister_backbone

from . import mobilenet, resnet, vgg  # noqa: E402, F401  (the built-in encoders register themselves)

__all__ = [
    "ChannelFn", "Encoder", "TapSpec", "extra_stage", "backbone_class", "backbone_names", "build_backbone",
    "register_backbone", "unregister_backbone",
]  # fmt: skip
