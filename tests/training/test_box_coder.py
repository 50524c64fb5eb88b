import torch

from training.box_coder import BBOX_XFORM_CLIP, cxcywh_to_xyxy, decode, encode, xyxy_to_cxcywh


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    anchors = torch.cat([torch.rand(500, 2, generator=g), torch.rand(500, 2, generator=g) * 0.5 + 0.05], 1)
    boxes = torch.cat([torch.rand(500, 2, generator=g), torch.rand(500, 2, generator=g) * 0.8 + 0.05], 1)
    # float32 log then exp: a few ulps (measured max |diff| 1.2e-7 on AVX-512 and AVX2/qemu)
    torch.testing.assert_close(decode(encode(boxes, anchors), anchors), boxes, atol=1e-5, rtol=1e-5)


def test_encode_uses_ssd_variances():
    a = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    b = torch.tensor([[0.52, 0.46, 0.4, 0.4]])
    d = encode(b, a)
    # dx = 0.02/(0.1·0.2) = 1; dy = -0.04/(0.1·0.4) = -1; dw = ln 2 / 0.2; dh = 0. float32 0.52 is off by
    # up to 3e-8, which the 0.02 difference turns into ~1.5e-6 in dx: hence 1e-5
    torch.testing.assert_close(d, torch.tensor([[1.0, -1.0, 0.6931472 / 0.2, 0.0]]), atol=1e-5, rtol=1e-5)


def test_decode_clamps_huge_size_deltas_before_exp():
    a = torch.tensor([[0.5, 0.5, 0.1, 0.1]])
    out = decode(torch.tensor([[0.0, 0.0, 1e6, 1e6]]), a)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2], torch.tensor(0.1 * float(torch.exp(torch.tensor(BBOX_XFORM_CLIP)))))


def test_xyxy_cxcywh_round_trip():
    b = torch.tensor([[0.1, 0.2, 0.5, 0.9]])
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(b)), b)
