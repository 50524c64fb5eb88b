"""Post-training INT8 quantization of an exported PADet, calibrated on a folder of images.

Examples (from the repository root):
  python export/quantize.py --model padet_voc.xml --images data/VOC2007/JPEGImages --output padet_voc_int8.xml
  python export/quantize.py --model padet_voc.onnx --images calib/ --output padet_voc_int8.onnx
  python export/quantize.py --checkpoint best.pth --images calib/ --backend nncf --ignore-fam-offsets

Backends:
  nncf  nncf.quantize on the OpenVINO model; writes an OpenVINO IR (.xml). Input: an FP32 .xml
        or .onnx, or a checkpoint / --random-init preset.
  ort   onnxruntime quantize_static, QDQ; writes an .onnx. Input: an FP32 .onnx, or a
        checkpoint / --random-init preset. The scheme (activation/weight types, per-channel,
        reduce_range) follows --target-cpu unless --ort-scheme names one.

Target CPU (--target-cpu, default auto = the CPU this runs on, read from its flags):
  vnni  x86 with AVX512-VNNI / AVX-VNNI / AMX: int32 accumulation, full 8-bit weights.
  avx2  x86 without VNNI (e.g. AMD EPYC Zen 2/3, Intel before Cascade Lake): u8 x s8 products
        are summed in a saturating int16 there, so the scheme keeps them in range.
The scheme and the target go into the model's metadata; the SDK warns when a model made for
VNNI is loaded on a CPU without it.
The backend defaults to the one that writes the --output suffix, else to the --model format\n(.onnx -> ort, .xml -> nncf), else nncf.

Calibration images: any .jpg/.jpeg/.png/.bmp under --images (recursively); --subset-size of
them (default 300, a seeded random choice when there are more) are resized to S x S and
normalised exactly as the metadata says (pixel order, mean, std). The deformable convs stay
FP32 in both backends; --ignore-fam-offsets also keeps the small convs that predict their
offsets in FP32 (sampling positions are sensitive to quantization error). With nncf, the
depthwise convs and squeeze-excitation multiplies of the light (MobileNet) presets stay FP32 too:
OpenVINO's CPU plugin runs depthwise convs in FP32, so quantizing them only costs time.
The output keeps the metadata, with precision "int8".
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `training`, `export`, `padet_sdk` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from export.cli_common import (  # noqa: E402
    CliError, add_model_args, default_stem, has_model_source, load_model_from_args, log, run_main, step,
)
from padet_sdk.cpu import INT8_TARGETS, int8_target  # noqa: E402
from padet_sdk.metadata import INPUT_NAME, ModelMetadata  # noqa: E402
from padet_sdk.sources import IMAGE_EXTENSIONS as IMAGE_SUFFIXES  # noqa: E402

BACKENDS = ("nncf", "ort")
DEFAULT_SUBSET = 300
TARGET_CPUS = ("auto", *INT8_TARGETS)


@dataclasses.dataclass(frozen=True)
class OrtScheme:
    """One onnxruntime static-INT8 recipe, named as onnxruntime's docs name them (activations x weights)."""

    activations: str  # "u8" (QUInt8) or "s8" (QInt8)
    weights: str  # "s8" or "u8"
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights: u8 x s8 pair sums stay inside int16

    @property
    def needs_vnni(self) -> bool:
        """Full-range s8 weights: u8 x s8 pair sums can leave int16 on CPUs without VNNI."""
        return self.weights == "s8" and not self.reduce_range

    def quant_types(self) -> tuple[Any, Any]:
        from onnxruntime.quantization import QuantType

        types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
        return types[self.activations], types[self.weights]


ORT_SCHEMES: dict[str, OrtScheme] = {
    "u8s8": OrtScheme("u8", "s8"),
    "u8s8-rr": OrtScheme("u8", "s8", reduce_range=True),
    "s8s8": OrtScheme("s8", "s8"),
    "s8s8-rr": OrtScheme("s8", "s8", reduce_range=True),
    "u8u8": OrtScheme("u8", "u8"),
    "u8s8-pt": OrtScheme("u8", "s8", per_channel=False),
}
#: the scheme each target CPU gets by default (chosen by benchmarks/bench_int8_cpu.py; README table)
DEFAULT_ORT_SCHEME = {"vnni": "u8s8", "avx2": "u8s8-rr"}
#: NNCF's overflow fix per target. OpenVINO keeps its scores on CPUs without VNNI with NNCF's own
#: default (first layer at 7 bits); the fix on every layer cost more fidelity than it saved there
NNCF_OVERFLOW_FIX = {"vnni": "first_layer_only", "avx2": "first_layer_only"}


def resolve_target_cpu(target: str) -> str:
    """``auto`` -> the INT8 target of the CPU this runs on (see :mod:`padet_sdk.cpu`)."""
    if target == "auto":
        return int8_target()
    if target not in INT8_TARGETS:
        raise CliError(f"--target-cpu must be one of {', '.join(TARGET_CPUS)}, got {target!r}")
    return target


# ----------------------------------------------------------------------------- calibration data
def find_images(folder: str | Path, subset_size: int = DEFAULT_SUBSET, seed: int = 0) -> list[Path]:
    """Up to ``subset_size`` image files under ``folder`` (a seeded random choice if there are more)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CliError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise CliError(f"no images ({'/'.join(IMAGE_SUFFIXES)}) in calibration folder {folder}")
    if subset_size < 1:
        raise CliError(f"--subset-size must be >= 1, got {subset_size}")
    if len(files) > subset_size:
        idx = np.random.default_rng(seed).choice(len(files), subset_size, replace=False)
        files = [files[i] for i in sorted(idx)]
    return files


def preprocess_image(path: str | Path, meta: ModelMetadata) -> np.ndarray:
    """(1, 3, S, S) float32: the image as the SDK feeds it to the model (calibrating on anything
    else would fit the INT8 ranges to other inputs), see :func:`padet_sdk.preprocess.to_blob`."""
    import cv2

    from padet_sdk.preprocess import to_blob

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR, uint8
    if img is None:
        raise CliError(f"cannot read image {path}")
    return to_blob([img], meta.input_size, meta.pixel_order, meta.mean, meta.std)


# ------------------------------------------------------------------- FAM offset convs (by graph)
def _upstream_convs(start: Any, producers: Any, key: Any, is_conv: Any, is_stop: Any) -> list[Any]:
    """First convolutions met walking upstream from ``start`` (stops at convs and at ``is_stop``).

    ``key`` identifies a node (not ``id()``: OpenVINO hands out a fresh wrapper per access)."""
    found, seen, todo = [], set(), [start]
    while todo:
        node = todo.pop()
        if node is None or key(node) in seen:
            continue
        seen.add(key(node))
        if is_conv(node):
            found.append(node)
        elif not is_stop(node):
            todo.extend(producers(node))
    return found


def fam_offset_convs_ov(ov_model: Any) -> list[str]:
    """Friendly names of the convolutions that compute the FAM offsets in an OpenVINO model.

    Found by structure, not by name (exported node names carry no module path): the first
    Convolutions upstream of each DeformableConvolution's offset input.
    """
    names = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "DeformableConvolution":
            continue
        convs = _upstream_convs(
            op.input(1).get_source_output().get_node(),
            lambda n: [i.get_source_output().get_node() for i in n.inputs()],
            lambda n: n.get_name(),
            lambda n: n.get_type_name() == "Convolution",
            lambda n: n.get_type_name() in ("Constant", "Parameter", "DeformableConvolution"),
        )
        names += [c.get_friendly_name() for c in convs]
    return sorted(set(names))


def fp32_faster_ops_ov(ov_model: Any) -> list[str]:
    """Friendly names of the ops that OpenVINO's CPU plugin runs faster left in FP32: depthwise
    convs (GroupConvolution; the plugin has no INT8 depthwise kernel on this path, so quantizing
    their input only adds quantize/reorder steps) and the squeeze-excitation scale multiplies
    (Multiply fed by a HSigmoid/HardSigmoid); README "Light PADet" has the measurements. The
    dense graphs (VGG, ResNet with the paper's heads) have neither."""
    names = []
    for op in ov_model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "GroupConvolution":
            names.append(op.get_friendly_name())
        elif kind == "Multiply" and any(
            i.get_source_output().get_node().get_type_name() in ("HSigmoid", "HardSigmoid") for i in op.inputs()
        ):
            names.append(op.get_friendly_name())
    return sorted(set(names))


def fam_offset_convs_onnx(proto: Any) -> list[str]:
    """Names of the Conv nodes that compute the offset input of each ``DeformConv`` (ONNX)."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    names = []
    for node in proto.graph.node:
        if node.op_type != "DeformConv":
            continue
        convs = _upstream_convs(
            producer.get(node.input[2]),
            lambda n: [producer.get(i) for i in n.input if i in producer],
            lambda n: n.output[0],
            lambda n: n.op_type == "Conv",
            lambda n: n.op_type == "DeformConv",
        )
        names += [c.name for c in convs]
    return sorted(set(names))


# ------------------------------------------------------------------------------------ backends
def quantize_openvino(
    ov_model: Any, meta: ModelMetadata, images: Sequence[Path], output: str | Path, *,
    ignore_fam_offsets: bool = False, target_cpu: str = "auto", overflow_fix: str | None = None,
) -> Path:
    """NNCF INT8 of an in-memory FP32 ``openvino.Model``; saves the IR with precision int8 metadata.

    ``overflow_fix`` (NNCF's ``OverflowFix`` value) defaults to the target CPU's entry of
    :data:`NNCF_OVERFLOW_FIX`."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    from export.openvino_export import save_ov_model

    target = resolve_target_cpu(target_cpu)
    fix = overflow_fix or NNCF_OVERFLOW_FIX[target]

    names = fp32_faster_ops_ov(ov_model)
    if names:
        log(f"  keeping {len(names)} depthwise convs / squeeze-excitation multiplies in FP32 (faster there)")
    if ignore_fam_offsets:
        offsets = fam_offset_convs_ov(ov_model)
        log(f"  keeping {len(offsets)} FAM offset convs in FP32")
        names += offsets
    ignored = nncf.IgnoredScope(names=names) if names else None
    dataset = nncf.Dataset(list(images), lambda p: preprocess_image(p, meta))
    q = nncf.quantize(ov_model, dataset, subset_size=len(images), ignored_scope=ignored,
                      advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(fix)))
    # the metadata names the CPUs the file runs right on: "avx2" = any x86, "vnni" = VNNI only
    runs_on = "vnni" if fix == "disable" else "avx2"
    meta = dataclasses.replace(meta, precision="int8", quant_scheme=f"nncf:overflow-fix={fix}", quant_target_cpu=runs_on)
    return save_ov_model(q, output, meta, compress_to_fp16=False)


def _image_reader(images: Sequence[Path], meta: ModelMetadata, input_name: str = INPUT_NAME) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over image files, with a progress bar."""
    from onnxruntime.quantization import CalibrationDataReader
    from tqdm import tqdm

    class ImageReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[Path] | None = None

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._it is None:
                self._it = iter(tqdm(list(images), desc="calibration", unit="img", file=sys.stderr))
            p = next(self._it, None)
            return None if p is None else {input_name: preprocess_image(p, meta)}

        def rewind(self) -> None:
            self._it = None

    return ImageReader()


def quantize_onnxruntime(
    onnx_path: str | Path, meta: ModelMetadata, images: Sequence[Path], output: str | Path, *,
    ignore_fam_offsets: bool = False, target_cpu: str = "auto", scheme: str | None = None,
) -> Path:
    """onnxruntime static INT8 (QDQ) of an FP32 ``.onnx``; keeps the metadata (int8, scheme, target).

    ``scheme`` (a key of :data:`ORT_SCHEMES`) defaults to the target CPU's
    :data:`DEFAULT_ORT_SCHEME`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static

    from export.onnx_export import set_onnx_metadata

    target = resolve_target_cpu(target_cpu)
    scheme = scheme or DEFAULT_ORT_SCHEME[target]
    if scheme not in ORT_SCHEMES:
        raise CliError(f"unknown onnxruntime scheme {scheme!r}; choose from {', '.join(ORT_SCHEMES)}")
    recipe = ORT_SCHEMES[scheme]
    activation_type, weight_type = recipe.quant_types()
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise CliError(f"the ort backend writes ONNX: --output must end in .onnx, got {output}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="padet_ortq_") as tmp:
        # onnxruntime's recommended pre-processing (shape inference + graph optimisation) before
        # placing Q/DQ pairs; fall back to the raw export if it fails on some op
        src = Path(tmp, "pre.onnx")
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            quant_pre_process(str(onnx_path), str(src))
        except Exception as e:  # noqa: BLE001 - optional step, any failure means "skip it"
            log(f"  quantization pre-processing skipped ({type(e).__name__}: {e})")
            src = Path(onnx_path)
        exclude = None
        if ignore_fam_offsets:
            exclude = fam_offset_convs_onnx(onnx.load(str(src)))
            log(f"  keeping {len(exclude)} FAM offset convs in FP32")
        reader = _image_reader(images, meta)
        quantize_static(
            str(src), str(output), reader, quant_format=QuantFormat.QDQ, per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range, activation_type=activation_type, weight_type=weight_type,
            nodes_to_exclude=exclude,
        )
    proto = onnx.load(str(output))
    runs_on = "vnni" if recipe.needs_vnni else "avx2"  # as in quantize_openvino
    set_onnx_metadata(proto, dataclasses.replace(meta, precision="int8", quant_scheme=f"ort:{scheme}",
                                                 quant_target_cpu=runs_on))
    onnx.save(proto, str(output))
    return output


# ----------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="quantize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", metavar="FILE", help="exported FP32 model (.xml or .onnx) to quantize")
    add_model_args(p)
    p.add_argument("--images", required=True, metavar="DIR", help="folder of calibration images (jpg/png/bmp)")
    p.add_argument("--subset-size", type=int, default=DEFAULT_SUBSET, metavar="N",
                   help=f"number of calibration images (default {DEFAULT_SUBSET})")
    p.add_argument("--backend", choices=BACKENDS, help="nncf (OpenVINO IR out) or ort (ONNX out); default from --output")
    p.add_argument("--output", "-o", metavar="PATH", help="output .xml (nncf) or .onnx (ort); default <input>_int8")
    p.add_argument("--ignore-fam-offsets", action="store_true", help="keep the FAM offset convs in FP32")
    p.add_argument("--target-cpu", choices=TARGET_CPUS, default="auto",
                   help="CPU the INT8 model will run on: vnni, avx2 (x86 without VNNI), or auto = this "
                        "machine's (default auto)")
    p.add_argument("--ort-scheme", choices=sorted(ORT_SCHEMES), metavar="NAME",
                   help=f"ort: override the target's scheme ({', '.join(ORT_SCHEMES)}; "
                        f"defaults: {', '.join(f'{k}={v}' for k, v in DEFAULT_ORT_SCHEME.items())})")
    p.add_argument("--reduce-range", action="store_true", help="ort: same as --ort-scheme u8s8-rr (7-bit weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration subset choice")
    return p


def _pick_backend(args: argparse.Namespace) -> str:
    """--backend, else the one that writes --output's suffix, else the input file's format, else nncf."""
    if args.backend:
        return args.backend
    for path in (args.output, args.model):
        if path:
            return "ort" if Path(path).suffix.lower() == ".onnx" else "nncf"
    return "nncf"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if bool(args.model) == has_model_source(args):
            raise CliError("give exactly one model: --model FILE, or --checkpoint CKPT, or --preset NAME --random-init")
        backend = _pick_backend(args)
        target = resolve_target_cpu(args.target_cpu)
        if args.reduce_range and args.ort_scheme not in (None, "u8s8-rr"):
            raise CliError("--reduce-range is --ort-scheme u8s8-rr; give one of them")
        scheme = "u8s8-rr" if args.reduce_range else args.ort_scheme
        if scheme and backend != "ort":
            raise CliError("--ort-scheme/--reduce-range apply to the ort backend only")
        log(f"INT8 target CPU: {target}{' (this machine)' if args.target_cpu == 'auto' else ''}")
        suffix = ".xml" if backend == "nncf" else ".onnx"
        images = find_images(args.images, args.subset_size, args.seed)
        log(f"{len(images)} calibration images from {args.images}")
        with tempfile.TemporaryDirectory(prefix="padet_q_") as tmp:
            if args.model:
                src = Path(args.model)
                from padet_sdk.model_file import read_metadata

                meta = read_metadata(src)
                if meta.precision == "int8":
                    raise CliError(f"{src} is already INT8; quantize the FP32 export")
                if meta.precision != "fp32":
                    log(f"warning: {src} has {meta.precision} weights; INT8 from the fp32 export is more accurate")
                stem = src.with_suffix("").name
                default_out = src.with_name(f"{stem}_int8{suffix}")
            else:
                model, meta = load_model_from_args(args)
                src = None
                default_out = Path(default_stem(model.cfg) + f"_int8{suffix}")
            out = Path(args.output) if args.output else default_out
            if out.suffix.lower() != suffix:
                raise CliError(f"backend {backend} writes {suffix}, but --output is {out}")
            if backend == "nncf":
                import openvino as ov

                if src is None:
                    from export.openvino_export import to_ov_model

                    with step("converting to OpenVINO"):
                        ov_model = to_ov_model(model)
                elif src.suffix.lower() == ".onnx":
                    from padet_sdk.ov_extensions import read_onnx_with_extensions

                    ov_model = read_onnx_with_extensions(ov.Core(), src)
                else:
                    ov_model = ov.Core().read_model(str(src))
                with step(f"NNCF INT8 quantization -> {out}"):
                    quantize_openvino(ov_model, meta, images, out, ignore_fam_offsets=args.ignore_fam_offsets,
                                      target_cpu=target)
            else:
                if src is None:
                    from export.onnx_export import export_onnx

                    src = Path(tmp, "fp32.onnx")
                    with step("exporting FP32 ONNX"):
                        export_onnx(model, src, meta)
                elif src.suffix.lower() != ".onnx":
                    raise CliError(f"the ort backend quantizes ONNX files; {src} is not .onnx (use --backend nncf)")
                scheme = scheme or DEFAULT_ORT_SCHEME[target]
                with step(f"onnxruntime INT8 quantization (QDQ, {scheme}) -> {out}"):
                    quantize_onnxruntime(src, meta, images, out, ignore_fam_offsets=args.ignore_fam_offsets,
                                         target_cpu=target, scheme=scheme)
        log(f"wrote {out}{'  [UNTRAINED]' if not meta.trained else ''}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    from padet_sdk.extras import run_entry_point

    sys.exit(run_entry_point(main, extras="train,export"))
