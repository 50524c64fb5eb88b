"""Time PADet post-processing per frame: native (Cython) vs numpy reference vs torchvision.

Inputs are one image's raw outputs on the 18,400 anchors of vgg16_384: synthetic ones
("peaky" scores like a trained model's, and "uniform" ones that tie every score and saturate
pre_nms_top_k), plus real ones when ``--real FILE`` points at an .npz saved from a model
(keys anchors, apm_scores, apm_deltas, cls_scores, det_deltas; apm_* may be missing; a leading
batch axis is allowed and image 0 is used).

Rows:
  native       padet_sdk.native.postprocess, the SDK's path (the Cython kernels).
  numpy        padet_sdk.postprocess_numpy.postprocess, the pure-numpy oracle.
  torchvision  the same decode/filter/top-k in torch + torchvision.ops.batched_nms. It is HARD
               NMS (torchvision has no soft-NMS), so it is a speed yardstick, not the same
               output. Skipped with a message when torch/torchvision are not installed.

Everything runs on one thread (BLAS/OpenMP env vars and torch.set_num_threads(1)); the number
is the median over --runs frames after one warm-up call. Targets: native >= 20x numpy and
<= 2 ms/frame.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/torch are imported: one thread everywhere

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "native"))  # synthetic.py, the test outputs
from synthetic import synthetic_outputs  # noqa: E402

from padet_sdk import native, postprocess_numpy  # noqa: E402
from padet_sdk.boxes import BBOX_XFORM_CLIP, DEFAULT_VARIANCES  # noqa: E402
from padet_sdk.options import PostprocessOptions  # noqa: E402

KEYS = ("anchors", "apm_scores", "apm_deltas", "cls_scores", "det_deltas")
OPTIONS = PostprocessOptions()


def load_real(path: str) -> dict[str, np.ndarray | None]:
    """Outputs saved from a model; drops a leading batch axis (image 0)."""
    data = np.load(path)
    missing = {"anchors", "cls_scores", "det_deltas"} - set(data.files)
    if missing:
        raise SystemExit(f"{path}: missing keys {sorted(missing)} (has {data.files})")
    out: dict[str, np.ndarray | None] = {}
    for key in KEYS:
        arr = data[key] if key in data.files else None
        if arr is not None and arr.ndim == (1 if key == "apm_scores" else 2) + 1:
            arr = arr[0]
        out[key] = arr
    return out


def torchvision_pipeline() -> Callable | None:
    """The same pipeline written as a torch user would (hard NMS), or None without torch."""
    try:
        import torch
        from torchvision.ops import batched_nms
    except ImportError as exc:
        print(f"torchvision row skipped: {exc}")
        return None
    torch.set_num_threads(1)
    clip = BBOX_XFORM_CLIP

    def decode(d, a):
        return torch.cat([a[:, :2] + d[:, :2] * 0.1 * a[:, 2:], a[:, 2:] * torch.exp((d[:, 2:] * 0.2).clamp(max=clip))], 1)

    @torch.no_grad()
    def run(anchors, apm_scores, apm_deltas, cls_scores, det_deltas):
        a = torch.from_numpy(anchors)
        promoted = a if apm_deltas is None else decode(torch.from_numpy(apm_deltas), a)
        b = decode(torch.from_numpy(det_deltas), promoted)
        boxes = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1).clamp(0, 1)
        cls = torch.from_numpy(cls_scores)[:, 1:]
        mask = cls >= OPTIONS.conf
        if apm_scores is not None:
            mask &= (torch.from_numpy(apm_scores) >= OPTIONS.theta)[:, None]
        idx, lab = mask.nonzero(as_tuple=True)
        scores = cls[idx, lab]
        top = scores.topk(min(OPTIONS.pre_nms_top_k, len(scores))).indices
        idx, lab, scores = idx[top], lab[top], scores[top]
        keep = batched_nms(boxes[idx], scores, lab, OPTIONS.iou)[: OPTIONS.max_det]
        return boxes[idx[keep]], scores[keep], lab[keep] + 1, idx[keep]

    return run


def numpy_pipeline(*outputs: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """The numpy oracle with the options the native row gets by default."""
    return postprocess_numpy.postprocess(*outputs, OPTIONS, DEFAULT_VARIANCES)


def median_ms(fn: Callable, args: list, runs: int) -> tuple[float, int]:
    """Median wall time of fn(*args) in ms over ``runs`` calls (after a warm-up), and its M."""
    n_det = len(fn(*args)[1])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times)), n_det


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", metavar="FILE", help=".npz of real outputs of one image (see above)")
    parser.add_argument("--runs", type=int, default=30, help="timed frames per row, at least 20 (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic outputs")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20")

    cases: list[tuple[str, dict]] = [
        ("peaky C=3", synthetic_outputs(3, args.seed)),
        ("peaky C=80", synthetic_outputs(80, args.seed)),
        ("uniform C=80 (top-k saturated)", synthetic_outputs(80, args.seed, kind="uniform")),
    ]
    if args.real:
        cases.append((f"real {Path(args.real).name}", load_real(args.real)))
    impls: dict[str, Callable | None] = {
        "native": native.postprocess,
        "numpy": numpy_pipeline,
        "torchvision": torchvision_pipeline(),
    }
    print(f"backend={native.BACKEND}, one thread (torch.set_num_threads(1), OMP/BLAS=1), "
          f"median of {args.runs} frames, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs")
    if native.BACKEND != "cython":
        print("WARNING: the extension is not built, the 'native' row runs numpy too")
    print(f"{'case':34s} {'impl':12s} {'ms/frame':>9s} {'x numpy':>8s} {'dets':>5s}")
    for name, outputs in cases:
        call_args = [outputs[k] for k in KEYS]
        ours, ref = native.postprocess(*call_args), numpy_pipeline(*call_args)
        same = all(np.array_equal(x, y) for x, y in zip(ours, ref))
        rows = {impl: median_ms(fn, call_args, args.runs) for impl, fn in impls.items() if fn is not None}
        for impl, (ms, n_det) in rows.items():
            ratio = rows["numpy"][0] / ms
            print(f"{name:34s} {impl:12s} {ms:9.3f} {ratio:7.1f}x {n_det:5d}")
        verdict = "meets" if rows["native"][0] <= 2.0 and rows["numpy"][0] / rows["native"][0] >= 20 else "MISSES"
        print(f"{'':34s} native == numpy: {same}; {verdict} the target (>= 20x numpy, <= 2 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
