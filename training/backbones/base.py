"""The encoder contract: all that the rest of PADet knows about a backbone.

The decoder takes its input channels, ``PADetConfig.feature_sizes`` (hence the anchors) its map
sizes, and the export CLIs their default file names from what an encoder declares here, never
from which network it is (as detectron2's ``Backbone.output_shape()``). See
:mod:`training.backbones` for the registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..layers import ConvBNReLU
from ..torch_files import load_weights_only

#: ``ch(c)``: the width-scaled channel count of a layer that has ``c`` in the full-width network
ChannelFn = Callable[[int], int]


@dataclass(frozen=True)
class TapSpec:
    """One encoder output E_l: its channels, and its stride (input pixels per feature pixel)."""

    channels: int
    stride: int


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


def copy_by_name(module: nn.Module, state: dict[str, Tensor], prefix: str, hint: str,
                 skip: tuple[str, ...] = ()) -> list[str]:
    """Copy ``state[prefix + k]`` into each tensor ``k`` of ``module``'s state dict (but those
    starting with one of ``skip``: layers of ours, not torchvision's) and return the names read;
    ValueError naming the first tensor that is missing or has another shape, then ``hint``."""
    own = module.state_dict()
    loaded = []
    for k, v in own.items():
        if k.startswith(skip):
            continue
        src = state.get(prefix + k)
        if src is None or src.shape != v.shape:
            raise ValueError(f"backbone weights do not fit: {prefix}{k} is {None if src is None else tuple(src.shape)}, "
                             f"expected {tuple(v.shape)} ({hint})")  # fmt: skip
        own[k] = src
        loaded.append(prefix + k)
    module.load_state_dict(own)
    return loaded


def extra_stage(cin: int, mid: int, cout: int, *, bn: bool) -> nn.Sequential:
    """SSD's extra layer, CBR1-``mid`` → CBR3-``cout`` stride 2 pad 1: one more tap at twice the
    stride of the one before, its size that one's halved and rounded up."""
    return nn.Sequential(ConvBNReLU(cin, mid, 1, bn=bn), ConvBNReLU(mid, cout, 3, 2, 1, bn=bn))


class Encoder(nn.Module):
    """Base of every PADet encoder. A subclass

    - declares ``strides``, those of the backbone's own taps (E_1 first), and ``rounding``: how a
      tap's size rounds when its stride does not divide the input (``"floor"`` where the network
      pools, ``"ceil"`` where it downsamples with padded stride-2 convs);
    - is built as ``cls(*, num_taps, ch, extra_bn, batch_norm)``: ``ch`` a :data:`ChannelFn`,
      ``extra_bn`` BatchNorm in the extra stages, ``batch_norm`` BatchNorm after every backbone
      conv (for networks that have a layout without it). It adds ``num_taps - len(strides)``
      :func:`extra_stage` s and sets ``self.out_channels``, one count per tap;
    - maps images Tensor[B, 3, S, S] to ``num_taps`` maps, E_l of shape (B, out_channels[l], n_l,
      n_l) with n_l = ``tap_sizes(S, num_taps)[l]``;
    - if ImageNet weights exist for it, names torchvision's file in ``weights_file`` and copies
      such a state dict in :meth:`load_imagenet` (:meth:`load_pretrained` reads the local file).
    """

    strides: ClassVar[tuple[int, ...]] = ()
    rounding: ClassVar[Literal["floor", "ceil"]] = "ceil"
    #: the name in default output files (``padet_<short_name><S>.onnx``); None: the registered name
    short_name: ClassVar[str | None] = None
    #: the registry name (set by :func:`~training.backbones.register_backbone`)
    name: ClassVar[str] = ""
    #: torchvision's ImageNet weight file, named when ``load_pretrained`` cannot find the file
    weights_file: str | None = None
    out_channels: list[int]

    @classmethod
    def num_extra_stages(cls, num_taps: int) -> int:
        if num_taps < len(cls.strides):
            raise ValueError(f"the {cls.name or cls.__name__} encoder has {len(cls.strides)} taps before its extra "
                             f"stages; {num_taps} asked for")  # fmt: skip
        return num_taps - len(cls.strides)

    @classmethod
    def tap_strides(cls, num_taps: int) -> tuple[int, ...]:
        """Stride of E_1..E_n: the declared ones, then doubling at each extra stage."""
        strides = list(cls.strides)
        for _ in range(cls.num_extra_stages(num_taps)):
            strides.append(2 * strides[-1])
        return tuple(strides)

    @classmethod
    def tap_sizes(cls, input_size: int, num_taps: int) -> tuple[int, ...]:
        """Spatial size of E_1..E_n for a square input of ``input_size`` pixels."""
        div = (lambda n, d: n // d) if cls.rounding == "floor" else _ceil_div
        sizes = [div(input_size, s) for s in cls.strides]
        for _ in range(cls.num_extra_stages(num_taps)):
            sizes.append(_ceil_div(sizes[-1], 2))
        return tuple(sizes)

    def output_shape(self) -> tuple[TapSpec, ...]:
        """Channels and stride of each tap, E_1 first."""
        strides = self.tap_strides(len(self.out_channels))
        return tuple(TapSpec(c, s) for c, s in zip(self.out_channels, strides))

    def forward(self, images: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def with_extra_taps(self, x: Tensor, feats: list[Tensor]) -> list[Tensor]:
        """``feats`` plus the taps of the extra stride-2 stages (``self.extras``) run on ``x``."""
        for stage in self.extras:
            x = stage(x)
            feats.append(x)
        return feats

    def load_pretrained(self, path: str | Path) -> list[str]:
        """Load ImageNet weights from the local file ``path`` (never downloads); returns the names
        of the parameters set. FileNotFoundError (naming ``weights_file``) when there is no such
        file, ValueError when its weights do not fit this encoder or the file is not plain tensors
        (:class:`~training.torch_files.WeightsFileError`)."""
        path = Path(path)
        if not path.is_file():
            hint = ""
            if self.weights_file:
                hint = f"put torchvision's ImageNet {self.name} file (e.g. {self.weights_file}) there, or "
            raise FileNotFoundError(f"backbone weights not found: {path}. PADet never downloads weights; {hint}"
                                    "set backbone_weights=None to train from scratch.")  # fmt: skip
        state = load_weights_only(path, "backbone weights")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        return self.load_imagenet(state)

    def load_imagenet(self, state: dict[str, Tensor]) -> list[str]:
        """Copy a torchvision ImageNet state dict into this encoder; returns the names set."""
        raise ValueError(f"the {self.name} encoder has no ImageNet weight layout; set backbone_weights=None")

