"""Data side of training: data sets (synthetic shapes, COCO, VOC), SSD augmentation, collation.

Names are imported lazily, so ``python -m training.data.synth`` and users of
:func:`render_scene` (demo clips) do not pay for importing torch.

Conventions shared by every data set here: images are HxWx3 uint8 **RGB** numpy arrays,
boxes are float32 (K, 4) xyxy in pixels (pixel i covers [i, i+1)), labels are int64 in 1..C
(0 is background). After a transform from :mod:`training.data.transforms`, the image is a
CHW float32 tensor and boxes are xyxy normalised to 0..1.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "synth": ("CLASS_NAMES", "generate_dataset", "render_scene"),
    "coco": ("CocoDetection", "read_image_rgb"),
    "voc": ("VOC_CLASSES", "VOCDetection", "parse_voc_xml", "voc_to_coco"),
    "transforms": (
        "Compose",
        "Expand",
        "IoURandomCrop",
        "Normalize",
        "PhotometricDistort",
        "RandomHorizontalFlip",
        "Resize",
        "ToTensor",
        "build_eval_transform",
        "build_train_transform",
        "reseed_dataset",
        "sanitize_boxes",
        "seed_worker",
    ),
    "collate": ("detection_collate",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
