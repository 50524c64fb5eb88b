"""The backbone registry: the names ``PADetConfig.backbone`` accepts and the encoder each builds."""
from __future__ import annotations

from typing import Callable, TypeVar

from .base import ChannelFn, Encoder

E = TypeVar("E", bound=type[Encoder])

_REGISTRY: dict[str, type[Encoder]] = {}


def register_backbone(name: str) -> Callable[[E], E]:
    """Class decorator: ``@register_backbone("vgg16")`` makes ``name`` a backbone of the configs."""

    def add(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, Encoder)):
            raise TypeError(f"backbone {name!r}: {cls!r} is not an Encoder subclass")
        known = _REGISTRY.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"backbone {name!r} is already registered ({known.__module__}.{known.__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def unregister_backbone(name: str) -> None:
    """Remove ``name`` (for plug-ins and tests that register an encoder for a while)."""
    _REGISTRY.pop(name, None)


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def backbone_class(name: str) -> type[Encoder]:
    """The encoder class registered as ``name``; ValueError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; registered: {', '.join(backbone_names())}") from None


def build_backbone(name: str, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True,
                   batch_norm: bool = False) -> Encoder:  # fmt: skip
    """A new encoder ``name`` with ``num_taps`` outputs (see :class:`~training.backbones.base.Encoder`)."""
    return backbone_class(name)(num_taps=num_taps, ch=ch, extra_bn=extra_bn, batch_norm=batch_norm)
