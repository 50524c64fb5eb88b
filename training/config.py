"""Typed configuration of a PADet network.

Every choice the paper leaves open (see ``../shared/spec/architecture.md``, the "[choice]"
marks) is a field here, so that it can be changed and compared. Configs are frozen,
keyword-only dataclasses; a part of the network receives the values it needs, never the
whole config.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from padet_sdk.options import LEGACY_NAMES, PostprocessOptions

from .backbones import backbone_class, backbone_names

#: How the FAM gets its deformable-conv offsets (paper Table 1 / Figure 5).
#: ``none``: plain 3x3 conv ("w/o alignment"); ``implicit``: from the head features (standard DCN);
#: ``explicit_l`` / ``explicit_s`` / ``explicit_ls``: F(X_l), F(X_s), F([X_l; X_s]);
#: ``disentangled``: c + Δs = F(X_l) + G(X_s) (option (c), the paper's default).
FamMode = Literal["none", "implicit", "explicit_l", "explicit_s", "explicit_ls", "disentangled"]
FAM_MODES: tuple[str, ...] = ("none", "implicit", "explicit_l", "explicit_s", "explicit_ls", "disentangled")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: SSD's COCO anchor scales (fractions of the input size), spec "Anchors".
SSD_SCALES_6 = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
SSD_SCALES_7 = (0.04, 0.10, 0.26, 0.42, 0.58, 0.74, 0.90, 1.06)


@dataclass(frozen=True, kw_only=True)
class AnchorConfig:
    """SSD-style anchors: per level one scale s_k, an extra 1' of size sqrt(s_k s_{k+1}),
    and aspect ratios (w/h). ``scales`` has one more entry than there are levels (s_{k+1} of
    the last level)."""

    scales: tuple[float, ...]
    #: ratios besides 1 and 1' on the first ``six_ratio_levels`` levels / on the rest.
    extra_ratios_big: tuple[float, ...] = (2.0, 0.5, 3.0, 1.0 / 3.0)
    extra_ratios_small: tuple[float, ...] = (2.0, 0.5)
    six_ratio_levels: int = 4
    variances: tuple[float, float] = (0.1, 0.2)

    @property
    def num_levels(self) -> int:
        return len(self.scales) - 1

    def ratios(self, level: int) -> tuple[float, ...]:
        """Aspect ratios at ``level`` after 1 and 1' (SSD order: 1, 1', 2, 1/2, 3, 1/3)."""
        return self.extra_ratios_big if level < self.six_ratio_levels else self.extra_ratios_small

    def anchors_per_location(self, level: int) -> int:
        return 2 + len(self.ratios(level))


@dataclass(frozen=True, kw_only=True)
class PADetConfig:
    """Everything that defines a PADet network, its targets and its post-processing."""

    name: str = "custom"
    #: a name of :mod:`training.backbones`' registry
    backbone: str = "vgg16"
    input_size: int = 384
    num_classes: int = 80
    #: channel multiplier for encoder and decoder; 1.0 is the paper's network. A narrow variant
    #: (e.g. 0.125) is the *same* architecture, used by tests and the CPU demo.
    width: float = 1.0
    decoder_channels: int = 256
    #: number of decoder levels (6 at 384, 7 at 512: one more extra stage as SSD512 has).
    num_levels: int = 6
    anchors: AnchorConfig = field(default_factory=lambda: AnchorConfig(scales=SSD_SCALES_6))

    # --- ablation switches (paper Tables 1-2) ---
    use_apm_score: bool = True  # APM_C: "is positive" branch + θ rule
    use_apm_reg: bool = True  # APM_R: anchor refinement branch
    fam: FamMode = "disentangled"
    #: [choice] stop FAM gradients from flowing into the APM regression (Guided Anchoring does).
    fam_detach: bool = False
    #: [choice] the last levels are too small for FAM (paper §3.3: the last two).
    fam_skip_last: int = 2
    #: groups of the FAM's deformable conv (1: the paper's full 3x3 conv; ``"depthwise"``: one
    #: per channel). Grouped, a 1x1 conv follows it (a depthwise-separable deformable conv).
    fam_groups: int | Literal["depthwise"] = 1
    #: [choice] channels of the FAM's deformable conv (width-scaled); None: the decoder's. Fewer: a
    #: 1x1 conv down before it and one back up after it (a bottleneck; the light presets' FAM).
    fam_channels: int | None = None
    #: SSDLite-style light decoder and heads (depthwise-separable 3x3 convs, 1x1 predictions) for
    #: mobile backbones; False is the paper's network.
    light_head: bool = False

    # --- matching / loss ---
    pos_iou: float = 0.5
    neg_iou: float = 0.3
    # θ (the APM rule's easy-negative threshold in the loss) is ``postprocess.theta``: one θ for
    # training and inference, as in the paper.
    #: [choice] None = no hard-negative mining (paper); a number = OHEM neg:pos ratio (e.g. 3).
    neg_pos_ratio: float | None = None
    smooth_l1_beta: float = 1.0
    #: [choice] initial foreground probability of the APM score and the classifier (RetinaNet's
    #: prior), so the summed BCE/CE over all anchors starts small. Kept clearly above ``theta``: at
    #: θ every anchor would start on the θ rule's threshold, and float noise (memory layout, process
    #: count) would decide which negatives the detection loss ignores. Above θ, the rule ignores
    #: only what the APM has learnt is easy.
    prior_prob: float = 0.02

    # --- encoder ---
    #: [choice] BatchNorm on the encoder's extra stages (new layers).
    extra_bn: bool = True
    #: [choice] BatchNorm after every backbone conv, for backbones with a layout without it (VGG:
    #: torchvision's ``vgg16_bn``). The paper's VGG has none; with it a network trained from scratch
    #: (no ImageNet file) learns far faster.
    backbone_bn: bool = False
    backbone_weights: str | None = None

    # --- input normalisation (written into exported models) ---
    pixel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    # --- post-processing (paper §3.3 "Inference"), written into exported models ---
    postprocess: PostprocessOptions = field(default_factory=PostprocessOptions)

    def __post_init__(self) -> None:
        if self.backbone not in backbone_names():
            raise ValueError(f"backbone must be one of {backbone_names()}, got {self.backbone!r}")
        backbone_class(self.backbone).num_extra_stages(self.num_encoder_levels)  # enough levels for its taps
        if self.fam not in FAM_MODES:
            raise ValueError(f"fam must be one of {FAM_MODES}, got {self.fam!r}")
        if self.fam.startswith("explicit") or self.fam == "disentangled":
            if not self.use_apm_reg:
                raise ValueError(
                    f"fam={self.fam!r} takes its offsets from the APM regression features, "
                    "so it needs use_apm_reg=True (use fam='none' or 'implicit' without APM_R)"
                )
        if self.fam_channels is not None and (not isinstance(self.fam_channels, int) or self.fam_channels < 1):
            raise ValueError(f"fam_channels must be None or a positive int, got {self.fam_channels!r}")
        if self.fam_groups != "depthwise" and (
            not isinstance(self.fam_groups, int) or self.fam_groups < 1 or self.fam_width % self.fam_groups
        ):  # fmt: skip
            raise ValueError(f"fam_groups must be 'depthwise' or a positive divisor of the FAM's "
                             f"{self.fam_width} channels, got {self.fam_groups!r}")  # fmt: skip
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.input_size < 64 or self.input_size % 8:
            raise ValueError(f"input_size must be a multiple of 8 and >= 64, got {self.input_size}")
        if self.anchors.num_levels != self.num_levels:
            raise ValueError(
                f"anchors.scales defines {self.anchors.num_levels} levels but num_levels={self.num_levels}"
            )
        if not 0 <= self.neg_iou <= self.pos_iou <= 1:
            raise ValueError("need 0 <= neg_iou <= pos_iou <= 1")

    # --- derived values ---
    def channels(self, c: int) -> int:
        """Width-scaled channel count (at least 8)."""
        return max(8, int(round(c * self.width)))

    @property
    def fam_width(self) -> int:
        """Channels of the FAM's deformable conv."""
        return self.channels(self.decoder_channels if self.fam_channels is None else self.fam_channels)

    @property
    def fam_conv_groups(self) -> int:
        """``fam_groups`` as a number."""
        return self.fam_width if self.fam_groups == "depthwise" else self.fam_groups

    @property
    def num_encoder_levels(self) -> int:
        """E_1..E_{L-1}; the last decoder level is a down-sampled copy of the one before."""
        return self.num_levels - 1

    @property
    def feature_sizes(self) -> tuple[int, ...]:
        """Spatial size of D_1..D_L, e.g. (48, 24, 12, 6, 3, 1) at 384: the encoder's declared
        tap sizes, then D_L."""
        sizes = list(backbone_class(self.backbone).tap_sizes(self.input_size, self.num_encoder_levels))
        sizes.append(self.last_level_size(sizes[-1]))
        return tuple(sizes)

    @staticmethod
    def last_level_padding(prev: int) -> int:
        """[choice] D_L from D_{L-1}: a valid 3x3 on an odd map (3 -> 1 at 384), pad 1 on an even
        one (2 -> 1 at 512); stride 2 in both cases."""
        return 0 if prev % 2 == 1 and prev >= 3 else 1

    @classmethod
    def last_level_size(cls, prev: int) -> int:
        p = cls.last_level_padding(prev)
        return (prev + 2 * p - 3) // 2 + 1

    @property
    def anchors_per_location(self) -> tuple[int, ...]:
        return tuple(self.anchors.anchors_per_location(i) for i in range(self.num_levels))

    @property
    def num_anchors(self) -> int:
        return sum(a * f * f for a, f in zip(self.anchors_per_location, self.feature_sizes))

    def fam_on_level(self, level: int) -> bool:
        """Whether level has a FAM (with ``fam='none'`` it is a plain 3x3 conv there)."""
        return level < self.num_levels - self.fam_skip_last

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PADetConfig":
        """Inverse of :meth:`to_dict` (checkpoints store configs as plain dicts)."""
        d = dict(d)
        if "postprocess" not in d and LEGACY_NAMES.keys() & d.keys():  # checkpoints before PostprocessOptions
            d["postprocess"] = PostprocessOptions.from_legacy(d)
            d = {k: v for k, v in d.items() if k not in LEGACY_NAMES}
        if isinstance(d.get("postprocess"), dict):
            d["postprocess"] = PostprocessOptions.from_dict(d["postprocess"])
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PADetConfig fields: {sorted(unknown)}")
        if isinstance(d.get("anchors"), dict):
            a = dict(d["anchors"])
            for k in ("scales", "extra_ratios_big", "extra_ratios_small", "variances"):
                if k in a:
                    a[k] = tuple(a[k])
            d["anchors"] = AnchorConfig(**a)
        for k in ("mean", "std"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def replace(self, **changes: Any) -> "PADetConfig":
        return replace(self, **changes)


def _preset(name: str, backbone: str, size: int) -> PADetConfig:
    levels = 6 if size <= 448 else 7
    scales = SSD_SCALES_6 if levels == 6 else SSD_SCALES_7
    return PADetConfig(
        name=name, backbone=backbone, input_size=size, num_levels=levels, anchors=AnchorConfig(scales=scales)
    )


def _light_preset(name: str, backbone: str, size: int) -> PADetConfig:
    """A mobile backbone with the light (depthwise-separable) decoder and heads, 96 decoder
    channels and a 48-channel bottleneck FAM: the paper's structure at SSDLite's cost (OpenVINO
    INT8, 1 thread, 2-core EPYC: 57 ms at 96 channels vs 64 ms at 128, SSDlite320 FP32 39 ms)."""
    return _preset(name, backbone, size).replace(decoder_channels=96, light_head=True, fam_channels=48)


PRESETS: dict[str, PADetConfig] = {
    "vgg16_384": _preset("vgg16_384", "vgg16", 384),
    "vgg16_512": _preset("vgg16_512", "vgg16", 512),
    "resnet101_384": _preset("resnet101_384", "resnet101", 384),
    "resnet101_512": _preset("resnet101_512", "resnet101", 512),
    "mobilenetv3_320": _light_preset("mobilenetv3_320", "mobilenet_v3_large", 320),
    "mobilenetv3_384": _light_preset("mobilenetv3_384", "mobilenet_v3_large", 384),
    "mobilenetv2_320": _light_preset("mobilenetv2_320", "mobilenet_v2", 320),
    # SSDLite's taps (first map at stride 16): the real-time one, at some cost on small objects
    "mobilenetv3s16_320": _light_preset("mobilenetv3s16_320", "mobilenet_v3_large_s16", 320),
    # ResNet-18 with the paper's (dense) decoder and heads at half VGG's channels, as its extras
    "resnet18_320": _preset("resnet18_320", "resnet18", 320).replace(decoder_channels=128),
    # the same at a quarter of the channels: the light preset that trains from scratch on a CPU
    # (no ImageNet file fits a narrow network); plain 3x3 convs run INT8 on every CPU path
    "resnet18q_320": _preset("resnet18q_320", "resnet18", 320).replace(decoder_channels=128, width=0.25),
}


def make_config(preset: str, num_classes: int = 80, **overrides: Any) -> PADetConfig:
    """A preset with ``num_classes`` and any field overridden.

    Changing ``input_size`` re-derives the level count and anchor scales unless they are given
    too, so ``make_config("vgg16_384", 3, input_size=256, width=0.125)`` is a narrow, small
    variant of the same architecture.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    if "input_size" in overrides and "num_levels" not in overrides:
        size = overrides["input_size"]
        levels = 6 if size <= 448 else 7
        overrides["num_levels"] = levels
        if "anchors" not in overrides and levels != base.num_levels:
            overrides["anchors"] = AnchorConfig(scales=SSD_SCALES_6 if levels == 6 else SSD_SCALES_7)
    return replace(base, num_classes=num_classes, **overrides)
