"""The end-to-end learning check of issue #2: a narrow PADet overfits one image with two boxes."""
import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from training import build_model
from training.losses import padet_loss

S = 192


def _scene():
    rng = np.random.default_rng(0)
    img = (90 + rng.integers(0, 40, (S, S, 3))).astype(np.uint8)
    b1 = np.array([0.10, 0.15, 0.45, 0.55])
    b2 = np.array([0.55, 0.50, 0.90, 0.80])
    p = lambda v: tuple(int(round(t * S)) for t in v)  # noqa: E731
    cv2.rectangle(img, p(b1[:2]), p(b1[2:]), (230, 40, 40), -1)
    centre = p((b2[:2] + b2[2:]) / 2)
    axes = p((b2[2:] - b2[:2]) / 2)
    cv2.ellipse(img, centre, axes, 0, 0, 360, (40, 200, 60), -1)
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return ((x - mean) / std)[None], torch.tensor(np.stack([b1, b2]), dtype=torch.float32)


@pytest.mark.slow
def test_narrow_model_overfits_one_image_with_two_boxes_within_200_steps():
    torch.manual_seed(0)
    model = build_model("vgg16_384", 2, width=0.125, input_size=S)
    x, boxes = _scene()
    flipped = boxes.clone()
    flipped[:, [0, 2]] = 1 - boxes[:, [2, 0]]
    # the image and its mirror: a batch of two *different* images keeps BatchNorm statistics sane
    batch = torch.cat([x, x.flip(-1)])
    labels = torch.tensor([1, 2])
    targets = [{"boxes": boxes, "labels": labels}, {"boxes": flipped, "labels": labels}]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(200):
        loss = padet_loss(model(batch), model.anchors, targets, model.cfg)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        det = model.postprocess(model(x))[0]
    # 0.7 is a learning outcome, not a rounding bound: 200 float32 steps with BatchNorm over 2 images follow
    # another trajectory on other kernels (loss at step 100: 0.083-0.092), yet the best IoUs were 0.94-0.98
    # on AVX-512, with oneDNN/ATen/MKL capped at AVX2 (ONEDNN_MAX_CPU_ISA etc.), with ATen's scalar
    # kernels and with 2 threads
    iou = box_iou(boxes, det["boxes"])
    for g, label in enumerate(labels.tolist()):
        same_class = det["labels"] == label
        assert same_class.any(), f"no detection of class {label}"
        assert float(iou[g][same_class].max()) >= 0.7, f"class {label}: best IoU {iou[g][same_class].max():.2f}"
