"""The encoder contract (training/backbones): declared taps match what the encoders compute, and
a backbone defined and registered outside the package trains, exports and runs in the SDK."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from export.cli_common import default_stem
from training.backbones import (
    ChannelFn, Encoder, backbone_class, backbone_names, build_backbone, extra_stage, register_backbone,
    unregister_backbone,
)
from training.config import PADetConfig
from training.layers import ConvBNReLU
from training.losses import padet_loss
from training.model import PADet


class TinyEncoder(Encoder):
    """Three strided convs: taps at strides 4 and 8 (not VGG's 8 and 16, so nothing that still
    assumed those could pass), then the usual extra stages."""

    strides = (4, 8)
    rounding = "ceil"

    def __init__(self, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        c1, c2 = ch(16), ch(32)
        self.stem = nn.Sequential(ConvBNReLU(3, c1, 3, 2, 1), ConvBNReLU(c1, c1, 3, 2, 1))
        self.down = ConvBNReLU(c1, c2, 3, 2, 1)
        n = self.num_extra_stages(num_taps)
        self.extras = nn.ModuleList(extra_stage(c2, ch(16), c2, bn=extra_bn) for _ in range(n))
        self.out_channels = [c1, c2] + [c2] * n

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.stem(images)
        feats = [x]
        x = self.down(x)
        feats.append(x)
        for e in self.extras:
            x = e(x)
            feats.append(x)
        return feats


@pytest.fixture
def tiny_backbone():
    name = "tiny_test"
    register_backbone(name)(TinyEncoder)
    yield name
    unregister_backbone(name)


def _tiny_config(backbone: str) -> PADetConfig:
    # prior_prob 0.5: an untrained network then scores above conf_threshold, so detections come back
    return PADetConfig(name="tiny96", backbone=backbone, input_size=96, num_classes=2, width=0.125, prior_prob=0.5)


@pytest.mark.parametrize("name", ["vgg16", "resnet101"])
@pytest.mark.parametrize("size", [136, 200])
def test_builtin_encoders_compute_the_taps_they_declare(name, size):
    """Sizes that the strides do not divide: VGG pools (rounds down), ResNet's padded strided
    convs round up; the config's feature sizes (hence the anchors) must follow each."""
    cfg = PADetConfig(backbone=name, input_size=size, width=0.125)
    enc = build_backbone(name, num_taps=cfg.num_encoder_levels, ch=cfg.channels).eval()
    with torch.no_grad():
        feats = enc(torch.zeros(1, 3, size, size))
    shape = enc.output_shape()
    assert [f.shape[1] for f in feats] == [t.channels for t in shape]
    assert tuple(f.shape[-1] for f in feats) == cfg.feature_sizes[:-1] == type(enc).tap_sizes(size, len(feats))
    assert [t.stride for t in shape][: len(enc.strides)] == list(enc.strides)
    assert all(b.stride == 2 * a.stride for a, b in zip(shape, shape[1:]))


def test_registry_names_the_known_backbones_and_refuses_a_second_class_for_a_name():
    assert {"vgg16", "resnet101"} <= set(backbone_names())
    with pytest.raises(ValueError, match="registered: .*resnet101.*vgg16"):
        backbone_class("nope")
    with pytest.raises(ValueError, match="backbone must be one of"):
        PADetConfig(backbone="nope")
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("vgg16")(TinyEncoder)
    with pytest.raises(TypeError, match="not an Encoder"):
        register_backbone("plain")(nn.Conv2d)


def test_default_file_names_come_from_the_encoder(tiny_backbone):
    assert default_stem(PADetConfig(backbone="vgg16", input_size=384)) == "padet_vgg384"
    assert default_stem(PADetConfig(backbone="resnet101", input_size=512)) == "padet_resnet512"
    assert default_stem(_tiny_config(tiny_backbone)) == "padet_tiny_test96"


def test_an_encoder_without_imagenet_weights_says_so(tiny_backbone, tmp_path):
    model = PADet(_tiny_config(tiny_backbone))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        model.load_backbone(tmp_path / "missing.pth")
    torch.save({}, tmp_path / "some.pth")
    with pytest.raises(ValueError, match="no ImageNet weight layout"):
        model.load_backbone(tmp_path / "some.pth")


def test_a_registered_encoder_trains_exports_and_detects_in_the_sdk(tiny_backbone, tmp_path):
    import onnxruntime as ort

    from export.graph import InferenceGraph, build_metadata
    from export.onnx_export import export_onnx
    from padet_sdk import Detector

    torch.manual_seed(0)
    cfg = _tiny_config(tiny_backbone)
    model = PADet(cfg)
    # strides 4, 8 at 96 px: 24, 12, then extra stages 6, 3, 2 and D_L 1
    assert cfg.feature_sizes == (24, 12, 6, 3, 2, 1) and len(model.anchors) == cfg.num_anchors
    with torch.no_grad():  # predictions that vary across anchors, so that a wrong output order would show
        for conv in [p for h in model.heads for p in (h.cls, h.box)] + [p for a in model.apm for p in (a.score, a.reg)]:
            conv.weight.normal_(0, 0.05)

    # one training step
    images = torch.randn(2, 3, 96, 96)
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.7], [0.4, 0.3, 0.9, 0.8]])
    targets = [{"boxes": boxes, "labels": torch.tensor([1, 2])}, {"boxes": boxes[:1], "labels": torch.tensor([2])}]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    parts = padet_loss(model(images), model.anchors, targets, cfg)
    assert torch.isfinite(parts["total"]) and float(parts["total"].detach()) > 0
    opt.zero_grad()
    parts["total"].backward()
    opt.step()
    after = model.state_dict()
    assert not torch.equal(after["encoder.stem.0.0.weight"], before["encoder.stem.0.0.weight"])  # through the encoder
    assert not torch.equal(after["heads.0.cls.weight"], before["heads.0.cls.weight"])

    # export, then the SDK on a frame that is not the network's size
    model.eval()
    path = export_onnx(model, tmp_path / "tiny.onnx", build_metadata(model, ["a", "b"]))
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    with Detector(path) as det:
        dets = det(frame)
        blob = det.preprocess([frame])
    assert len(dets) > 0 and dets.image_size == (120, 160)
    b = dets.boxes
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 2] <= 160) and np.all(b[:, 1] >= 0) and np.all(b[:, 3] <= 120)
    assert np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])

    # the file computes what torch does on the Detector's own input. Probabilities in [0, 1] and
    # deltas of order 1 through ~20 float32 convs whose sums onnxruntime orders differently than
    # torch: each layer adds a few ulps (1e-7 relative), so 1e-4 absolute leaves a wide margin
    # while any wrong weight, layer or output order would be off by far more.
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: blob})
    with torch.no_grad():
        ref = [t.numpy() for t in InferenceGraph(model)(torch.from_numpy(blob))]
    assert [g.shape for g in got] == [r.shape for r in ref]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-4)
