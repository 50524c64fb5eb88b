"""The PADet demo: real-time detection on a video stream, no camera or download needed.

  python examples/demo.py                 # what `make demo` runs
  python examples/demo.py --model my.xml --frames 600 --out outputs/demo

1. renders the project's synthetic demo clip (moving, scaling, occluding shapes over a textured
   background, with known boxes), deterministically from --seed;
2. runs the embedded PADet (INT8 OpenVINO IR, trained by the project on synthetic shapes)
   through the async video pipeline of ``padet_sdk.stream``;
3. writes an annotated video and a PNG contact sheet of a few annotated frames;
4. prints FPS, latency and the number of detections, and scores the detections against the
   clip's known boxes with pycocotools (AP50);
5. tracks the objects (padet_sdk.track, IDs and trails drawn), counts those crossing a line
   down the middle, and scores the tracks against the clip's known identities with
   py-motmetrics (MOTA, IDF1) when it is installed.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import time
from pathlib import Path

# Run as a file from a checkout that is not installed: import the checkout. Where padet is
# installed (`make demo`'s .venv-demo holds a non-editable `pip install .`), use the install:
# the checkout's padet_sdk has no compiled extension there.
if __package__ in (None, "") and importlib.util.find_spec("padet_sdk") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from padet_sdk import Detector, LineCounter, PadetError, stream  # noqa: E402
from padet_sdk.cli import positive_int  # noqa: E402


#: score threshold for the AP50 (evaluation keeps the low-scoring detections)
EVAL_CONF = 0.01


def contact_sheet(frames: list[np.ndarray], cols: int = 3, width: int = 1200) -> np.ndarray:
    """Tile annotated frames into one image ``width`` pixels wide."""
    h, w = frames[0].shape[:2]
    tw = width // cols
    th = int(round(h * tw / w))
    rows = (len(frames) + cols - 1) // cols
    sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA)
    return sheet


def ap50(gt_json: Path, detections: list[dict]) -> float | None:
    """COCO AP at IoU 0.5 of ``detections`` against the clip's ground truth (pycocotools)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        print("note: pycocotools is not installed (pip install pycocotools); skipping AP50", file=sys.stderr)
        return None
    if not detections:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        ev = COCOeval(gt, gt.loadRes(detections), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


def tracking_scores(clip: Path, tracks: list) -> dict | None:
    """MOTA/IDF1 of the tracks against the clip's known identities (its MOTChallenge gt.txt)."""
    try:
        import motmetrics  # noqa: F401
    except ImportError:
        print("note: py-motmetrics is not installed (pip install motmetrics); skipping MOTA/IDF1", file=sys.stderr)
        return None
    from training.data.synth_clip import mot_gt_path
    from training.mot_metrics import mot_scores, read_mot_gt

    return mot_scores(read_mot_gt(mot_gt_path(clip), num_frames=len(tracks)), tracks)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", default=None, help="PADet .xml/.onnx (default: the embedded demo model)")
    p.add_argument("--out", type=Path, default=Path("outputs/demo"), help="where the clip and results go")
    p.add_argument("--frames", type=int, default=300, help="length of the demo clip")
    p.add_argument("--seed", type=int, default=0, help="the demo clip's seed")
    p.add_argument("--sheet-frames", type=int, default=6, help="annotated frames on the contact sheet")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="inference threads in all (default: Detector.for_video's, several narrower "
                        "inferences side by side)")
    p.add_argument("--draw-conf", type=float, default=None,
                   help="draw only detections scoring at least this (default: the model's score threshold, "
                        "metadata postprocess.conf, chosen on held-out data); AP50 uses all of them down to "
                        f"{EVAL_CONF}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.data.synth_clip import write_clip  # numpy + OpenCV only (no torch)

    args.out.mkdir(parents=True, exist_ok=True)
    clip, gt_json = write_clip(args.out / "clip.mp4", num_frames=args.frames, seed=args.seed)
    try:
        # AP50 needs the low-scoring detections too: evaluation passes its own threshold, as every
        # evaluation does; what is drawn uses the model's default (or --draw-conf)
        det = Detector.for_video(args.model, num_threads=args.threads, conf=EVAL_CONF)
        draw_conf = args.draw_conf if args.draw_conf is not None else det.metadata.postprocess.conf
    except PadetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = det.metadata
    print(f"model: {det!r}")
    if not meta.trained:
        print("WARNING: this model is UNTRAINED (random weights); detections are meaningless", file=sys.stderr)
    import json

    cat_of = {name: c["id"] for c in json.loads(gt_json.read_text())["categories"] for name in [c["name"]]}
    picks = set(np.linspace(0, args.frames - 1, args.sheet_frames).round().astype(int).tolist())
    sheet_frames, results, n_det = [], [], 0
    annotated = args.out / "annotated.mp4"
    det.warmup(det.num_requests)  # each infer request's first run is slow: keep it out of the figures
    t0 = time.perf_counter()
    width = json.loads(gt_json.read_text())["images"][0]["width"]
    height = json.loads(gt_json.read_text())["images"][0]["height"]
    line = LineCounter((width / 2, height), (width / 2, 0), name="line")  # in = moving right
    tracks = []  # (boxes, track ids) per frame, for MOTA/IDF1
    # the pipeline's writer thread draws (≥ --draw-conf) and encodes the annotated video
    frames = stream(det, clip, output=annotated, draw_min_score=draw_conf, track=True, zones=[line])
    with frames:
        for r in frames:
            tracks.append((r.detections.boxes, r.detections.track_ids))
            n_det += len(r.untracked)
            for d in r.untracked:  # AP50 scores every detection, not only the tracked ones
                if d.class_name not in cat_of:
                    continue
                x1, y1, x2, y2 = d.box
                results.append({"image_id": r.index + 1, "category_id": cat_of[d.class_name],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": d.score})  # fmt: skip
            if r.index in picks:
                sheet_frames.append(r.annotated())
    wall = time.perf_counter() - t0
    det.close()
    sheet = args.out / "contact_sheet.png"
    if sheet_frames:
        cv2.imwrite(str(sheet), contact_sheet(sheet_frames))
    stats = frames.stats
    score = ap50(gt_json, results)
    print(f"\nframes        {stats.frames} ({stats.dropped} dropped) in {wall:.1f} s")
    print(f"throughput    {stats.fps:.1f} FPS (async pipeline, {det.num_requests} inferences in flight)")
    print(f"latency       p50 {stats.latency(0.5):.1f} ms, p95 {stats.latency(0.95):.1f} ms (frame read → detections)")
    print(f"detections    {n_det} ({n_det / max(stats.frames, 1):.1f} per frame) at score >= {EVAL_CONF} for AP50; "
          f"drawn: score >= {draw_conf:.2f}")
    if score is not None:
        print(f"AP50          {score:.3f} against the clip's {len(json.loads(gt_json.read_text())['annotations'])} known boxes")
    mot = tracking_scores(clip, tracks)
    n_ids = len({i for _, ids in tracks for i in ids.tolist()})
    if mot is not None:
        print(f"tracking      MOTA {mot['mota']:.3f}, IDF1 {mot['idf1']:.3f}, {mot['id_switches']} ID switches, {n_ids} IDs "
              f"(py-motmetrics, IoU >= 0.5, objects >= 30 % visible)")  # fmt: skip
    print(f"line count    in {line.in_count} (left to right), out {line.out_count}")
    print(f"wrote         {annotated}\n              {sheet}\n              {clip} (+ {gt_json.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
