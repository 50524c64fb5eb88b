"""benchmarks/bench_tracking.py end to end on a short clip: every row is scored and written."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tracking_writes_scores_and_costs(tmp_path):
    out = tmp_path / "tracking.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_tracking.py"), "--frames", "40", "--seeds", "0",
                        "--cost-runs", "1", "--cost-frames", "40", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    kinds = {(row["input"], row["tracker"]) for row in doc["rows"]}
    assert {("gt+noise", "padet"), ("gt+jitter", "padet coast=2"), ("model", "padet")} <= kinds
    for row in doc["rows"]:
        assert -1 <= row["mota"] <= 1 and 0 <= row["idf1"] <= 1
    gt = next(row for row in doc["rows"] if row["input"] == "gt+jitter" and row["tracker"] == "padet")
    assert gt["idf1"] > 0.8 and gt["idf1_ceiling"] == 1.0  # true boxes, nothing dropped: near-perfect identities
    assert set(doc["cost_ms_per_frame"]) == {"10", "50", "200"} and doc["cost_ms_per_frame"]["50"]["padet"]["min"] > 0
    assert "| model | padet |" in r.stdout
