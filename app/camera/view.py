"""Is the camera blind? Its picture went uniform suddenly and stays so: the lens covered, blinded
by a torch, sprayed, or the lights out in a room without infrared.

A uniform picture alone is not enough: dusk and a dark room are uniform too, and become so
slowly. Blind means a picture with detail turned uniform within SUDDEN_S; it then stays blind
while it is uniform. Measured on the detector's working frame (320 px wide, blurred) as the spread of its grey levels
between the 5th and 95th percentiles, on every fourth pixel each way (about 0.1 ms): a clock or a
name an IP camera prints over its picture stays out of it.
"""
from __future__ import annotations

import numpy as np

UNIFORM = 12.0        # grey levels of spread: below this, the picture shows nothing (a dark sensor's noise: 3-8)
DETAIL = 30.0         # above this, the picture shows a scene (a plain wall under light: 40-80)
SUDDEN_S = 5.0        # from detail to uniform within this long: covered, not dusk


class ViewWatch:
    """Feed it the working frames (or some of them); `blind` says whether the camera is blind."""

    def __init__(self):
        self.detail_at: float | None = None     # the last time the picture showed a scene
        self.blind = False

    def update(self, grey: np.ndarray, now: float) -> bool:
        low, high = np.percentile(grey[::4, ::4], (5, 95))
        contrast = float(high - low)
        if contrast >= DETAIL:
            self.detail_at = now
        if contrast >= UNIFORM:
            self.blind = False
        elif not self.blind:
            self.blind = self.detail_at is not None and now - self.detail_at <= SUDDEN_S
        return self.blind
