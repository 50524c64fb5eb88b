"""Tracking quality and cost: padet_sdk.track.Tracker beside a reference ByteTrack, on the same
detections, scored by py-motmetrics (MOTA, IDF1, ID switches) against the synthetic clip's
known identities (training/data/synth_clip.py).

  nice -n 10 python benchmarks/bench_tracking.py                 # 3 seeds x 300 frames
  python benchmarks/bench_tracking.py --frames 100 --seeds 0     # quick look

Rows:
  gt+noise  the clip's boxes (objects at least 30 % visible: MOTChallenge's "considered" ones)
            with Gaussian jitter (3 % of the box size), 10 % of them dropped at random and random
            scores in [0.3, 1]: the tracker alone. ``idf1_ceiling`` is the IDF1 of a perfect
            tracker that reports only the detections it is given, 2k / (k + g) for k kept of g
            true boxes: the dropped ones are misses for every such tracker.
  gt+jitter the same without dropped boxes (ceiling 1): identity keeping through the clip's
            occlusions alone.
  model     the embedded model's detections (padet_sdk/models/padet_shapes.xml) on the rendered
            frames: the whole system. Hypotheses on crowd (< 30 % visible) objects count as
            false positives, for both trackers alike.
  cost      ms per update at 10, 50 and 200 objects moving with constant velocity, on one core
            (this process pinned to one CPU, BLAS/OpenMP at one thread), min and median of 7 runs.

``padet coast=2`` also reports a lost track's predicted box for 2 frames (``Tracker(coast=2)``).
The tracker's settings were chosen on seeds 10-13 (``--seeds 10 11 12 13``), never on the
reported seeds 0-2.
The reference is ``trackers.ByteTrackTracker`` (Roboflow's trackers, the ByteTrack that
supervision's ``sv.ByteTrack`` moved to). It requires the GUI ``opencv-python`` wheel, which
needs libGL; installed with ``pip install --no-deps trackers supervision`` (+ their small pure
Python dependencies) it runs on the headless OpenCV the SDK uses. Without it those rows are
skipped and say so. Results: benchmarks/results/tracking.json.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/scipy are imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from padet_sdk.cpu import proc_cpuinfo  # noqa: E402
from padet_sdk.detections import DETECTION_DTYPE, Detections  # noqa: E402
from padet_sdk.track import Tracker  # noqa: E402
from training.data.synth import CLASS_NAMES  # noqa: E402
from training.data.synth_clip import render_clip_objects  # noqa: E402
from training.mot_metrics import mot_scores  # noqa: E402

SIZE = (640, 480)
#: one frame of ground truth: (boxes (K, 4) xyxy, ids (K,)), considered objects only
Truth = tuple[np.ndarray, np.ndarray]
#: a tracker under test: detections of one frame -> (boxes (M, 4) xyxy, ids (M,))
Step = Callable[[Detections], tuple[np.ndarray, np.ndarray]]


def clip(seed: int, frames: int) -> tuple[list[np.ndarray], list[Truth], list[tuple[np.ndarray, np.ndarray]]]:
    """Rendered frames, ground truth per frame, and (boxes, labels) of the considered objects."""
    images, truth, objs = [], [], []
    for image, boxes, labels, crowd, ids, _ in render_clip_objects(frames, SIZE, seed=seed):
        keep = ~crowd
        images.append(image)
        truth.append((boxes[keep], ids[keep]))
        objs.append((boxes[keep], labels[keep] - 1))
    return images, truth, objs


def make_dets(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> Detections:
    data = np.zeros(len(boxes), DETECTION_DTYPE)
    data["box"], data["score"], data["class_id"] = boxes, scores, classes
    order = np.argsort(-data["score"], kind="stable")
    return Detections(data[order], CLASS_NAMES, (SIZE[1], SIZE[0]))


def noisy_gt(objs: list[tuple[np.ndarray, np.ndarray]], seed: int, jitter: float = 0.03, drop: float = 0.1) -> list[Detections]:
    rng = np.random.default_rng(1000 + seed)
    out = []
    for boxes, classes in objs:
        wh = boxes[:, 2:] - boxes[:, :2]
        b = boxes + rng.normal(0, jitter, boxes.shape) * np.concatenate([wh, wh], 1)
        keep = rng.random(len(b)) >= drop
        out.append(make_dets(b[keep], rng.uniform(0.3, 1.0, len(b))[keep], classes[keep]))
    return out


def model_dets(images: list[np.ndarray]) -> list[Detections]:
    from padet_sdk import Detector

    with Detector() as det:
        return [det(im) for im in images]


def ours(**kwargs: Any) -> Step:
    tracker = Tracker(**kwargs)

    def step(d: Detections) -> tuple[np.ndarray, np.ndarray]:
        t = tracker.update(d)
        return t.boxes, t.track_ids

    return step


def reference(**kwargs: Any) -> Step | None:
    """trackers.ByteTrackTracker, or None when it is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import supervision as sv
            from trackers import ByteTrackTracker
    except ImportError:
        return None
    tracker = ByteTrackTracker(**kwargs)

    def step(d: Detections) -> tuple[np.ndarray, np.ndarray]:
        out = tracker.update(sv.Detections(xyxy=d.boxes.astype(np.float32), confidence=d.scores.copy(), class_id=d.class_ids.astype(int)))
        ok = out.tracker_id >= 0 if out.tracker_id is not None else np.zeros(len(out), bool)
        return out.xyxy[ok], out.tracker_id[ok]

    return step


def synthetic_objects(n: int, frames: int, seed: int = 0) -> list[Detections]:
    """``n`` boxes moving at constant velocity in a 1920x1080 frame, a little jitter."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 1000], (n, 2))
    vel = rng.uniform(-4, 4, (n, 2))
    size = rng.uniform(20, 60, (n, 2))
    out = []
    for t in range(frames):
        xy = start + vel * t + rng.normal(0, 1, (n, 2))
        data = np.zeros(n, DETECTION_DTYPE)
        data["box"], data["score"] = np.concatenate([xy, xy + size], 1), rng.uniform(0.2, 1, n)
        out.append(Detections(data, ("object",), (1080, 1920)))
    return out


def cost_ms(make: Callable[[], Step], seq: list[Detections], warm: int = 20, runs: int = 7) -> dict[str, float]:
    """Min and median over ``runs`` of the mean ms per update after ``warm`` updates (the min is
    the uncontended cost on a shared machine)."""
    times = []
    for _ in range(runs):
        step = make()
        for d in seq[:warm]:
            step(d)
        t0 = time.perf_counter()
        for d in seq[warm:]:
            step(d)
        times.append((time.perf_counter() - t0) / (len(seq) - warm) * 1e3)
    return {"min": round(min(times), 3), "median": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tracking.json")
    ap.add_argument("--cost-runs", type=int, default=7, help="timed runs per cost row (min and median reported)")
    ap.add_argument("--cost-frames", type=int, default=220, help="updates per timed run (the first 20 untimed)")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core
    model, _ = proc_cpuinfo()
    ref_kwargs = {"frame_rate": 25.0}  # the clip's rate; the rest are trackers' defaults
    have_ref = reference() is not None
    if not have_ref:
        print("reference: trackers is not installed (pip install --no-deps trackers supervision); its rows are skipped", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        images, truth, objs = clip(seed, args.frames)
        inputs = {"gt+noise": noisy_gt(objs, seed), "gt+jitter": noisy_gt(objs, seed, drop=0.0), "model": model_dets(images)}
        for kind, dets in inputs.items():
            for name, make in (("padet", lambda: ours()), ("padet coast=2", lambda: ours(coast=2)),
                               ("reference", lambda: reference(**ref_kwargs))):  # fmt: skip
                step = make()
                if step is None:
                    continue
                rows.append({"input": kind, "tracker": name, "seed": seed, **mot_scores(truth, map(step, dets))})
                if kind.startswith("gt"):  # the best IDF1 any tracker that reports detections can get
                    k, g = sum(len(d) for d in dets), sum(len(t[1]) for t in truth)
                    rows[-1]["idf1_ceiling"] = 2 * k / (k + g)
                print(f"seed {seed} {kind:9s} {name:13s} " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in rows[-1].items() if k not in ("input", "tracker", "seed")), flush=True)  # fmt: skip
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    summary = {}
    for kind in ("gt+noise", "gt+jitter", "model"):
        for name in ("padet", "padet coast=2", "reference"):
            mine = [r for r in rows if r["input"] == kind and r["tracker"] == name]
            if mine:
                keys = ("mota", "idf1", "id_switches", "precision", "recall", *(("idf1_ceiling",) if kind.startswith("gt") else ()))
                summary[f"{kind}/{name}"] = {k: round(statistics.mean(r[k] for r in mine), 4) for k in keys}
    cost: dict[str, dict[str, float]] = {}
    for n in (10, 50, 200):
        seq = synthetic_objects(n, args.cost_frames)
        cost[str(n)] = {"padet": cost_ms(lambda: ours(), seq, runs=args.cost_runs)}
        if have_ref:
            cost[str(n)]["reference"] = cost_ms(lambda: reference(**ref_kwargs), seq, runs=args.cost_runs)  # type: ignore[arg-type,return-value]
        print(f"cost {n:3d} objects: " + ", ".join(f"{k} {v['min']:.3f} ms/frame (median {v['median']:.3f})"
                                                  for k, v in cost[str(n)].items()), flush=True)  # fmt: skip
    doc = {
        "cpu": model, "cores_used": 1, "python": platform.python_version(), "frames": args.frames, "seeds": args.seeds,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "reference": _versions() if have_ref else None, "reference_settings": ref_kwargs if have_ref else None,
        "padet_settings": {k: getattr(Tracker(), k) for k in ("high_score", "low_score", "new_track_score", "match_iou", "low_match_iou", "birth_iou", "class_cost", "lost_buffer", "coast", "recover_buffer", "recover_max", "recover_iou")},
        "summary": summary, "cost_ms_per_frame": cost, "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"\nCPU: {model}, one core\n")
    print("| input | tracker | MOTA | IDF1 | ID switches | precision | recall |\n|---|---|---|---|---|---|---|")
    for key, s in summary.items():
        kind, name = key.split("/")
        ceiling = f" (ceiling {s['idf1_ceiling']:.3f})" if "idf1_ceiling" in s and "coast" not in name else ""
        print(f"| {kind} | {name} | {s['mota']:.3f} | {s['idf1']:.3f}{ceiling} | {s['id_switches']:.1f} | {s['precision']:.3f} | {s['recall']:.3f} |")
    print("\n| objects | " + " | ".join(f"{k} ms/frame (min / median)" for k in cost["10"]) + " |\n|---|" + "---|" * len(cost["10"]))
    for n, c in cost.items():
        print(f"| {n} | " + " | ".join(f"{v['min']:.2f} / {v['median']:.2f}" for v in c.values()) + " |")
    print(f"\nwrote {args.out}")
    return 0


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("trackers", "supervision")}


if __name__ == "__main__":
    raise SystemExit(main())
