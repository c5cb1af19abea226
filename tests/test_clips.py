"""Event clips: pre-roll to post-roll, a file Slack plays, encoding that never holds the camera."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from app.camera import clips
from app.camera.clips import ClipResult, Clips
from config import ClipsConfig

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (make test installs it)")
EVENT = "20261130-100000-abcdef"


def frame(k: int) -> np.ndarray:
    """Frame k of a test camera: eight stripes, white where k has a 1 bit, so a decoded clip tells
    which frame each of its pictures was."""
    image = np.zeros((720, 1280, 3), np.uint8)
    for bit in range(8):
        if k >> bit & 1:
            image[:, bit * 160:(bit + 1) * 160] = 255
    return image


def record(encoder: str, tmp_path, trigger: int, end: int, frames: int = 110, cfg=None):
    """Feed a 10 fps camera (its own clock, so no test waits for real seconds); the clip starts at
    frame `trigger`, its motion ends at frame `end`."""
    cfg = cfg or ClipsConfig(pre_s=2, post_s=3, fps=10, width=320)
    c = Clips(cfg, lambda event_id, ext: tmp_path / f"{event_id}{ext}", encoder)
    results = []
    for k in range(frames):
        t = 1000.0 + k / 10
        image = frame(k)
        c.feed(t, lambda: image)
        if k == trigger:
            c.start(EVENT, t)
        if k == end:
            c.ended(t)
        results += c.poll(t)
        while c.active is not None and c.active.frames.qsize() > 10:
            time.sleep(0.005)         # the encoder's pace, not the camera's (its drops are tested below)
    return results + c.wait(30)


def frames_in(path) -> list[int]:
    """Which camera frame each picture of a clip shows."""
    cap = cv2.VideoCapture(str(path))
    shown = []
    while True:
        ok, img = cap.read()
        if not ok:
            return shown
        w = img.shape[1] // 8
        shown.append(sum(1 << bit for bit in range(8) if img[:, bit * w + 4:(bit + 1) * w - 4].mean() > 128))


@needs_ffmpeg
def test_a_clip_runs_from_its_pre_roll_to_its_post_roll_as_h264_mp4(tmp_path):
    [result] = record("libx264", tmp_path, trigger=40, end=70)
    assert result.error is None and result.path == tmp_path / f"{EVENT}.mp4"
    # H.264 in MP4 with yuv420p and the index up front: what Slack plays inline on phones.
    probe = json.loads(subprocess.run(
        [shutil.which("ffprobe") or "ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
         str(result.path)], capture_output=True, check=True).stdout)
    [stream] = probe["streams"]
    assert (stream["codec_name"], stream["pix_fmt"], stream["width"]) == ("h264", "yuv420p", 320)
    assert result.path.read_bytes()[4:8] == b"ftyp" and b"moov" in result.path.read_bytes()[:4096]
    # From 2 s before the trigger (frame 20) to 3 s after the motion ended (frame 100), every
    # frame of the 10 fps camera once, in order.
    assert frames_in(result.path) == list(range(20, 101))
    assert result.seconds == 8.1
    assert result.dropped == 0 and not list(tmp_path.glob(".*tmp"))


@needs_ffmpeg
def test_a_long_event_is_cut_at_the_cap_and_a_new_event_starts_its_own_clip(tmp_path):
    cfg = ClipsConfig(pre_s=1, post_s=3, max_s=4, fps=10, width=320)
    c = Clips(cfg, lambda event_id, ext: tmp_path / f"{event_id}{ext}", "libx264")
    done = []
    for k in range(120):
        t = 1000.0 + k / 10
        image = frame(k)
        c.feed(t, lambda: image)
        if k == 20:
            c.start("20261130-100000-aaaaaa", t)           # never ends: capped at 4 s
        if k == 80:
            c.start("20261130-100006-bbbbbb", t)
            c.ended(t + 0.5)
        done += c.poll(t)
        while c.active is not None and c.active.frames.qsize() > 10:
            time.sleep(0.005)
    done += c.wait(30)
    first, second = sorted(done, key=lambda r: r.event_id)
    assert first.seconds <= 4.0 + 1.0 + 0.1                   # its pre-roll, then the cap
    assert second.error is None and second.seconds > 3


@pytest.mark.skipif(not hasattr(cv2, "imencodeanimation"), reason="this OpenCV (before 4.11) writes no animations")
def test_without_ffmpeg_the_clip_is_an_animated_gif(tmp_path):
    cfg = ClipsConfig(encoder="auto")
    assert clips.encoders_available(cfg, ffmpeg="") == ["gif"]
    [result] = record("gif", tmp_path, trigger=40, end=50, frames=90)
    assert result.error is None and result.path.suffix == ".gif"
    assert result.path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    ok, animation = cv2.imreadanimation(str(result.path))
    assert ok and len(animation.frames) >= 10                 # 2 + 1 + 3 s at the GIF's 5 fps


def test_an_encoder_that_cannot_keep_up_loses_clip_frames_never_camera_frames(tmp_path, monkeypatch):
    """The writer blocks (a stalled encoder): the camera side keeps handing frames over and returns
    at once; the clip's queue drops what it cannot hold and says how many."""
    gate = threading.Event()

    class Stalled:
        def __init__(self, *a, **k):
            self.n = 0

        def write(self, image):
            gate.wait(30)
            self.n += 1

        def close(self):
            return True, "", 0.0

    monkeypatch.setattr(clips, "GifWriter", Stalled)
    cfg = ClipsConfig(pre_s=1, post_s=0, fps=10, width=160)
    c = Clips(cfg, lambda event_id, ext: tmp_path / f"{event_id}{ext}", "gif")
    image = frame(0)
    for k in range(200):                                       # 20 s of frames while it is stuck
        c.feed(1000.0 + k / 10, lambda: image)
        if k == 5:
            c.start(EVENT, 1000.5)
    assert c.active.dropped > 100
    gate.set()
    [result] = c.wait(30)
    assert result.dropped > 100 and result.frames < 60


def test_the_encoder_used_is_the_first_that_works_here(monkeypatch):
    tried = []

    def probe(encoder, size, fps, ffmpeg=None):
        tried.append(encoder)
        return "no device" if encoder == "h264_v4l2m2m" else None

    monkeypatch.setattr(clips, "probe", probe)
    monkeypatch.setattr(clips, "encoders_available", lambda cfg: ["h264_v4l2m2m", "libx264", "gif"])
    assert clips.choose(ClipsConfig()) == "libx264" and tried == ["h264_v4l2m2m", "libx264"]
    assert clips.choose(ClipsConfig(enabled=False)) is None


def test_a_failed_clip_leaves_the_event_as_it_was(tmp_path):
    from app.camera.recorder import EventRecorder
    from app.storage.events import EventStore
    from config import EventsConfig
    store = EventStore(tmp_path, EventsConfig())
    recorder = EventRecorder(store, "cam", 85)
    meta = store.save({"id": EVENT, "time": 1.0}, b"jpg", b"jpg")
    assert recorder.clipped(ClipResult(EVENT, None, 0.0, 0, 0, error="No space left on device")) is None
    assert "clip" not in store.load(EVENT) and store.load(EVENT)["snapshot"] == meta["snapshot"]
