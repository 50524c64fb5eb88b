"""Checkpoints: atomic writes, weights_only loading, RNG round trip, config mismatch errors."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from training import build_model
from training.checkpoint import (
    CheckpointError,
    _atomic_write,
    load_checkpoint,
    model_from_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model("vgg16_384", 3, width=0.125, input_size=128)


def _state(model, **extra):
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    model(torch.randn(2, 3, 128, 128)).cls_logits.mean().backward()
    opt.step()
    return {"config": model.cfg.to_dict(), "model": model.state_dict(), "class_names": ["a", "b", "c"], "epoch": 1,
            "optimizer": opt.state_dict(), "rng": rng_state(), **extra}  # fmt: skip


def test_saved_checkpoint_reads_back_with_weights_only_including_optimizer_and_rng_states(tiny_model, tmp_path):
    state = _state(tiny_model, cat_ids={1: 10, 2: 20, 3: 30}, best_ap50=None)
    path = save_checkpoint(state, tmp_path)
    raw = torch.load(path, weights_only=True)  # what the exporter does: must not need pickled classes
    assert raw["class_names"] == ["a", "b", "c"] and raw["epoch"] == 1 and raw["cat_ids"] == {1: 10, 2: 20, 3: 30}
    for k, v in state["model"].items():
        assert torch.equal(raw["model"][k], v)
    assert raw["optimizer"]["param_groups"][0]["momentum"] == 0.9
    ckpt = load_checkpoint(path, config=tiny_model.cfg)
    assert ckpt["config"] == raw["config"]


def test_an_interrupted_write_leaves_the_previous_checkpoint_intact_and_no_temp_file(tmp_path):
    target = tmp_path / "last.pth"
    _atomic_write(target, lambda f: f.write(b"old"))

    def torn(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of torch.save

    with pytest.raises(KeyboardInterrupt):
        _atomic_write(target, torn)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_best_checkpoint_is_a_copy_of_last_when_flagged(tiny_model, tmp_path):
    save_checkpoint(_state(tiny_model, epoch=1), tmp_path, is_best=True)
    save_checkpoint(_state(tiny_model, epoch=2), tmp_path)
    assert torch.load(tmp_path / "best.pth", weights_only=True)["epoch"] == 1
    assert torch.load(tmp_path / "last.pth", weights_only=True)["epoch"] == 2


def test_save_refuses_a_state_without_the_keys_the_exporter_needs(tmp_path):
    with pytest.raises(ValueError, match="class_names"):
        save_checkpoint({"config": {}, "model": {}, "epoch": 0}, tmp_path)


def test_loading_for_a_different_network_names_every_differing_field(tiny_model, tmp_path):
    path = save_checkpoint(_state(tiny_model), tmp_path)
    other = tiny_model.cfg.replace(width=0.25, fam="implicit")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, config=other)
    assert "width: 0.125 != 0.25" in str(e.value) and "fam: 'disentangled' != 'implicit'" in str(e.value)


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "bad.pth")


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in NumPy's state
    save_checkpoint({"config": {}, "model": {}, "class_names": [], "epoch": 0, "rng": rng_state()}, tmp_path)
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "last.pth", weights_only=True)["rng"])
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_model_from_checkpoint_rebuilds_the_same_network(tiny_model, tmp_path):
    path = save_checkpoint(_state(tiny_model), tmp_path)
    model, ckpt = model_from_checkpoint(path)
    x = torch.randn(2, 3, 128, 128)
    tiny_model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).cls_logits, tiny_model(x).cls_logits)
    assert not model.training and ckpt["class_names"] == ["a", "b", "c"]


def test_a_checkpoint_with_the_flat_post_processing_fields_of_older_configs_loads_and_resumes(tiny_model, tmp_path):
    from padet_sdk.options import PostprocessOptions

    old = {k: v for k, v in tiny_model.cfg.to_dict().items() if k != "postprocess"}
    old |= {"theta": 0.02, "conf_threshold": 0.05, "nms_method": "hard", "nms_iou": 0.4, "nms_sigma": 0.5,
            "nms_score_threshold": 0.001, "pre_nms_top_k": 1000, "max_det": 100}
    path = save_checkpoint({**_state(tiny_model), "config": old}, tmp_path)
    model, _ = model_from_checkpoint(path)
    want = PostprocessOptions(theta=0.02, conf=0.05, nms="hard", iou=0.4, max_det=100)
    assert model.cfg.postprocess == want
    load_checkpoint(path, config=tiny_model.cfg.replace(postprocess=want))  # same network: resumes
    with pytest.raises(CheckpointError, match="postprocess"):
        load_checkpoint(path, config=tiny_model.cfg)


class _Pickled:
    """A class torch's weights-only loader must refuse."""


def test_checkpoint_errors_are_one_line_and_never_advise_weights_only_false(tmp_path):
    torch.save({"config": {}, "model": _Pickled()}, tmp_path / "cls.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file" * 10)
    good = tmp_path / "good.pth"
    torch.save({"config": {}, "model": {}}, good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:200])
    expected = {"cls.pth": "GLOBAL", "garbage.pth": "not a torch file", "cut.pth": "truncated or corrupted"}
    for name, words in expected.items():
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(tmp_path / name)
        msg = str(e.value)
        assert "\n" not in msg and name in msg and words in msg, msg
        assert "weights_only" not in msg, msg
