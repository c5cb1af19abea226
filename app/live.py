"""Live view: the camera sends downscaled JPEG frames only while someone watches.

A viewer (the web page's stream, /pycam_live) sets `live:viewer` with a short TTL and keeps it
alive; the camera daemon, seeing it at its next switch read, publishes its newest frame on the
channel `live:frames` a few times a second. Published, not stored: a frame reaches whoever listens
at that moment and is never written to Redis's data or its append-only file. Nobody watching: no
encoding, no image bytes anywhere. Listeners use a client that keeps bytes (decode_responses=False).
"""
from __future__ import annotations

import struct
import time

import cv2

from app import keys

VIEWER_TTL_S = 5          # a viewer that stops renewing is gone after this


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
    """The camera's newest frame, taken at `taken` (epoch seconds), to whoever listens now."""
    r.publish(keys.LIVE_FRAMES, struct.pack(">Q", int(taken * 1000)) + jpeg)


class Listener:
    """Frames as the camera publishes them; `raw_r` must return bytes (decode_responses=False)."""

    def __init__(self, raw_r):
        self.pubsub = raw_r.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(keys.LIVE_FRAMES)

    def next(self, timeout: float) -> tuple[float, bytes] | None:
        """(taken, JPEG) of the next frame within `timeout` seconds, or None."""
        message = self.pubsub.get_message(timeout=timeout)
        data = message.get("data") if message else None
        if not isinstance(data, bytes) or len(data) < 9:
            return None
        return struct.unpack(">Q", data[:8])[0] / 1000, data[8:]

    def close(self) -> None:
        self.pubsub.close()


def one_frame(r, raw_r, wait_s: float) -> tuple[float, bytes] | None:
    """Ask the camera for a frame and wait up to `wait_s` seconds for it (None: none came)."""
    listener = Listener(raw_r)
    try:
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            watch(r)
            got = listener.next(min(left, 1.0))
            if got is not None:
                return got
        return None
    finally:
        listener.close()
