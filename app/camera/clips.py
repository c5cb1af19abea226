"""Event clips: the last seconds kept in memory (pre-roll), then each event recorded from its
pre-roll to a post-roll after the motion ends, encoded on a thread into the event's folder.

The frame loop only scales a frame down and hands it over (never waits): a clip that cannot keep
up drops its own frames, never the camera's. Clips are H.264 MP4 through an `ffmpeg` process (the
Pi's hardware encoder, h264_v4l2m2m, where it has one; libx264 otherwise), which plays inline in
Slack on a phone and a desktop; without ffmpeg, an animated GIF through OpenCV.

Frames are laid on a fixed grid of `fps` (dropped or repeated), so a clip plays in real time
whatever the camera delivered. They are kept as YUV 4:2:0, what H.264 takes: half the memory of
BGR, and no conversion left for ffmpeg.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.utils import atomic_write_bytes, in_thread

log = logging.getLogger("security_system")

# Encoder options: small files that phones play (yuv420p, main profile, index at the front).
# libx264 without lookahead and on one thread: half the CPU and 17 MB of its own memory instead of
# 40 (measured here), for files a little larger.
H264_ARGS = {
    "libx264": ["-preset", "veryfast", "-tune", "zerolatency", "-threads", "1", "-crf", "27", "-profile:v", "main"],
    "h264_v4l2m2m": ["-b:v", "1500k"],
}
GIF_WIDTH, GIF_FPS = 320, 5.0     # a GIF is many times larger than H.264: smaller and slower
GIF_MAX_FRAMES = 100              # 20 s at 5 fps, 25 MB in memory before it is written
PROBE_TIMEOUT_S = 30
CLOSE_TIMEOUT_S = 120


@dataclass
class ClipResult:
    """A finished clip (`path` None when it failed: `error` says why)."""
    event_id: str
    path: Path | None
    seconds: float
    frames: int
    dropped: int
    cpu_s: float = 0.0            # the encoder's own CPU time (ffmpeg's user + system)
    error: str | None = None


def encoders_available(cfg, ffmpeg: str | None = None) -> list[str]:
    """The encoders to try, best first, for the `clips.encoder` setting."""
    ffmpeg = ffmpeg if ffmpeg is not None else shutil.which("ffmpeg")
    if cfg.encoder == "gif":
        return ["gif"]
    if cfg.encoder != "auto":
        return [cfg.encoder] if ffmpeg else []
    chosen = []
    # The hardware encoder of a Pi 3, 4 or Zero 2 W (/dev/video11); a Pi 5 has none.
    if ffmpeg and Path("/dev/video11").exists():
        chosen.append("h264_v4l2m2m")
    if ffmpeg:
        chosen.append("libx264")
    return chosen + ["gif"]


def probe(encoder: str, size: tuple[int, int], fps: float, ffmpeg: str | None = None) -> str | None:
    """Encode a second of test picture with `encoder`; None when it works, else why not."""
    if encoder == "gif":
        return None if hasattr(cv2, "imencodeanimation") else "this OpenCV cannot write animations"
    ffmpeg = ffmpeg or shutil.which("ffmpeg")
    if not ffmpeg:
        return "ffmpeg is not installed"
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", f"testsrc=size={size[0]}x{size[1]}:rate={fps:g}", "-frames:v", str(max(2, int(fps))),
            "-c:v", encoder, *H264_ARGS.get(encoder, []), "-pix_fmt", "yuv420p", "-f", "mp4", "-y", os.devnull]
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{type(e).__name__}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return said[-1][:200] if said else f"exit {done.returncode}"
    return None


class FfmpegWriter:
    """Raw YUV 4:2:0 frames piped into an ffmpeg process that writes one H.264 MP4."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, encoder: str, ffmpeg: str):
        self.path = path
        args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                "-s", f"{size[0]}x{size[1]}", "-r", f"{fps:g}", "-i", "pipe:0", "-an",
                "-c:v", encoder, *H264_ARGS.get(encoder, []), "-g", str(max(1, int(fps * 2))),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", "-y", str(path)]
        # Its complaints go to a file: a pipe nobody reads until the end could fill and stall it.
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errors)
        try:    # below the camera daemon: a busy Pi delays the clip, never the frames
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, 10)
        except OSError:
            pass

    def write(self, image: np.ndarray) -> None:
        self.proc.stdin.write(memoryview(np.ascontiguousarray(image)))

    def close(self) -> tuple[bool, str, float]:
        """Finish the file: (it worked, ffmpeg's complaint, its CPU seconds)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass        # it had died already: its exit status says why
        # Reaped here rather than by Popen, to read the encoder's CPU time.
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.errors.seek(0)
        said = self.errors.read()[-400:].decode("utf-8", "replace").strip()
        self.errors.close()
        if self.proc.returncode == 0:
            with open(self.path, "rb") as f:      # on disk before it is renamed into place
                os.fsync(f.fileno())
        return self.proc.returncode == 0, said[-200:], usage.ru_utime + usage.ru_stime

    def kill(self) -> None:
        self.proc.kill()


class GifWriter:
    """Frames kept (scaled to GIF_WIDTH, at GIF_FPS) and written as one animated GIF at the end."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        self.path = path
        scale = min(1.0, GIF_WIDTH / size[0])
        self.size = (int(size[0] * scale) // 2 * 2, int(size[1] * scale) // 2 * 2)
        self.every = max(1, round(fps / GIF_FPS))
        self.delay = int(1000 * self.every / fps)
        self.frames: list[np.ndarray] = []
        self.seen = 0

    def write(self, image: np.ndarray) -> None:
        if self.seen % self.every == 0 and len(self.frames) < GIF_MAX_FRAMES:
            bgr = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)
            self.frames.append(cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA))
        self.seen += 1

    def close(self) -> tuple[bool, str, float]:
        start = time.process_time()
        animation = cv2.Animation()
        animation.frames, animation.durations = self.frames, [self.delay] * len(self.frames)
        try:
            ok, data = cv2.imencodeanimation(".gif", animation)
            if not ok:
                return False, "OpenCV could not encode the GIF", 0.0
            atomic_write_bytes(self.path, data.tobytes())
        except (cv2.error, OSError) as e:
            return False, str(e)[:200], 0.0
        return True, "", time.process_time() - start

    def kill(self) -> None:
        pass


class ClipJob:
    """One clip being recorded: frames queue up here and a thread feeds the encoder."""

    def __init__(self, event_id: str, path: Path, size: tuple[int, int], fps: float, encoder: str,
                 started: float, queue_len: int, ffmpeg: str | None):
        self.event_id, self.path, self.size, self.fps, self.encoder = event_id, path, size, fps, encoder
        self.started = started
        self.stop_at: float | None = None       # motion ended: the post-roll runs until then
        self.frames: queue.Queue = queue.Queue(queue_len)
        self.dropped = 0
        self.closing = threading.Event()
        self.ffmpeg = ffmpeg
        self.writer = None
        self.result = in_thread(self._run, f"clip-{event_id[-6:]}")

    def put(self, t: float, image: np.ndarray) -> None:
        """Hand a frame over; a full queue (the encoder lags) drops it rather than wait."""
        try:
            self.frames.put_nowait((t, image))
        except queue.Full:
            self.dropped += 1

    def finish(self) -> None:
        """No more frames. An encoder that has not finished well after this (a stalled hardware
        encoder) is killed, so its thread and the device are not held for ever."""
        self.closing.set()
        timer = threading.Timer(CLOSE_TIMEOUT_S, self._stalled)
        timer.daemon = True
        timer.start()

    def _stalled(self) -> None:
        if not self.result.done() and self.writer is not None:
            log.warning("The clip encoder of %s stalled; stopping it", self.event_id)
            self.writer.kill()

    def _writer(self, tmp: Path):
        if self.encoder == "gif":
            return GifWriter(self.path, self.size, self.fps)
        return FfmpegWriter(tmp, self.size, self.fps, self.encoder, self.ffmpeg or "ffmpeg")

    def _run(self) -> ClipResult:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            writer = self.writer = self._writer(tmp)
        except OSError as e:
            return ClipResult(self.event_id, None, 0.0, 0, self.dropped, error=f"cannot start ffmpeg: {e}")
        t0, last, written, error = None, -1, 0, None
        try:
            while True:
                try:
                    t, image = self.frames.get(timeout=0.1)
                except queue.Empty:
                    if self.closing.is_set():
                        break
                    continue
                t0 = t if t0 is None else t0
                slot = int(round((t - t0) * self.fps))
                if slot <= last:
                    continue                        # sooner than the clip's frame rate
                # A gap (the camera stalled) repeats the last picture, up to two seconds of it.
                repeat = slot - last if slot - last <= 2 * self.fps else 1
                for _ in range(repeat):
                    writer.write(image)
                written += repeat
                last = slot
        except (OSError, ValueError) as e:          # ffmpeg died (disk full...): its pipe broke
            error = f"the encoder stopped: {e}"
        ok, complaint, cpu = writer.close()
        if error is None and (not ok or written == 0):
            error = complaint or ("no frames" if written == 0 else "the encoder failed")
        if error is not None:
            tmp.unlink(missing_ok=True)
            return ClipResult(self.event_id, None, 0.0, written, self.dropped, cpu, error)
        if self.encoder != "gif":
            try:
                os.replace(tmp, self.path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                return ClipResult(self.event_id, None, 0.0, written, self.dropped, cpu, str(e))
        return ClipResult(self.event_id, self.path, written / self.fps, written, self.dropped, cpu)


class Clips:
    """The frame loop's side of clips: `feed` every frame, `start` at an alert, `ended` when its
    motion ends, `poll` for finished clips. `path_for(event_id, ext)` names the clip's file."""

    def __init__(self, cfg, path_for, encoder: str | None):
        self.cfg = cfg
        self.path_for = path_for
        self.encoder = encoder                 # None: clips off (disabled, or nothing can encode)
        self.ffmpeg = shutil.which("ffmpeg")
        self.size: tuple[int, int] | None = None
        self.pre: deque = deque()
        self.next_t = 0.0
        self.active: ClipJob | None = None
        self.closing: list[ClipJob] = []

    def feed(self, t: float, image_of) -> None:
        """Keep the frame (at the clip's rate, scaled to its width): `image_of()` gives it full size."""
        if self.encoder is None or t < self.next_t:
            return
        step = 1.0 / self.cfg.fps
        # Half a step early is on time: a camera at exactly the clip's rate keeps every frame.
        self.next_t = max(self.next_t + step, t + step * 0.5) if self.next_t else t + step * 0.5
        image = image_of()
        if self.size is None:
            h, w = image.shape[:2]
            width = min(self.cfg.width, w) // 2 * 2
            self.size = (width, max(2, int(round(h * width / w / 2)) * 2))
        small = cv2.cvtColor(cv2.resize(image, self.size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2YUV_I420)
        self.pre.append((t, small))
        while self.pre and self.pre[0][0] < t - self.cfg.pre_s:
            self.pre.popleft()
        if self.active is not None:
            self.active.put(t, small)

    def start(self, event_id: str, t: float) -> None:
        """An event began at `t`: its clip starts with the pre-roll in memory."""
        if self.encoder is None or self.size is None:
            return
        if self.active is not None:            # the previous event's post-roll ends here
            self._close_active()
        ext = ".gif" if self.encoder == "gif" else ".mp4"
        fps = self.cfg.fps
        job = ClipJob(event_id, self.path_for(event_id, ext), self.size, fps, self.encoder, t,
                      queue_len=int(fps * (self.cfg.pre_s + 3)) + 2, ffmpeg=self.ffmpeg)
        for frame_t, small in self.pre:
            job.put(frame_t, small)
        self.active = job

    def ended(self, t: float) -> None:
        """The event's motion ended at `t`: the post-roll runs from here."""
        if self.active is not None and self.active.stop_at is None:
            self.active.stop_at = t + self.cfg.post_s

    def poll(self, t: float) -> list[ClipResult]:
        """Close the clip once its post-roll or its cap is over; the clips finished since."""
        job = self.active
        if job is not None and ((job.stop_at is not None and t >= job.stop_at) or t - job.started >= self.cfg.max_s):
            self._close_active()
        done = [j for j in self.closing if j.result.done()]
        if not done:
            return []
        self.closing = [j for j in self.closing if not j.result.done()]
        results = []
        for j in done:
            try:
                results.append(j.result.result())
            except Exception as e:    # a bug in the clip thread must not stop the camera
                log.exception("Clip of event %s failed", j.event_id)
                results.append(ClipResult(j.event_id, None, 0.0, 0, j.dropped, error=repr(e)[:200]))
        return results

    def _close_active(self) -> None:
        self.active.finish()
        self.closing.append(self.active)
        self.active = None

    def reset(self) -> None:
        """The camera closed (disarmed, lost): the pre-roll is stale; a clip being recorded ends."""
        self.pre.clear()
        self.next_t = 0.0
        if self.active is not None:
            self._close_active()

    def wait(self, timeout: float) -> list[ClipResult]:
        """Stopping: finish every clip (within `timeout`) and return them."""
        self.reset()
        end = time.monotonic() + timeout
        for job in self.closing:
            try:
                job.result.result(timeout=max(0.0, end - time.monotonic()))
            except Exception:
                pass
        return self.poll(float("inf"))


def choose(cfg, size: tuple[int, int] = (640, 360)) -> str | None:
    """The first encoder that works here (each tried once on a test picture), or None."""
    if not cfg.enabled:
        return None
    for encoder in encoders_available(cfg):
        why = probe(encoder, size, cfg.fps)
        if why is None:
            return encoder
        log.info("Clip encoder %s is not usable here (%s)", encoder, why)
    log.warning("No clip encoder works here (install ffmpeg); events are recorded without clips")
    return None
