"""The detection pipeline shared by the live camera loop and replay: detector + trigger."""
from __future__ import annotations

from config import Settings
from app.camera.detector import MotionDetector, MotionResult
from app.camera.trigger import EventTrigger, Step


# Something new during an event must be this many times motion.min_area: parts of what already
# moves (an arm, a shadow's edge) come and go as small fragments.
NEW_MIN_AREAS = 4


class Pipeline:
    """Frames in, motion results and alert/end steps out; the same code live and in replay."""

    def __init__(self, settings: Settings):
        self.detector = MotionDetector(settings.motion)
        self.trigger = EventTrigger(settings.trigger)
        self.started = False

    def relearn(self, now: float) -> None:
        """Start learning the background again (start, re-arm, after a camera move)."""
        self.detector.reset()
        self.trigger.relearn(now)

    def step(self, index: int, now: float, frame) -> tuple[MotionResult, Step]:
        """Run one frame through the detector and the trigger."""
        if not self.started:
            self.started = True
            self.trigger.relearn(now)
        result = self.detector.detect(frame, now)
        if not self.trigger.new_min_px and self.detector.size:
            w, h = self.detector.size
            self.trigger.new_min_px = NEW_MIN_AREAS * self.detector.cfg.min_area * w * h
        return result, self.trigger.update(index, now, result.motion, result.area, result.boxes)

    def scale_boxes(self, boxes, frame_width: int) -> list[list[int]]:
        """Boxes from working pixels to the pixels of a frame `frame_width` wide."""
        size = self.detector.size
        f = frame_width / size[0] if size else 1.0
        return [[round(v * f) for v in b] for b in boxes]
