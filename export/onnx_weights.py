"""Weights of an exported PADet ONNX file back into a PyTorch state dict (to fine-tune a shipped model).

  python export/onnx_weights.py --model padet_sdk/models/padet_shapes.onnx --out runs/init.pth

The exporter folds each BatchNorm into the conv before it (``X.0.weight`` then holds the folded
weight and ``X.0.weight_bias`` the folded bias), so such a BatchNorm comes back as the identity
plus that bias (weight 1, running mean 0, running variance 1 - eps): in eval mode the network
computes what the file does. Fine-tune it with ``training.train --init-weights ... --freeze-bn``
(BatchNorm kept in eval mode), where it behaves like the unfolded network it came from.
The configuration comes from the file's metadata (``preset`` + ``--config``/``--width`` given
here, since the metadata names only what the SDK needs).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

import numpy as np  # noqa: E402


def _conv_before(bn: str) -> str:
    """The conv a BatchNorm follows, by torchvision's naming: ``X.1`` after ``X.0`` in a
    Sequential, ``bnK`` after ``convK`` in a ResNet block."""
    parent, _, last = bn.rpartition(".")
    if last.isdigit():
        conv = str(int(last) - 1)
    elif last.startswith("bn") and last[2:].isdigit():
        conv = f"conv{last[2:]}"
    else:
        raise ValueError(f"cannot tell which conv the BatchNorm {bn} follows")
    return f"{parent}.{conv}" if parent else conv


def state_dict_from_onnx(onnx_path: str | Path, model) -> dict:
    """A state dict for ``model`` (a PADet of the file's architecture) from the file's
    initializers; ValueError naming the first tensor that is missing or has another shape."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name.removeprefix("model."): numpy_helper.to_array(i) for i in graph.initializer}
    # convs whose bias the exporter dropped (all zeros): the node has no bias input
    # conv weight -> the bias tensor its node reads: the exporter drops an all-zero bias and shares
    # equal tensors (every fresh FAM bias may point to one initializer)
    bias_at = {"Conv": 2, "DeformConv": 3}
    bias_of: dict[str, str | None] = {}
    for n in graph.node:
        if n.op_type in bias_at:
            i = bias_at[n.op_type]
            b = n.input[i] if len(n.input) > i and n.input[i] else None
            bias_of[n.input[1].removeprefix("model.")] = None if b is None else b.removeprefix("model.")
    no_bias = {w for w, b in bias_of.items() if b is None}
    own = model.state_dict()
    out = {}
    bn_mods = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for k, v in own.items():
        mod, _, leaf = k.rpartition(".")
        if mod in bn_mods:
            conv = _conv_before(mod)
            bias = inits.get(f"{conv}.weight_bias")
            if bias is None and f"{conv}.weight" in no_bias:  # folded to a zero bias, which the exporter dropped
                bias = np.zeros(int(bn_mods[mod].num_features), np.float32)
            if bias is None:
                raise ValueError(f"{onnx_path}: no folded bias {conv}.weight_bias for BatchNorm {mod}")
            eps = bn_mods[mod].eps
            fill = {"weight": np.ones_like(bias), "bias": bias, "running_mean": np.zeros_like(bias),
                    "running_var": np.full_like(bias, 1.0 - eps)}  # fmt: skip
            out[k] = torch.as_tensor(np.array(fill[leaf])) if leaf in fill else v.clone()
            continue
        src = inits.get(k)
        if src is None and leaf == "bias" and f"{mod}.weight" in bias_of:
            b = bias_of[f"{mod}.weight"]
            src = np.zeros(tuple(v.shape), np.float32) if b is None else inits.get(b)
        if src is None or tuple(src.shape) != tuple(v.shape):
            raise ValueError(f"{onnx_path}: {k} is {None if src is None else tuple(src.shape)}, expected {tuple(v.shape)}")
        out[k] = torch.as_tensor(np.array(src))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="PADet .onnx file")
    p.add_argument("--config", required=True, help="its preset (training.PRESETS)")
    p.add_argument("--width", type=float, default=None, help="channel multiplier (default: the preset's)")
    p.add_argument("--out", required=True, type=Path, help="state dict (.pth) to write")
    args = p.parse_args(argv)
    import torch

    from padet_sdk.model_file import read_metadata
    from training.model import build_model

    meta = read_metadata(args.model)
    over = {} if args.width is None else {"width": args.width}
    model = build_model(args.config, len(meta.class_names), input_size=meta.input_size, **over).eval()
    model.load_state_dict(state_dict_from_onnx(args.model, model))
    # the file and the rebuilt network must compute the same thing
    import onnxruntime as ort

    from export.graph import InferenceGraph

    x = np.random.default_rng(0).standard_normal((1, 3, meta.input_size, meta.input_size)).astype(np.float32)
    sess = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        got = [t.numpy() for t in InferenceGraph(model)(torch.from_numpy(x))]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(got, want))
    print(f"max |torch - onnxruntime| over the outputs: {diff:.2e}")
    if diff > 1e-3:
        raise SystemExit(f"error: the rebuilt network does not compute what {args.model} does (max diff {diff:.2e})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
