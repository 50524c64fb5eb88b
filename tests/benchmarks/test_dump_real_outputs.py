"""benchmarks/dump_real_outputs.py: a checkpoint trained at 192 yields real outputs on the
18,400 anchors of vgg16_384, in the layout bench_postprocess.py --real reads."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_postprocess  # noqa: E402
import dump_real_outputs  # noqa: E402

from padet_sdk import native, postprocess_numpy  # noqa: E402
from padet_sdk.boxes import DEFAULT_VARIANCES  # noqa: E402
from training import build_model  # noqa: E402
from training.checkpoint import save_checkpoint  # noqa: E402


def test_checkpoint_at_192_dumps_18400_anchor_outputs_that_bench_postprocess_reads(tmp_path):
    torch.manual_seed(0)
    model = build_model("vgg16_384", 3, width=0.125, input_size=192)
    ckpt = save_checkpoint({"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": ["a", "b", "c"],
                            "epoch": 1}, tmp_path)
    out = tmp_path / "real.npz"
    assert dump_real_outputs.main(["--checkpoint", str(ckpt), "--out", str(out), "--seed", "3"]) == 0
    real = bench_postprocess.load_real(str(out))
    assert real["anchors"].shape == (18400, 4)
    assert real["cls_scores"].shape == (18400, 4)
    np.testing.assert_allclose(real["cls_scores"].sum(1), 1.0, atol=1e-5)  # softmax, as the SDK gets it (fp32: ~1e-7)
    assert real["apm_scores"].shape == (18400,) and 0 <= real["apm_scores"].min() <= real["apm_scores"].max() <= 1
    args = [real[k] for k in bench_postprocess.KEYS]
    ours = native.postprocess(*args, bench_postprocess.OPTIONS)
    ref = postprocess_numpy.postprocess(*args, bench_postprocess.OPTIONS, DEFAULT_VARIANCES)
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref))


def test_missing_checkpoint_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        dump_real_outputs.main(["--checkpoint", str(tmp_path / "nope.pth")])
    assert exc.value.code == 2
    assert "build_demo_model.py" in capsys.readouterr().err
