"""Save one image's real PADet outputs on the 18,400 anchors of vgg16_384, for
``bench_postprocess.py --real``.

The shipped demo model is the vgg16_384 network trained at 192 (4,610 anchors). Its weights
are all convolutions, so the checkpoint rebuilt at ``--input-size 384`` is the same trained
network on the paper's 18,400 anchors. Its scores there are a trained model's (peaky,
mostly background), unlike synthetic outputs. The outputs are what the exported graph hands
the SDK (``export.graph.InferenceGraph``: sigmoid APM scores, softmax class scores, raw deltas).

  python benchmarks/dump_real_outputs.py --checkpoint runs/demo_model/run/last.pth
  python benchmarks/dump_real_outputs.py --checkpoint C --image photo.jpg --out real.npz
  python benchmarks/bench_postprocess.py --real real_outputs.npz

Without --image, a synthetic-shapes scene of --input-size pixels is rendered (--seed), the
kind of image the demo model was trained on. Needs torch (training/export packages).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def real_outputs(checkpoint: Path, image: np.ndarray, input_size: int) -> dict[str, np.ndarray]:
    """Outputs of the checkpoint's network rebuilt at ``input_size`` on one BGR image."""
    import cv2
    import torch

    from export.graph import InferenceGraph
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.config import PADetConfig
    from training.model import PADet

    ckpt = load_checkpoint(checkpoint)
    cfg = PADetConfig.from_dict({**ckpt["config"], "backbone_weights": None, "input_size": input_size})
    model = PADet(cfg)
    res = model.load_state_dict(ckpt["model"], strict=False)
    if res.missing_keys or res.unexpected_keys:
        raise CheckpointError(f"{checkpoint}: the network does not rebuild at {input_size}: {res}")
    graph = InferenceGraph(model.eval())
    rgb = cv2.cvtColor(cv2.resize(image, (input_size, input_size), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = (rgb.astype(np.float32) / 255.0 - np.float32(cfg.mean)) / np.float32(cfg.std)
    with torch.no_grad():
        outs = graph(torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0))
    arrays = {name: t[0].numpy() for name, t in zip(graph.output_names, outs)}
    arrays["anchors"] = model.anchors.numpy()
    return arrays


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dump_real_outputs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="a training checkpoint (e.g. runs/demo_model/run/last.pth from export/build_demo_model.py)")
    p.add_argument("--image", type=Path, default=None, help="BGR image to run on (default: a rendered shapes scene)")
    p.add_argument("--input-size", type=int, default=384, help="network input size (default 384: 18,400 anchors)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rendered scene")
    p.add_argument("--theta", type=float, default=0.01, help="only reported: anchors passing the APM filter (default 0.01)")
    p.add_argument("--out", type=Path, default=Path("real_outputs.npz"), help="output .npz (default real_outputs.npz)")
    args = p.parse_args(argv)
    if not args.checkpoint.is_file():
        p.error(f"checkpoint {args.checkpoint} not found; build one with python export/build_demo_model.py")
    import cv2

    if args.image is not None:
        image = cv2.imread(str(args.image))
        if image is None:
            p.error(f"cannot read image {args.image}")
    else:
        from training.data.synth import render_scene

        image = render_scene(np.random.default_rng(args.seed), args.input_size)[0]
    arrays = real_outputs(args.checkpoint, image, args.input_size)
    np.savez(args.out, **arrays)
    cls = arrays["cls_scores"]
    msg = f"wrote {args.out}: {len(arrays['anchors'])} anchors, {cls.shape[1] - 1} classes"
    if "apm_scores" in arrays:  # anchors the theta rule lets through to classification
        msg += f", {int((arrays['apm_scores'] >= args.theta).sum())} with an APM score >= theta={args.theta}"
    print(msg)
    return 0


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    raise SystemExit(run_entry_point(main, extras="train"))
