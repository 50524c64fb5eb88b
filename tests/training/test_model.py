import itertools

import pytest
import torch
import torchvision

from training import PRESETS, build_model, make_config
from training.config import FAM_MODES
from training.fam import FAM, K, split_location_shape
from training.losses import padet_loss
from training.model import PADet


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_output_shapes_of_every_preset_at_batch_2(preset):
    torch.manual_seed(0)
    model = build_model(preset, num_classes=80).eval()
    s = model.cfg.input_size
    n = {320: 12790, 384: 18400, 512: 32724}[s]  # SSD's anchor counts: (40, 20, 10, 5, 3, 1) maps at 320
    if model.encoder.strides[0] == 16:  # SSDLite's taps: (20, 10, 5, 3, 2, 1) maps at 320
        n = 6 * 400 + 6 * 100 + 6 * 25 + 6 * 9 + 4 * 4 + 4 * 1
    with torch.no_grad():
        out = model(torch.randn(2, 3, s, s))
    assert out.apm_logits.shape == (2, n)
    assert out.apm_deltas.shape == (2, n, 4)
    assert out.cls_logits.shape == (2, n, 81)
    assert out.det_deltas.shape == (2, n, 4)
    assert model.anchors.shape == (n, 4)
    assert torch.isfinite(out.cls_logits).all()


def test_anchor_buffer_is_not_saved_in_checkpoints():
    model = build_model("vgg16_384", 3, width=0.125, input_size=192)
    assert "anchors" not in model.state_dict()


def test_bad_input_shape_gives_a_clear_error():
    model = build_model("vgg16_384", 3, width=0.125, input_size=192)
    with pytest.raises(ValueError, match=r"\(B, 3, 192, 192\)"):
        model(torch.randn(1, 3, 128, 128))


def test_fam_skips_the_last_two_levels():
    model = build_model("vgg16_384", 3, width=0.125, input_size=192)
    assert [h.fam is not None for h in model.heads] == [True, True, True, True, False, False]


def test_disentangled_offsets_are_c_shared_by_all_taps_plus_delta_s():
    torch.manual_seed(0)
    fam = FAM(16, 6, "disentangled")
    for conv in (fam.loc, fam.shape):
        torch.nn.init.normal_(conv.weight)
        torch.nn.init.normal_(conv.bias)
    reg = torch.randn(1, 24, 5, 5)
    off = fam.offsets(torch.randn(1, 16, 5, 5), reg)
    assert off.shape == (1, 2 * K, 5, 5)
    x_l, x_s = split_location_shape(reg)
    c = fam.loc(x_l)
    ds = fam.shape(x_s)
    for tap in range(K):  # (dy, dx) of every tap = c + its own residual
        torch.testing.assert_close(off[:, 2 * tap : 2 * tap + 2], c + ds[:, 2 * tap : 2 * tap + 2])


def test_split_location_shape_takes_dx_dy_and_dw_dh_of_each_anchor():
    reg = torch.arange(8.0).view(1, 8, 1, 1)  # two anchors: (0,1,2,3), (4,5,6,7)
    x_l, x_s = split_location_shape(reg)
    assert x_l.flatten().tolist() == [0, 1, 4, 5]
    assert x_s.flatten().tolist() == [2, 3, 6, 7]


def test_fresh_fam_equals_a_plain_conv_because_offsets_start_at_zero():
    torch.manual_seed(0)
    fam = FAM(8, 6, "disentangled")
    x = torch.randn(1, 8, 6, 6)
    plain = torch.relu(torch.nn.functional.conv2d(x, fam.weight, fam.bias, padding=1))
    # grid_sample + 1x1 conv vs oneDNN's 3x3 conv, float32: measured 4.8e-7 (AVX-512) / 7.2e-7 (AVX2, qemu)
    torch.testing.assert_close(fam(x, torch.randn(1, 24, 6, 6)), plain, atol=1e-5, rtol=1e-5)


SWITCHES = [
    dict(use_apm_score=s, use_apm_reg=r, fam=f)
    for s, r, f in itertools.product([False, True], [False, True], FAM_MODES)
    if r or f in ("none", "implicit")
]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda d: f"C{int(d['use_apm_score'])}R{int(d['use_apm_reg'])}-{d['fam']}")
def test_every_ablation_switch_builds_and_trains_a_step(switch):
    torch.manual_seed(0)
    model = build_model("vgg16_384", 3, width=0.125, input_size=128, **switch)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    tg = [{"boxes": torch.tensor([[0.1, 0.1, 0.5, 0.6]]), "labels": torch.tensor([2])}] * 2
    out = model(torch.randn(2, 3, 128, 128))
    assert (out.apm_logits is not None) == switch["use_apm_score"]
    assert (out.apm_deltas is not None) == switch["use_apm_reg"]
    loss = padet_loss(out, model.anchors, tg, model.cfg)["total"]
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    model.eval()
    with torch.no_grad():
        model.postprocess(model(torch.randn(1, 3, 128, 128)))


def test_fam_explicit_without_apm_regression_is_refused():
    with pytest.raises(ValueError, match="use_apm_reg"):
        make_config("vgg16_384", 3, use_apm_reg=False, fam="disentangled")


def test_fam_detach_stops_gradient_into_apm_regression():
    torch.manual_seed(0)
    for detach in (False, True):
        model = build_model("vgg16_384", 3, width=0.125, input_size=128, fam_detach=detach)
        for h in model.heads:  # make offsets depend on the APM regression
            if h.fam is not None:
                torch.nn.init.normal_(h.fam.loc.weight)
                torch.nn.init.normal_(h.fam.shape.weight)
        out = model(torch.randn(2, 3, 128, 128))
        out.cls_logits.sum().backward()
        g = model.apm[0].reg.weight.grad
        assert (g is None or float(g.abs().sum()) == 0.0) == detach


def _vgg16_pairs(model, tv):
    # conv5_3, and fc6 as torchvision's fc6 decimated (SSD's "reduced fc")
    w6 = tv.classifier[0].weight.view(4096, 512, 7, 7)[::4, :, ::3, ::3]
    return [(model.encoder.features[28].weight, tv.features[28].weight), (model.encoder.fc6.weight, w6)]


def _resnet101_pairs(model, tv):
    return [(model.encoder.layer3[22].conv2.weight, tv.layer3[22].conv2.weight)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, torchvision_name, file_name, pairs",
    [
        ("vgg16_384", "vgg16", "vgg16-397923af.pth", _vgg16_pairs),
        ("resnet101_384", "resnet101", "resnet101.pth", _resnet101_pairs),
    ],
)
def test_backbone_loads_torchvision_imagenet_weights_from_a_local_file(preset, torchvision_name, file_name, pairs, tmp_path):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, torchvision_name)(weights=None)
    path = tmp_path / file_name
    torch.save(tv.state_dict(), path)
    model = build_model(preset, 3, backbone_weights=str(path))
    for ours, theirs in pairs(model, tv):
        torch.testing.assert_close(ours, theirs)


def test_missing_backbone_file_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        build_model("vgg16_384", 3, width=0.125, input_size=128, backbone_weights=str(tmp_path / "nope.pth"))


def test_narrow_weights_refuse_imagenet_files_with_a_clear_message(tmp_path):
    path = tmp_path / "vgg16.pth"  # torchvision's layout; its conv layers are what is checked first
    state = torchvision.models.vgg16(weights=None).state_dict()
    torch.save({k: v for k, v in state.items() if k.startswith("features.")}, path)
    with pytest.raises(ValueError, match="width=1.0"):
        build_model("vgg16_384", 3, width=0.125, input_size=128, backbone_weights=str(path))


def test_config_round_trips_through_a_plain_dict():
    cfg = make_config("resnet101_512", 7, width=0.5, fam="explicit_ls", neg_pos_ratio=3.0)
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    tuned = cfg.replace(postprocess=cfg.postprocess.replace(nms="soft-gaussian", max_det=50))
    assert type(cfg).from_dict(tuned.to_dict()) == tuned and tuned.to_dict()["postprocess"]["nms"] == "soft-gaussian"
    assert isinstance(PADet(make_config("vgg16_384", 2, width=0.125, input_size=128)), torch.nn.Module)


@pytest.mark.slow
def test_vgg16_bn_backbone_loads_torchvision_vgg16_bn_layout(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.vgg16_bn(weights=None)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(tv.state_dict(), path)
    model = build_model("vgg16_384", 3, backbone_bn=True, backbone_weights=str(path))
    torch.testing.assert_close(model.encoder.features[41].weight, tv.features[41].weight)  # conv5_3 BN
    # E_1 is still conv4_3 (after its ReLU): stride 8
    feats = model.encoder(torch.randn(1, 3, 384, 384))
    assert feats[0].shape[-1] == 48 and feats[0].shape[1] == 512


def test_channels_last_training_step_matches_contiguous():
    """CPU training runs NHWC (faster); it must be the same network: same loss and gradients.

    Without the θ rule, whose hard threshold could turn float-level layout differences into a
    different set of ignored negatives (it did, by ~3% of the encoder's gradients, while
    prior_prob equalled θ) although both layouts compute the same function."""
    torch.manual_seed(0)
    ref = build_model("vgg16_384", 3, width=0.0625, input_size=128, use_apm_score=False).train()
    nhwc = build_model("vgg16_384", 3, width=0.0625, input_size=128, use_apm_score=False).train()
    nhwc.load_state_dict(ref.state_dict())
    nhwc = nhwc.to(memory_format=torch.channels_last)
    for m in (ref, nhwc):  # non-zero FAM offsets, so the deformable sampling path is exercised
        for fam in m.modules():
            if isinstance(fam, FAM) and fam.mode == "disentangled":
                torch.nn.init.normal_(fam.shape.weight, std=0.3, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, 128, 128)
    targets = [{"boxes": torch.tensor([[0.1, 0.1, 0.5, 0.6]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[0.3, 0.2, 0.9, 0.7]]), "labels": torch.tensor([2])}]  # fmt: skip
    losses = []
    for m, inp in ((ref, x), (nhwc, x.contiguous(memory_format=torch.channels_last))):
        loss = padet_loss(m(inp), m.anchors, targets, m.cfg)["total"]
        loss.backward()
        losses.append(loss.detach())
    # forward: float32 convs in other orders, measured 1.5e-7 relative (0 with ATen's scalar kernels)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    # Backward rounding is not per element: BatchNorm over 2 values on the 1x1 level spreads float32 noise
    # over every gradient at the scale of the largest one, so small elements carry the absolute error of
    # large ones. Measured max |diff| / max |grad| (2.06): 4.0e-6 on AVX-512 (also with ATen's AVX2
    # kernels), 7.1e-6 on AVX2 (qemu EPYC-Rome), 1.3e-5 with ATen's scalar kernels (ATEN_CPU_CAPABILITY=
    # default; 2.7e-5 absolute, which failed the former atol=1e-5). 1e-4 of the largest gradient leaves
    # 7x; a layout bug is O(1).
    atol = 1e-4 * max(float(p.grad.abs().max()) for p in ref.parameters() if p.grad is not None)
    for (name, p_ref), p in zip(ref.named_parameters(), nhwc.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-3, atol=atol, msg=f"gradient of {name} differs")
