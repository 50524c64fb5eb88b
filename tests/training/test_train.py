"""The training loop: DDP equivalence, exact resume after SIGKILL, NaN stop, clear errors, logs."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import training.train as train_mod
from training.config import PADetConfig
from training.model import PADet
from training.train import main

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # same arithmetic in every run, and gentle on a 2-core machine
    return env


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.train", *args], env=_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


#: float64 eps 2.2e-16 x ~1e4 (BatchNorm over 2-4 values on the 1x1 level, per step) x ~30 (the eps-level
#: rounding step 1 leaves: 7e-15 measured) = ~7e-11; 1e-9 leaves 15x. Measured: 6.0e-11 on a Xeon
#: (AVX-512/AMX), 3.1e-11 on AVX2 (qemu-x86_64 -cpu EPYC-Rome); a real difference is far larger
#: (without --sync-bn: 0.48; float32 rounding alone gave 1.3e-4..7.5e-4, 6.5e-4 on an AVX2 EPYC).
DDP_ATOL = 1e-9


@pytest.mark.timeout(240)
def test_two_processes_with_sync_bn_give_the_weights_of_one_process_with_the_same_global_batch(tiny_args, tmp_path):
    """Global batch 4: two gloo processes x 2 images vs one process x 4 images, two steps, with
    SSD augmentation on (it is seeded per sample index, so both runs see the same images).
    BatchNorm: with --sync-bn the two processes normalise with the statistics of all 4 images,
    as the single process does; without it each would use its own 2 (not the same training).
    The runs differ in summation order only, and BatchNorm over 2-4 values amplifies that
    rounding ~1e4-fold per step: in float32 the difference was 1e-4..7e-4 and depended on the
    CPU's kernels (AVX-512 vs AVX2), and PADet's hard thresholds (θ rule, matching against
    promoted anchors) could turn it into different decisions. So both run in float64
    (``--dtype float64``), where the same amplification leaves ~1e-11: the bound follows from
    float64's eps (:data:`DDP_ATOL`), and the default PADet network (APM, θ rule, FAM) is the one
    tested. Both runs are NCHW, so that the process count is the only difference."""
    extra = ("--max-steps", "2", "--warmup-epochs", "0", "--sync-bn", "--dtype", "float64", "--channels-last", "no")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", "-m", "training.train", *tiny_args(tmp_path / "ddp", *extra)],
        env=_env(), capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = _run(tiny_args(tmp_path / "one", *extra))
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _load(tmp_path / "ddp" / "last.pth"), _load(tmp_path / "one" / "last.pth")
    assert a["step"] == b["step"] == 2 and a["world_size"] == 2 and b["world_size"] == 1
    assert b["model"]["encoder.fc6.weight"].dtype == torch.float64
    torch.manual_seed(0)
    init = PADet(PADetConfig.from_dict(b["config"])).state_dict()
    moved = 0.0
    for k, v in b["model"].items():
        if v.is_floating_point():
            torch.testing.assert_close(a["model"][k], v, rtol=0, atol=DDP_ATOL, msg=lambda m: f"{k}: {m}")
            if "running" not in k:
                moved = max(moved, float((v - init[k]).abs().max()))
    # the two steps really trained (0.075 measured), so agreement within DDP_ATOL is not trivial
    assert moved > 1e-2


@pytest.mark.timeout(240)
def test_sigkill_after_a_checkpoint_then_resume_gives_the_parameters_of_an_uninterrupted_run(tiny_args, tmp_path):
    n = 3  # checkpoint interval; 4 steps per epoch, so the kill lands mid-epoch and the resume crosses epochs
    killed = tmp_path / "killed"
    args = tiny_args(killed, "--ckpt-every-steps", str(n), "--epochs", "100")
    proc = subprocess.Popen([sys.executable, "-m", "training.train", *args], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (killed / "last.pth").exists():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    k = _load(killed / "last.pth")["step"]  # normally n; later if the poll was slow
    assert k % n == 0 and k > 0
    resumed = _run(tiny_args(killed, "--ckpt-every-steps", str(n), "--epochs", "100", "--max-steps", str(k + n),
                             "--resume"))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed at epoch {k // 4}, step {k}" in resumed.stdout
    straight = _run(tiny_args(tmp_path / "straight", "--epochs", "100", "--max-steps", str(k + n)))
    assert straight.returncode == 0, straight.stderr[-3000:]
    a, b = _load(killed / "last.pth"), _load(tmp_path / "straight" / "last.pth")
    assert a["step"] == b["step"] == k + n and (a["epoch"], a["epoch_step"]) == (b["epoch"], b["epoch_step"])
    for key, v in b["model"].items():
        assert torch.equal(a["model"][key], v), key
    for i, s in b["optimizer"]["state"].items():
        assert torch.equal(a["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == k + n
    # the step log continues without the rows the killed run wrote past its checkpoint
    rows = [json.loads(line) for line in (killed / "steps.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (tmp_path / "straight" / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, k + n + 1))
    # the same arithmetic as the uninterrupted run (its parameters are torch.equal above), so equal losses
    assert [r["total"] for r in rows] == [r["total"] for r in ref]


def _poison_third_step(monkeypatch, poison):
    """Make ``padet_loss`` return ``poison(parts, outputs)`` at its third call."""
    real = train_mod.padet_loss
    calls = {"n": 0}

    def loss(outputs, *a, **kw):
        parts = real(outputs, *a, **kw)
        calls["n"] += 1
        return poison(parts, outputs) if calls["n"] == 3 else parts

    monkeypatch.setattr(train_mod, "padet_loss", loss)


def test_nan_loss_stops_naming_the_step_exits_nonzero_and_keeps_the_last_good_checkpoint(
    tiny_args, tmp_path, monkeypatch, capsys
):
    def nan_loss(parts, outputs):
        nan = float("nan")
        return {**parts, "det_cls": parts["det_cls"] * nan, "total": parts["total"] * nan}

    _poison_third_step(monkeypatch, nan_loss)
    code = main(tiny_args(tmp_path, "--ckpt-every-steps", "1", "--max-steps", "6"))
    err = capsys.readouterr().err
    assert code == 3
    assert "non-finite loss at step 3" in err and "det_cls=nan" in err and "last.pth is kept" in err
    ckpt = _load(tmp_path / "last.pth")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_nan_gradient_under_a_finite_loss_stops_before_the_weights_are_spoilt(tiny_args, tmp_path, monkeypatch, capsys):
    """d sqrt(x)/dx at 0 is inf, times 0 is NaN: a finite loss with NaN gradients. Stepping on them
    would make the FAM offsets NaN, and deform_conv2d segfaults on those on CPU."""

    def nan_grad(parts, outputs):
        return {**parts, "total": parts["total"] + torch.sqrt(outputs.cls_logits.sum() * 0.0)}

    _poison_third_step(monkeypatch, nan_grad)
    assert main(tiny_args(tmp_path, "--ckpt-every-steps", "1", "--max-steps", "6")) == 3
    assert "non-finite gradient at step 3" in capsys.readouterr().err
    assert _load(tmp_path / "last.pth")["step"] == 2


def test_a_run_writes_step_and_epoch_logs_a_plot_and_best_checkpoint_by_val_ap50(tiny_args, tmp_path, capsys):
    code = main(tiny_args(tmp_path, "--epochs", "2", "--eval-every", "1"))
    out = capsys.readouterr().out
    assert code == 0 and "val AP" in out
    steps = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == list(range(1, 9))
    assert {"lr", "total", "apm_cls", "apm_reg", "det_cls", "det_reg", "images_per_s"} <= set(steps[0])
    epochs = (tmp_path / "epochs.csv").read_text().splitlines()
    assert epochs[0].startswith("epoch,step,lr,total") and len(epochs) == 3 and "AP50" in epochs[0]
    assert (tmp_path / "steps.csv").is_file() and (tmp_path / "curves.png").stat().st_size > 1000
    last, best = _load(tmp_path / "last.pth"), _load(tmp_path / "best.pth")
    assert last["epoch"] == 2 and last["class_names"][0] == "circle" and best["best_ap50"] == max(
        json.loads(line)["AP50"] for line in (tmp_path / "epochs.jsonl").read_text().splitlines()
    )
    assert {"config", "model", "class_names", "epoch"} <= set(best)


def test_max_minutes_stops_cleanly_with_a_checkpoint(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--max-minutes", "0.0001")) == 0
    assert "--max-minutes 0.0001 reached at step 1" in capsys.readouterr().out
    assert _load(tmp_path / "last.pth")["step"] == 1


def test_data_dir_without_annotations_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "train").mkdir()
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "instances_train.json" in err and "training.data.synth" in err


def test_a_per_process_batch_of_one_is_refused_because_of_batchnorm(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--batch-size", "1")) == 2
    assert "BatchNorm" in capsys.readouterr().err


def test_float64_with_amp_is_refused(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--dtype", "float64", "--amp")) == 2
    assert "--amp computes in float16" in capsys.readouterr().err


def test_missing_backbone_weights_name_the_expected_file(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--backbone-weights", str(tmp_path / "nope.pth"))) == 2
    err = capsys.readouterr().err
    assert "nope.pth" in err and "vgg16-397923af.pth" in err


def test_resuming_with_a_different_network_names_the_differing_field(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--max-steps", "1")) == 0
    assert main(tiny_args(tmp_path, "--max-steps", "2", "--resume", "--no-apm-score")) == 2
    err = capsys.readouterr().err
    assert "different network" in err and "use_apm_score: True != False" in err


def test_training_into_a_directory_that_holds_a_run_is_refused_unless_resume_or_exist_ok(tiny_args, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args(out, "--max-steps", "1")) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(tiny_args(out, "--max-steps", "2")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run" in err and "--resume" in err and "--exist-ok" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing touched
    assert main(tiny_args(out, "--max-steps", "2", "--resume")) == 0
    assert _load(out / "last.pth")["step"] == 2
    assert main(tiny_args(out, "--max-steps", "1", "--exist-ok")) == 0  # asked for: starts over
    assert _load(out / "last.pth")["step"] == 1


def test_default_run_directories_get_a_fresh_suffix_instead_of_replacing_a_run(tiny_args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [a for a in tiny_args(tmp_path / "unused") if a not in ("--out", str(tmp_path / "unused"))]
    (tmp_path / "runs" / "tiny-3").mkdir(parents=True)  # an empty directory is free
    for _ in range(3):
        assert main([*args, "--name", "tiny", "--max-steps", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny", "tiny-2", "tiny-3"]
    assert all((tmp_path / "runs" / n / "last.pth").is_file() for n in ("tiny", "tiny-2", "tiny-3"))
    assert "run dir runs/tiny-3" in capsys.readouterr().out
    assert main([*args, "--name", "tiny", "--max-steps", "2", "--resume"]) == 0  # resume: the plain name
    assert _load(tmp_path / "runs" / "tiny" / "last.pth")["step"] == 2


def test_restarting_a_run_removes_the_temporary_files_of_a_killed_checkpoint_write(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--max-steps", "1")) == 0
    stale = [tmp_path / ".last.pth.k1l2.tmp", tmp_path / ".best.pth.x9.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    other = tmp_path / ".notes.tmp"  # not ours: kept
    other.write_text("x")
    assert main(tiny_args(tmp_path, "--max-steps", "2", "--resume")) == 0
    assert not any(p.exists() for p in stale) and other.exists()
    assert "removed 2 temporary checkpoint file(s)" in capsys.readouterr().out


def test_a_pickle_given_as_backbone_weights_is_one_line_without_torchs_weights_only_advice(tiny_args, tmp_path, capsys):
    import pickle

    bad = tmp_path / "weights.pth"
    bad.write_bytes(pickle.dumps({"features.0.weight": os.system}))  # a pickled function: refused, never run
    assert main(tiny_args(tmp_path / "run", "--backbone-weights", str(bad))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.pth" in err and "not a file of plain tensors" in err, err
    assert "weights_only" not in err and "Traceback" not in err


def test_max_cpu_minutes_stops_cleanly_with_a_checkpoint(tiny_args, tmp_path, capsys):
    assert main(tiny_args(tmp_path, "--max-cpu-minutes", "0.0001")) == 0
    assert "--max-cpu-minutes 0.0001 reached at step 1" in capsys.readouterr().out


def test_init_weights_with_frozen_batchnorm_fine_tunes_from_the_file_and_keeps_its_statistics(tiny_args, tmp_path):
    """--init-weights starts a fresh run (step 0) from the file's weights; --freeze-bn keeps every
    BatchNorm's running statistics as the file has them while the convs train."""
    assert main(tiny_args(tmp_path / "a", "--max-steps", "2")) == 0
    first = _load(tmp_path / "a" / "last.pth")["model"]
    torch.save(first, tmp_path / "init.pth")  # a plain state dict
    assert main(tiny_args(tmp_path / "b", "--max-steps", "2", "--init-weights", str(tmp_path / "init.pth"),
                          "--freeze-bn")) == 0  # fmt: skip
    ckpt = _load(tmp_path / "b" / "last.pth")
    assert ckpt["step"] == 2
    after = ckpt["model"]
    stats = [k for k in first if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(after[k], first[k]) for k in stats)
    assert not torch.equal(after["heads.0.cls.weight"], first["heads.0.cls.weight"])
    # the same without --freeze-bn: the statistics move
    assert main(tiny_args(tmp_path / "c", "--max-steps", "2", "--init-weights", str(tmp_path / "init.pth"))) == 0
    moved = _load(tmp_path / "c" / "last.pth")["model"]
    assert any(not torch.equal(moved[k], first[k]) for k in stats)
