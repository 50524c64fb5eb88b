import json

import numpy as np
import pytest

from training.data.synth import generate_dataset
from training.evaluate import coco_eval
from training.experiments import TABLES, VARIANTS, detailed_ap, format_table, main, variant_flags


def _gt(n_images=3):
    images = [{"id": i + 1, "width": 100, "height": 100, "file_name": f"{i}.jpg"} for i in range(n_images)]
    anns, k = [], 0
    rng = np.random.default_rng(0)
    for img in images:
        for _ in range(3):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(5, 40, 2)
            k += 1
            anns.append({"id": k, "image_id": img["id"], "category_id": 1 + k % 2, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})  # fmt: skip
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def test_detailed_ap_of_ground_truth_is_100_at_every_iou_and_area():
    gt = _gt()
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"]]  # fmt: skip
    m = detailed_ap(gt, dets)
    for iou in ("AP50", "AP60", "AP70", "AP80", "AP85"):
        assert m[iou] == pytest.approx(100.0)


def test_detailed_ap_agrees_with_the_pycocotools_summary():
    gt = _gt()
    rng = np.random.default_rng(1)
    dets = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [x + rng.uniform(-4, 4), y + rng.uniform(-4, 4), w, h], "score": float(rng.random())})  # fmt: skip
    m = detailed_ap(gt, dets)
    ref = coco_eval(gt, dets)
    # both come from pycocotools' float64 precision arrays; only the x100 and averaging order differ
    assert m["AP"] == pytest.approx(ref["AP"] * 100, abs=1e-6)
    assert m["AP50"] == pytest.approx(ref["AP50"] * 100, abs=1e-6)
    assert m["AP75"] == pytest.approx(ref["AP75"] * 100, abs=1e-6)


def test_every_table_row_names_a_known_variant_with_the_papers_numbers():
    for name, spec in TABLES.items():
        for label, variant in spec["rows"]:
            assert variant in VARIANTS, (name, variant)
            assert len(spec["paper"][label]) == len(spec["metrics"]), (name, label)
    assert variant_flags(VARIANTS["baseline"]) == ["--fam", "none", "--no-apm-score", "--no-apm-reg"]


@pytest.mark.slow
def test_table3_command_trains_evaluates_and_writes_results(tmp_path):
    data = generate_dataset(tmp_path / "data", 8, 4, size=128, seed=2, progress=False)
    out = tmp_path / "exp"
    argv = ["table3", "--data", str(data), "--out", str(out), "--steps", "2", "--width", "0.125", "--input-size", "128",
            "--batch-size", "4", "--workers", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "table3" / "results.json").read_text())
    assert set(res["results"]) == {"baseline", "APM", "APM+FAM"}
    assert (out / "table3" / "table3.png").stat().st_size > 1000
    assert "Table 3" in format_table("table3", res["results"])
    # a second call reuses the finished runs instead of training again
    assert main(argv) == 0
