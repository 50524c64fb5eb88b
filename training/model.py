"""The PADet network: encoder → decoder → per level APM + detection head (with FAM).

``forward`` returns raw outputs flattened to (B, N, K) in anchor order (level by level,
row-major locations, anchors of a location consecutive) — the same order as ``model.anchors``.
Loss (:mod:`training.losses`) and post-processing (:mod:`training.postprocess`) are separate.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .anchors import generate_anchors
from .apm import APM
from .backbones import build_backbone
from .config import PADetConfig
from .decoder import Decoder
from .fam import FAM
from .head import DetectionHead


class PADetOutputs(NamedTuple):
    """Raw network outputs. N = number of anchors, C = number of foreground classes."""

    apm_logits: Tensor | None  # (B, N) "is positive" logit; None without APM_C
    apm_deltas: Tensor | None  # (B, N, 4) anchor refinement; None without APM_R
    cls_logits: Tensor  # (B, N, C+1) class logits, column 0 = background
    det_deltas: Tensor  # (B, N, 4) detection deltas relative to the promoted anchors


def flatten_anchor_maps(x: Tensor, k: int) -> Tensor:
    """(B, A·K, H, W) → (B, H·W·A, K): the one place that fixes the output order."""
    b, _, h, w = x.shape
    return x.view(b, -1, k, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, k)


class PADet(nn.Module):
    def __init__(self, cfg: PADetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.encoder = build_backbone(
            cfg.backbone, num_taps=cfg.num_encoder_levels, ch=ch, extra_bn=cfg.extra_bn, batch_norm=cfg.backbone_bn
        )
        c = ch(cfg.decoder_channels)
        sizes = cfg.feature_sizes
        taps = [t.channels for t in self.encoder.output_shape()]
        self.decoder = Decoder(taps, c, cfg.last_level_padding(sizes[-2]), light=cfg.light_head)
        apa = cfg.anchors_per_location
        self.apm = None
        if cfg.use_apm_score or cfg.use_apm_reg:
            self.apm = nn.ModuleList(
                APM(c, a, use_score=cfg.use_apm_score, use_reg=cfg.use_apm_reg, light=cfg.light_head) for a in apa
            )
        self.heads = nn.ModuleList(
            DetectionHead(
                c, a, cfg.num_classes, fam_mode=cfg.fam if cfg.fam_on_level(i) else None, fam_detach=cfg.fam_detach,
                light=cfg.light_head, fam_groups=cfg.fam_conv_groups,
                fam_channels=None if cfg.fam_channels is None else ch(cfg.fam_channels),
            )
            for i, a in enumerate(apa)
        )
        anchors = torch.from_numpy(generate_anchors(sizes, cfg.anchors))
        self.register_buffer("anchors", anchors, persistent=False)
        self._init_weights()
        if cfg.backbone_weights:
            self.load_backbone(cfg.backbone_weights)

    # ------------------------------------------------------------------ init
    def _init_weights(self) -> None:
        """MSRA init for all convs (paper §3.3), small-normal prediction layers and prior biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        prior = self.cfg.prior_prob
        preds = [h.cls for h in self.heads] + [h.box for h in self.heads]
        if self.apm is not None:
            preds += [p for a in self.apm for p in (a.score, a.reg) if p is not None]
        for conv in preds:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        for head in self.heads:
            c1 = self.cfg.num_classes + 1
            bias = head.cls.bias.data.view(-1, c1)
            bias[:, 0] = math.log(self.cfg.num_classes * (1 - prior) / prior)
        if self.apm is not None:
            for a in self.apm:
                if a.score is not None:
                    nn.init.constant_(a.score.bias, -math.log((1 - prior) / prior))
        for m in self.modules():
            if isinstance(m, FAM):
                m.reset_offsets()

    def load_backbone(self, path: str | Path) -> list[str]:
        """Load torchvision ImageNet weights for the encoder from a local file (never downloads);
        see :meth:`training.backbones.Encoder.load_pretrained`."""
        return self.encoder.load_pretrained(path)

    # --------------------------------------------------------------- forward
    def forward(self, images: Tensor) -> PADetOutputs:
        """images: Tensor[B, 3, S, S], normalised as ``cfg.mean/std`` in ``cfg.pixel_order``."""
        s = self.cfg.input_size
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (s, s):
            raise ValueError(f"expected images of shape (B, 3, {s}, {s}), got {tuple(images.shape)}")
        feats = self.decoder(self.encoder(images))
        apm_s, apm_r, cls, box = [], [], [], []
        for i, (f, head) in enumerate(zip(feats, self.heads)):
            score = reg = None
            if self.apm is not None:
                score, reg = self.apm[i](f)
                if score is not None:
                    apm_s.append(flatten_anchor_maps(score, 1))
                if reg is not None:
                    apm_r.append(flatten_anchor_maps(reg, 4))
            c, b = head(f, reg)
            cls.append(flatten_anchor_maps(c, self.cfg.num_classes + 1))
            box.append(flatten_anchor_maps(b, 4))
        return PADetOutputs(
            apm_logits=torch.cat(apm_s, 1).squeeze(-1) if apm_s else None,
            apm_deltas=torch.cat(apm_r, 1) if apm_r else None,
            cls_logits=torch.cat(cls, 1),
            det_deltas=torch.cat(box, 1),
        )

    @torch.no_grad()
    def postprocess(
        self, outputs: PADetOutputs, image_sizes: list[tuple[int, int]] | None = None, **overrides: Any
    ) -> list[dict[str, Tensor]]:
        """Reference post-processing (θ filter, score ≥ conf, class-wise soft-NMS, top max_det).

        See :func:`training.postprocess.postprocess`. ``overrides`` (``conf=``, ``nms=``, ... the
        fields of :class:`~padet_sdk.options.PostprocessOptions`) replace the config's values.
        """
        from .postprocess import postprocess

        options = self.cfg.postprocess.replace(**overrides)
        return postprocess(outputs, self.anchors, image_sizes, options, self.cfg.anchors.variances)


def build_model(preset: str = "vgg16_384", num_classes: int = 80, **overrides: Any) -> PADet:
    """Build a PADet from a preset name (see ``training.PRESETS``) with config fields overridden,
    e.g. ``build_model("vgg16_384", 3, width=0.125, input_size=256)``."""
    from .config import make_config

    return PADet(make_config(preset, num_classes, **overrides))
