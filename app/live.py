"""Live view: the camera sends downscaled JPEG frames only while someone watches.

A viewer (the web page's stream, /pycam_live) sets `live:viewer` with a short TTL and keeps it
alive; the camera daemon, seeing it at its next switch read, puts its newest frame in `live:frame`
a few times a second (overwritten each time, expiring soon after). Nobody watching: no encoding, no
image bytes in Redis. The frame is read with a client that keeps bytes (decode_responses=False).
"""
from __future__ import annotations

import struct
import time

import cv2

from app import keys

VIEWER_TTL_S = 5          # a viewer that stops renewing is gone after this
FRAME_TTL_MS = 3000       # a frame older than this is not shown as live


def watch(r, ttl: float = VIEWER_TTL_S) -> None:
    """Someone watches (renew at least every `ttl` seconds)."""
    r.set(keys.LIVE_VIEWER, int(time.time()), ex=max(1, int(ttl)))


def encode(image, width: int, quality: int = 70) -> bytes:
    """A live frame: the picture scaled to `width`, as JPEG."""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def publish(r, jpeg: bytes, taken: float) -> None:
    """The camera's newest frame, taken at `taken` (epoch seconds)."""
    r.set(keys.LIVE_FRAME, struct.pack(">Q", int(taken * 1000)) + jpeg, px=FRAME_TTL_MS)


def latest(raw_r) -> tuple[float, bytes] | None:
    """(taken, JPEG) of the newest frame, or None (nobody sends: disarmed camera, no viewer yet).
    `raw_r` must return bytes (decode_responses=False)."""
    value = raw_r.get(keys.LIVE_FRAME)
    if not isinstance(value, bytes) or len(value) < 9:
        return None
    return struct.unpack(">Q", value[:8])[0] / 1000, value[8:]
