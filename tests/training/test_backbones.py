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


@pytest.mark.parametrize("name", ["vgg16", "resnet101", "resnet18", "mobilenet_v3_large", "mobilenet_v2"])
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
    assert default_stem(PADetConfig(backbone="resnet18", input_size=320)) == "padet_resnet18_320"
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


# --- light encoders (torchvision's mobile networks) ----------------------------------------------------------


@pytest.mark.parametrize("name, tv_name, taps", [
    ("mobilenet_v3_large", "mobilenet_v3_large", ((40, 8), (112, 16), (960, 32))),
    ("mobilenet_v2", "mobilenet_v2", ((32, 8), (96, 16), (1280, 32))),
])  # fmt: skip
def test_mobile_encoders_are_torchvision_features_tapped_at_strides_8_16_32(name, tv_name, taps):
    """Full width: the tapped blocks are torchvision's (same module names and shapes), with the
    channels and strides torchvision's network has there; the extras follow at strides 64, 128."""
    import torchvision

    cfg = PADetConfig(backbone=name, input_size=320, width=1.0)
    enc = build_backbone(name, num_taps=cfg.num_encoder_levels, ch=cfg.channels)
    tv = getattr(torchvision.models, tv_name)(weights=None)
    ours = {k: v.shape for k, v in enc.features.state_dict().items()}
    theirs = {k.removeprefix("features."): v.shape for k, v in tv.state_dict().items() if k.startswith("features.")}
    assert ours == theirs
    shape = enc.output_shape()
    assert [(t.channels, t.stride) for t in shape[:3]] == list(taps)
    assert [t.stride for t in shape[3:]] == [64, 128]
    assert cfg.feature_sizes == (40, 20, 10, 5, 3, 1)


def _save_torchvision(tmp_path, tv_name: str):
    import torchvision

    torch.manual_seed(1)
    tv = getattr(torchvision.models, tv_name)(weights=None)
    with torch.no_grad():  # running statistics that differ from a fresh BatchNorm's, so copying them shows
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"{tv_name}.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


@pytest.mark.parametrize("preset, tv_name", [("mobilenetv3_320", "mobilenet_v3_large"), ("mobilenetv2_320", "mobilenet_v2"),
                                             ("mobilenetv3s16_320", "mobilenet_v3_large")])
def test_mobile_presets_load_torchvision_imagenet_weights_from_a_local_file(preset, tv_name, tmp_path):
    from training.model import build_model

    tv, path = _save_torchvision(tmp_path, tv_name)
    model = build_model(preset, 3, input_size=128, backbone_weights=str(path))
    ours = model.encoder.features.state_dict()
    theirs = tv.state_dict()
    assert len(ours) > 100
    for k, v in ours.items():
        assert torch.equal(v, theirs[f"features.{k}"]), k
    # and the loaded encoder computes torchvision's features (eval mode: running statistics)
    model.eval()
    tv.eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = tv.features(x)
        got = model.encoder(x)[len(model.encoder.strides) - 1]  # the last tap before the extra stages
    torch.testing.assert_close(got, want, rtol=0, atol=0)  # the same modules on the same input


def test_ssdlite_tapped_mobilenet_has_no_stride_8_map_and_taps_block_12_and_the_last_conv():
    """``mobilenetv3s16_320`` is fast because its first map is at stride 16 (SSDLite's taps)."""
    import torchvision

    from training.config import make_config
    from training.model import build_model

    cfg = make_config("mobilenetv3s16_320", 80)
    assert cfg.feature_sizes == (20, 10, 5, 3, 2, 1)
    assert cfg.num_anchors < make_config("mobilenetv3_320", 80).num_anchors / 3
    torch.manual_seed(0)
    model = build_model("mobilenetv3s16_320", 3, input_size=128).eval()
    assert [t.stride for t in model.encoder.output_shape()] == [16, 32, 64, 128, 256]
    tv = torchvision.models.mobilenet_v3_large(weights=None).eval()
    tv.features.load_state_dict(model.encoder.features.state_dict(), strict=False)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        taps = model.encoder(x)
        torch.testing.assert_close(taps[0], tv.features[:13](x), rtol=0, atol=0)
    assert [tuple(t.shape[1:]) for t in taps] == [(112, 8, 8), (960, 4, 4), (256, 2, 2), (256, 1, 1), (256, 1, 1)]


def test_resnet18_encoder_is_torchvision_resnet18_and_loads_its_imagenet_file(tmp_path):
    """The light dense encoder: torchvision's resnet18 module names and shapes (C3, C4, C5 =
    layer2..4 at strides 8/16/32), its ImageNet file loads by name and computes torchvision's C5;
    a narrow one or another network's file is refused naming the tensor."""
    from training.model import build_model

    cfg = PADetConfig(backbone="resnet18", input_size=320, width=1.0)
    enc = build_backbone("resnet18", num_taps=cfg.num_encoder_levels, ch=cfg.channels)
    assert [(t.channels, t.stride) for t in enc.output_shape()] == [
        (128, 8), (256, 16), (512, 32), (256, 64), (256, 128)]
    tv, path = _save_torchvision(tmp_path, "resnet18")
    theirs = {k: v.shape for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in enc.state_dict().items() if not k.startswith("extras.")} == theirs
    model = build_model("resnet18_320", 3, input_size=128, backbone_weights=str(path)).eval()
    tv.eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        torch.testing.assert_close(model.encoder(x)[2], want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="width=1.0"):
        build_model("resnet18_320", 3, input_size=128, width=0.25, backbone_weights=str(path))
    _, r101 = _save_torchvision(tmp_path, "resnet101")
    with pytest.raises(ValueError, match="do not fit: layer1.0.conv1.weight .*torchvision resnet18"):
        build_model("resnet18_320", 3, input_size=128, backbone_weights=str(r101))
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth"):
        build_model("resnet18_320", 3, input_size=128, backbone_weights=str(tmp_path / "missing.pth"))


def test_mobile_encoders_refuse_weights_that_do_not_fit(tmp_path):
    from training.model import build_model

    _, v2 = _save_torchvision(tmp_path, "mobilenet_v2")
    with pytest.raises(ValueError, match="do not fit: features.0.0.weight .*torchvision mobilenet_v3_large"):
        build_model("mobilenetv3_320", 3, input_size=128, backbone_weights=str(v2))
    _, v3 = _save_torchvision(tmp_path, "mobilenet_v3_large")
    with pytest.raises(ValueError, match="width=1.0"):
        build_model("mobilenetv3_320", 3, input_size=128, width=0.5, backbone_weights=str(v3))
    with pytest.raises(FileNotFoundError, match="mobilenet_v3_large-8738ca79.pth"):
        build_model("mobilenetv3_320", 3, input_size=128, backbone_weights=str(tmp_path / "missing.pth"))


def test_light_head_is_depthwise_separable_and_cheaper_at_the_same_outputs():
    """The light option changes only how the decoder/heads compute, not what they output: same
    output shapes and anchors, far fewer multiply-adds in decoder and heads, grouped FAM."""
    from training.config import make_config
    from training.model import PADet
    from training.summary import count_macs

    light = make_config("mobilenetv3_320", 6, input_size=192)
    paper = light.replace(light_head=False, fam_groups=1)
    assert light.light_head and light.fam_width == 48 and light.fam_conv_groups == 1
    m_light, m_paper = PADet(light).eval(), PADet(paper).eval()
    x = torch.randn(1, 3, 192, 192)
    with torch.no_grad():
        a, b = m_light(x), m_paper(x)
    assert [t.shape for t in a] == [t.shape for t in b]
    parts = {"decoder": None, "heads": None}
    macs_light, macs_paper = count_macs(m_light, 192, parts), count_macs(m_paper, 192, parts)
    # more than 3x fewer in both: what remains is the bottleneck FAM's two 1x1 convs and the decoder's 1x1
    # laterals, which stay as they are
    assert macs_light["heads"] < macs_paper["heads"] / 3 and macs_light["decoder"] < macs_paper["decoder"] / 3
    fam = m_light.heads[0].fam  # the bottleneck: 1x1 to 48 channels, deformable 3x3, 1x1 back to 96
    assert fam.weight.shape == (48, 48, 3, 3) and fam.reduce.in_channels == fam.point.out_channels == 96
    assert type(light).from_dict(light.to_dict()) == light
    dw = PADet(light.replace(fam_channels=None, fam_groups="depthwise")).eval()  # depthwise-separable form
    assert dw.heads[0].fam.weight.shape == (96, 1, 3, 3) and dw.heads[0].fam.reduce is None
    with torch.no_grad():
        assert [t.shape for t in dw(x)] == [t.shape for t in a]


def test_fam_groups_must_divide_the_decoder_channels():
    from training.config import make_config

    with pytest.raises(ValueError, match="fam_groups must be 'depthwise' or a positive divisor of the FAM's 48"):
        make_config("mobilenetv3_320", 3, fam_groups=5)
    with pytest.raises(ValueError, match="fam_channels must be None or a positive int"):
        make_config("mobilenetv3_320", 3, fam_channels=0)
    with pytest.raises(ValueError, match="fam_groups"):
        make_config("vgg16_384", 3, fam_groups="grouped")
    assert make_config("vgg16_384", 3, width=0.125, fam_groups="depthwise").fam_conv_groups == 32
