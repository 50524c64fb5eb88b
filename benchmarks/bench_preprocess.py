"""Pre-processing on the OpenVINO path: OpenCV (what the SDK does) against OpenVINO's own
preprocessing API (PrePostProcessor: resize, BGR->RGB, mean/std folded into the compiled model).

Why measure: OpenVINO can take the raw uint8 HxWx3 frame and resize/normalise inside the graph,
which saves the float blob that OpenCV builds on the caller's thread, but moves that work
into the inference threads. Timed per frame, side by side in one run:

  opencv   Detector.preprocess (cv2.dnn.blobFromImageWithParams) + infer of the SDK's model
  numpy    padet_sdk.preprocess.to_blob_numpy, for OpenCV builds without cv2.dnn + the same infer
  ov-ppp   one infer of the model with a PrePostProcessor on a u8 NHWC BGR input of any size

Also printed: the largest class-score difference between the opencv and ov-ppp outputs on a
rendered shapes scene. The two bilinear resizes differ when they shrink a frame a lot; the
model was trained with OpenCV's.

  python benchmarks/bench_preprocess.py                       # embedded model, 1280x720 and 640x480
  python benchmarks/bench_preprocess.py --model m.xml --threads 1 --runs 200
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.bench_latency import time_fn  # noqa: E402
from padet_sdk import DEFAULT_MODEL, Detector  # noqa: E402
from padet_sdk.cli import positive_int  # noqa: E402
from padet_sdk.preprocess import to_blob_numpy  # noqa: E402


def ppp_model(path: Path, det: Detector, threads: int | None):
    """The same IR compiled with resize + colour + normalisation inside (u8 NHWC BGR input)."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

    core = ov.Core()
    model = core.read_model(str(path))
    meta = det.metadata
    ppp = PrePostProcessor(model)
    inp = ppp.input(0)
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR) \
        .set_spatial_dynamic_shape()  # fmt: skip
    inp.model().set_layout(ov.Layout("NCHW"))
    pre = inp.preprocess().convert_element_type(ov.Type.f32)
    if meta.pixel_order == "RGB":
        pre.convert_color(ColorFormat.RGB)
    pre.resize(ResizeAlgorithm.RESIZE_LINEAR)
    pre.mean([255.0 * m for m in meta.mean]).scale([255.0 * s for s in meta.std])
    config: dict = {}
    if meta.precision in ("fp32", "fp16"):
        config["INFERENCE_PRECISION_HINT"] = "f32"  # as the SDK does for float models
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(ppp.build(), "CPU", config)
    request = compiled.create_infer_request()
    names = [o.get_any_name() for o in compiled.outputs]
    idx = [names.index(n) for n in meta.outputs]

    def run(frame: np.ndarray) -> list[np.ndarray]:
        res = request.infer({0: frame[None]})
        return [res[i] for i in idx]

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_preprocess", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="OpenVINO .xml (default: the embedded model)")
    p.add_argument("--sizes", nargs="+", default=["1280x720", "640x480"], help="frame sizes WxH")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: the engine's)")
    p.add_argument("--runs", type=positive_int, default=100, help="timed frames per row (median)")
    args = p.parse_args(argv)
    if args.model.suffix.lower() != ".xml":
        p.error("the OpenVINO preprocessing API needs an OpenVINO .xml model")

    det = Detector(args.model, num_threads=args.threads)
    ppp = ppp_model(args.model, det, args.threads)
    print(f"{args.model.name}: input {det.input_size}, {det.metadata.precision}; threads {args.threads or 'engine default'}; "
          f"median of {args.runs}; {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")  # fmt: skip
    print(f"{'frame':>10s} {'opencv ms':>10s} {'numpy ms':>9s} {'ov-ppp ms':>10s} {'ppp/opencv':>11s} {'max |score diff|':>17s}")
    from training.data.synth import render_scene  # numpy + OpenCV only

    meta = det.metadata
    recipe = (meta.input_size, meta.pixel_order, meta.mean, meta.std)
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        frame = render_scene(np.random.default_rng(0), (w, h))[0]  # shapes on texture, like the demo clip
        opencv = 1e3 * time_fn(lambda: det._infer(det.preprocess([frame])), args.runs, warmup=3)[0]
        numpy_ = 1e3 * time_fn(lambda: det._infer(to_blob_numpy([frame], *recipe)), args.runs, warmup=3)[0]
        ov_ppp = 1e3 * time_fn(lambda: ppp(frame), args.runs, warmup=3)[0]
        a = dict(zip(det.metadata.outputs, det._infer(det.preprocess([frame]))))
        b = dict(zip(det.metadata.outputs, ppp(frame)))
        diff = max(float(np.abs(a[k] - b[k]).max()) for k in ("cls_scores", "apm_scores") if k in a)
        print(f"{size:>10s} {opencv:10.3f} {numpy_:9.3f} {ov_ppp:10.3f} {ov_ppp / opencv:10.2f}x {diff:17.2e}")
    det.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
