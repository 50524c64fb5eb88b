"""benchmarks/gpu_check.py, the prepared GPU check: its CPU smoke mode runs every stage (so the script
cannot rot between the sessions that are lent a GPU), and what cannot run is reported, not raised."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
STAGES = ("environment", "correctness", "training", "inference", "compile")


def run_check(out: Path, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    report = json.loads((out / "gpu_check.json").read_text())
    return proc, report


def assert_ok_or_skipped_with_reason(report: dict, stages=STAGES) -> None:
    for name in stages:
        stage = report["stages"][name]
        assert stage["status"] in ("ok", "skipped"), (name, stage.get("status"), stage.get("reason"), stage.get("checks"))
        if stage["status"] == "skipped":
            assert stage.get("reason"), name


@pytest.mark.slow
def test_cpu_smoke_runs_every_stage_as_on_the_gpu_machine(tmp_path):
    # the GPU machine has no pycocotools, openvino or nncf: block them, as there
    out = tmp_path / "gpu"
    # wide time boxes: on a loaded AVX2-only 2-core CPU the inference stage took 127 s (box 120 s)
    proc, rep = run_check(out, "--device", "cpu", "--smoke", "--block-modules", "pycocotools,openvino,nncf",
                          "--budget-s", "400", "--total-budget-s", "1500", timeout=1600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert rep["schema"] == "padet-gpu-check/1" and rep["mode"] == "smoke" and rep["finished"]
    assert_ok_or_skipped_with_reason(rep)
    assert (out / "gpu_check.txt").read_text().startswith("PADet GPU check (smoke)")

    env = rep["stages"]["environment"]
    assert env["status"] == "ok" and env["device_used"] == "cpu"
    assert set(env["missing"]) >= {"pycocotools", "openvino", "nncf"}
    assert all(v == "ok" for v in env["imports_without_pycocotools_openvino_nncf"].values())
    assert env["pycocotools"].startswith("stand-in")  # training read the data through the stand-in

    corr = rep["stages"]["correctness"]
    assert corr["status"] == "ok"
    ran = [c for c in corr["checks"].values() if c["pass"] is not None]
    assert len(ran) >= 4 and all(c["pass"] for c in ran)  # FAM op, forward, backward, ONNX
    model = corr["models"]["vgg16_384"]
    tol = model["tolerance"]
    assert 0 < tol["forward_rel_l2"] < tol["backward_rel_l2"] < 0.1
    assert max(model["device_vs_cpu"]["forward_rel_l2"].values()) <= tol["forward_rel_l2"]
    assert model["device_vs_cpu"]["grad_params_rel_l2"] <= tol["backward_rel_l2"]
    assert model["device_vs_cpu"]["grad_input_rel_l2"] <= tol["backward_rel_l2"]
    assert max(corr["onnx"]["rel_l2"].values()) <= corr["onnx"]["tol"]
    assert max(corr["checks"]["grid_sample form on cpu vs torchvision cpu"]["rel_l2"].values()) <= corr["fam_tolerance"]["rel_l2"]

    train = rep["stages"]["training"]
    assert train["status"] == "ok"
    assert train["ddp_check"]["ok"] and train["ddp_check"]["backend"] == "gloo"
    assert train["loss_ab"]["finite"] and all(math.isfinite(v) for v in (train["loss_ab"]["first"], train["loss_ab"]["last"]))
    resume = train["resume"]
    assert resume["resumed_at_step"] == resume["step_before"] == train["run_a"]["final_step"] == 2
    assert resume["final_step"] == 3 and resume["first_logged_step_after_resume"] == 3 and resume["log_steps_increasing"]
    assert train["run_c_channels_last"]["rc"] == 0 and train["run_c_channels_last"]["loss"]["finite"]
    assert train["run_a"]["peak_rss_mib"] > 0

    inf = rep["stages"]["inference"]
    assert inf["status"] == "ok"
    rows = {(r["precision"], r["postprocess"]): r for r in inf["rows"]}
    assert rows[("fp32", False)]["fps"] > 0 and rows[("fp32", True)]["fps"] > 0
    assert rows[("fp32", False)]["ratio_to_ssd300"] > 0 and rows[("fp32", False)]["paper_fps_1080ti"] == 62.5
    for item in inf.get("skipped", []):  # e.g. bf16 autocast: torchvision's CPU deform_conv2d has no bf16 kernel
        assert item["reason"]
    comp = rep["stages"]["compile"]
    if comp["status"] == "ok":
        assert comp["rows"] and all(r["speedup_vs_eager"] > 0 for r in comp["rows"])


def test_without_cuda_the_gpu_stages_are_skipped_with_the_reason(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    # the exact device command on a machine without a GPU: no crash, every GPU stage says why
    proc, rep = run_check(tmp_path / "gpu", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert rep["stages"]["environment"]["status"] == "ok"
    assert rep["stages"]["environment"]["cuda_available"] is False
    for name in STAGES[1:]:
        assert rep["stages"][name]["status"] == "skipped"
        assert "CUDA not available" in rep["stages"][name]["reason"]


def test_an_exhausted_total_budget_skips_every_stage_and_still_writes_the_report(tmp_path):
    proc, rep = run_check(tmp_path / "gpu", "--device", "cpu", "--smoke", "--total-budget-s", "0", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_ok_or_skipped_with_reason(rep)
    assert all(rep["stages"][s]["status"] == "skipped" and "total budget" in rep["stages"][s]["reason"] for s in STAGES)
    assert (tmp_path / "gpu" / "gpu_check.txt").is_file()
