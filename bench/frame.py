"""The frame loop's cost per frame at each camera size: the detector, and its first stage alone.

    .venv/bin/python -m bench.frame [--frames 200]

Frames of the bundled clip, scaled to each size a camera gives (as a USB camera or RTSP stream
delivers BGR at full size), go through MotionDetector.detect. The first stage, scaling to the
working width and the grey conversion, is also timed the way it was done before (grey at full
size, then scaled) beside the way it is done now (scaled, then grey). CPU seconds of this thread,
OpenCV on one thread as in the camera daemon. The detector takes the cheaper order by frame width
(detector.SCALE_FIRST). Last, the copy of a 1280x720 main frame that every Pi camera frame made
before the snapshot stream was read only for the frames an event needs.
"""
from __future__ import annotations

import argparse
import time

import cv2

from app.camera.detector import MotionDetector
from config import ROOT, load_settings

SIZES = [(640, 480), (1280, 720), (1920, 1080), (2592, 1944)]


def clip_frames(n: int) -> list:
    cap = cv2.VideoCapture(str(ROOT / "sample" / "one-by-one-person-detection.mp4"))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def per_frame_ms(fn, frames) -> float:
    t0 = time.thread_time()
    for f in frames:
        fn(f)
    return (time.thread_time() - t0) / len(frames) * 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    cfg = load_settings(env={}).motion
    base = clip_frames(args.frames)
    print("| camera frame | grey, then scaled | scaled, then grey | whole detector per frame (the cheaper order) |")
    print("|---|---|---|---|")
    for w, h in SIZES:
        frames = [cv2.resize(f, (w, h)) for f in base]
        size = (cfg.width, round(h * cfg.width / w))
        before = per_frame_ms(lambda f: cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), size,
                                                   interpolation=cv2.INTER_LINEAR), frames)
        now = per_frame_ms(lambda f: cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR),
                                                  cv2.COLOR_BGR2GRAY), frames)
        detector = MotionDetector(cfg)
        clock = iter(range(10**9))
        whole = per_frame_ms(lambda f: detector.detect(f, 1.8e9 + next(clock) / 10), frames)
        print(f"| {w}x{h} | {before:.2f} ms | {now:.2f} ms | {whole:.2f} ms |")
    # What every Pi camera frame cost before the main stream was read on demand: one copy of it.
    main = [cv2.resize(f, (1280, 720)) for f in base[:50]]
    copy_ms = per_frame_ms(lambda f: f.copy(), main)
    print(f"\nCopying a 1280x720 RGB888 main frame (picamera2's make_array, now only for an event's "
          f"frames): {copy_ms:.2f} ms and 2.6 MB a frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
