"""Is the camera blind? Its picture went uniform suddenly and stays so: the lens covered, blinded
by a torch, sprayed, or the lights out in a room without infrared.

A uniform picture alone is not enough: dusk and a dark room are uniform too, and become so
slowly. Blind means a picture with detail turned uniform within SUDDEN_S; it then stays blind
while it is uniform. Measured on the detector's working frame (320 px wide, blurred), whose
standard deviation costs about 0.05 ms.
"""
from __future__ import annotations

import numpy as np

UNIFORM_STD = 5.0     # grey levels: below this, the picture shows nothing (noise of a dark sensor is 1-3)
DETAIL_STD = 12.0     # above this, the picture shows a scene (a plain wall under light is 15-30)
SUDDEN_S = 5.0        # from detail to uniform within this long: covered, not dusk


class ViewWatch:
    """Feed it the working frames (or some of them); `blind` says whether the camera is blind."""

    def __init__(self):
        self.detail_at: float | None = None     # the last time the picture showed a scene
        self.blind = False

    def update(self, grey: np.ndarray, now: float) -> bool:
        contrast = float(grey.std())
        if contrast >= DETAIL_STD:
            self.detail_at = now
        if contrast >= UNIFORM_STD:
            self.blind = False
        elif not self.blind:
            self.blind = self.detail_at is not None and now - self.detail_at <= SUDDEN_S
        return self.blind
