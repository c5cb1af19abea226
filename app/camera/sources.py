"""Camera sources behind one interface: picamera2, legacy picamera, and OpenCV (USB, RTSP/HTTP,
video files, image sequences). Pi-only libraries are imported lazily, with a clear error.

A source gives `Frame`s: the detection image (the Y plane of picamera2's lores stream, or the
frame itself) and a way to get the full-size snapshot of that same moment.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

import numpy as np

from app.utils import redact
from config import CameraConfig

log = logging.getLogger(__name__)


STREAM_TIMEOUT_S = 5.0   # longest wait for a network stream to open or give a frame


class SourceError(Exception):
    """The source cannot be opened or has stopped giving frames."""


class EndOfStream(Exception):
    """A file source reached its end (and does not loop)."""


@dataclass
class Frame:
    index: int                 # 0-based, in decode order (restarts at 0 when a file loops)
    time: float                # epoch seconds (float64): the wall clock live; in replay the clock
                               # origin plus the position in the file, so the arithmetic is the same
    detect: np.ndarray         # what the detector looks at (BGR or grey)
    snapshot: Callable[[], np.ndarray]  # full-size BGR image of the same moment


def kind_of(source: str) -> str:
    """Which driver a source string names."""
    s = source.strip()
    if s in ("picamera2", "picamera"):
        return s
    if s.isdigit() or s.startswith("usb:"):
        return "usb"
    if "://" in s:
        return "stream"
    return "file"


class OpenCVSource:
    """USB device, RTSP/HTTP stream, video file or image sequence, through cv2.VideoCapture."""

    def __init__(self, cfg: CameraConfig, realtime: bool | None = None, loop: bool | None = None,
                 clock_origin: float | None = None):
        import cv2
        self.cv2 = cv2
        self.cfg = cfg
        self.kind = kind_of(cfg.source)
        is_file = self.kind == "file"
        self.realtime = cfg.realtime if realtime is None else realtime
        self.realtime = self.realtime and is_file
        self.loop = (cfg.loop if loop is None else loop) and is_file
        target: int | str = cfg.source
        if self.kind == "usb":
            target = int(cfg.source.removeprefix("usb:"))
        if self.kind == "stream":
            # A stream that stops sending must not hold the frame loop (and its heartbeat) for
            # OpenCV's default 30 s: give up on a read after STREAM_TIMEOUT_S and reopen.
            ms = int(STREAM_TIMEOUT_S * 1000)
            self.cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            raise SourceError(f"cannot open camera source {redact(cfg.source)!r}")
        if self.kind == "usb":
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            self.cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else cfg.fps
        self.index = -1
        self.started = time.monotonic()
        # A file read as fast as possible is timed by its own frame rate, from this origin.
        self.origin = time.time() if clock_origin is None else float(clock_origin)
        self.count = -1                       # frames read, across loops

    def read(self) -> Frame:
        ok, img = self.cap.read()
        if not ok and self.loop and self.index >= 0:
            self.cap.set(self.cv2.CAP_PROP_POS_FRAMES, 0)
            self.index, self.started = -1, time.monotonic()
            ok, img = self.cap.read()
        if not ok:
            if self.kind == "file":
                raise EndOfStream(self.cfg.source)
            raise SourceError(f"camera source {redact(self.cfg.source)!r} stopped giving frames")
        self.index += 1
        self.count += 1
        if self.realtime:
            # Play a file as a live camera would: frame i is shown at start + i / fps.
            due = self.started + self.index / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        stamp = self.origin + self.count / self.fps if self.kind == "file" and not self.realtime else time.time()
        return Frame(self.index, stamp, img, lambda: img)

    def close(self) -> None:
        self.cap.release()


class Picamera2Source:
    """The Pi camera through picamera2: lores YUV420 for detection, main RGB888 for snapshots."""

    def __init__(self, cfg: CameraConfig):
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise SourceError("picamera2 is not installed: on Raspberry Pi OS run "
                              "'sudo apt install python3-picamera2' and make the virtualenv with "
                              f"--system-site-packages ({e})") from None
        try:
            self.cam = Picamera2()
            lw = 320
            lh = (round(lw * cfg.height / cfg.width) // 2) * 2
            config = self.cam.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                lores={"size": (lw, lh), "format": "YUV420"},
                controls={"FrameRate": cfg.fps})
            self.cam.configure(config)
            self.cam.start()
        except (RuntimeError, IndexError, OSError) as e:
            raise SourceError(f"no Pi camera could be started: {e}") from None
        self.lores = (lw, lh)
        self.fps = cfg.fps
        self.index = -1
        self.request = None        # the last frame's buffers, held until the next read

    def read(self) -> Frame:
        """The lores frame for the detector; the main (snapshot) stream is copied out only when
        an event asks for it, during this frame's step: 2.7 MB a frame at 1280x720 otherwise.
        The request is held until the next read, one of the camera's buffers (it has six)."""
        self._release()
        try:
            request = self.cam.capture_request()
            self.request = request
            yuv = request.make_array("lores")
        except (RuntimeError, OSError) as e:
            self._release()
            raise SourceError(f"Pi camera stopped: {e}") from None
        self.index += 1
        lw, lh = self.lores
        grey = yuv[:lh, :lw]
        main: list = []

        def snapshot():
            if not main:
                if self.request is not request:
                    raise RuntimeError("a Pi camera snapshot must be taken during its frame's step")
                main.append(request.make_array("main"))  # "RGB888" is B,G,R bytes: OpenCV's BGR
            return main[0]
        return Frame(self.index, time.time(), grey, snapshot)

    def _release(self) -> None:
        request, self.request = self.request, None
        if request is not None:
            try:
                request.release()
            except (RuntimeError, OSError):
                log.debug("releasing a picamera2 request failed", exc_info=True)

    def close(self) -> None:
        self._release()
        try:
            self.cam.stop()
            self.cam.close()
        except Exception:  # closing a dead camera must never stop the daemon
            log.debug("closing picamera2 failed", exc_info=True)


class PicameraSource:
    """The legacy picamera (v1) stack, for old Raspbian installs."""

    def __init__(self, cfg: CameraConfig):
        try:
            from picamera import PiCamera
            from picamera.array import PiRGBArray
        except ImportError as e:
            raise SourceError("legacy picamera is not installed (it needs the old camera stack; "
                              f"use source 'picamera2' on current Raspberry Pi OS) ({e})") from None
        try:
            self.cam = PiCamera(resolution=(cfg.width, cfg.height), framerate=cfg.fps)
        except Exception as e:  # picamera raises its own PiCameraError family
            raise SourceError(f"no legacy Pi camera could be started: {e}") from None
        self.raw = PiRGBArray(self.cam, size=(cfg.width, cfg.height))
        self.frames = self.cam.capture_continuous(self.raw, format="bgr", use_video_port=True)
        self.fps = cfg.fps
        self.index = -1

    def read(self) -> Frame:
        try:
            img = next(self.frames).array.copy()
        except Exception as e:
            raise SourceError(f"legacy Pi camera stopped: {e}") from None
        self.raw.truncate(0)
        self.index += 1
        return Frame(self.index, time.time(), img, lambda: img)

    def close(self) -> None:
        try:
            self.cam.close()
        except Exception:
            log.debug("closing picamera failed", exc_info=True)


def find_camera() -> str:
    """What `auto` means here: the Pi camera where picamera2 is installed, else USB camera 0."""
    try:
        import picamera2  # noqa: F401  (only whether it is there)
        return "picamera2"
    except ImportError:
        pass
    if Path("/dev/video0").exists():
        return "0"
    raise SourceError("no camera found (no picamera2, no /dev/video0): set camera.source (PYCAM_SOURCE) to "
                      "the camera to watch; `make run` plays the bundled sample clip")


def open_source(cfg: CameraConfig, realtime: bool | None = None, loop: bool | None = None,
                clock_origin: float | None = None):
    """Open the configured source; raises SourceError with a clear message when it cannot.

    `clock_origin` (epoch seconds) times a file read as fast as possible: frame i is at
    origin + i / fps (default: now, so replay's times are as large as a live camera's)."""
    if cfg.source.strip() == "auto":
        cfg = cfg.model_copy(update={"source": find_camera()})
    kind = kind_of(cfg.source)
    if kind == "picamera2":
        return Picamera2Source(cfg)
    if kind == "picamera":
        return PicameraSource(cfg)
    return OpenCVSource(cfg, realtime=realtime, loop=loop, clock_origin=clock_origin)
