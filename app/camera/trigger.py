"""From per-frame motion results to events and alerts. Pure: the clock comes in as frame times,
so replaying a file gives the same alerts as running it live.

An event starts at the first moving frame and ends after `end_after_s` without motion. It alerts
once, when `min_motion_frames` of the last `window_frames` frames moved, no earlier than
`cooldown_s` after the previous alert and never while the background is being (re-)learned.
Continuous motion therefore raises one alert, not one every few seconds.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from app.camera.clock import EPS, elapsed
from config import TriggerConfig


@dataclass
class Event:
    """One motion event as the trigger sees it."""
    start_frame: int
    start_time: float
    last_motion_time: float
    end_frame: int
    peak_area: float = 0.0
    alert_frame: int | None = None
    alert_time: float | None = None
    boxes: list = field(default_factory=list)  # boxes of the alerting frame
    area: float = 0.0                          # area of the alerting frame


@dataclass
class Step:
    """What one frame changed: an alert fired and/or an event ended."""
    alert: Event | None = None
    ended: Event | None = None


class EventTrigger:
    """Turns per-frame motion into events and alerts."""

    def __init__(self, cfg: TriggerConfig):
        self.cfg = cfg
        self.recent: deque[bool] = deque(maxlen=cfg.window_frames)
        self.event: Event | None = None
        self.last_alert_time: float | None = None
        self.quiet_until: float | None = None

    def relearn(self, now: float) -> None:
        """The background is being learned again (start, re-arm, camera moved): no alerts for a while."""
        self.quiet_until = now + self.cfg.warmup_s
        self.recent.clear()

    def finish(self) -> Event | None:
        """End the current event (stream over or camera disarmed) and return it."""
        ended, self.event = self.event, None
        self.recent.clear()
        return ended

    def update(self, index: int, now: float, motion: bool, area: float = 0.0, boxes=()) -> Step:
        """Feed one frame's motion flag; returns what this frame changed."""
        step = Step()
        self.recent.append(motion)
        ev = self.event
        if ev is not None and not motion and elapsed(now, ev.last_motion_time, self.cfg.end_after_s):
            step.ended, self.event, ev = ev, None, None
        if motion:
            if ev is None:
                ev = self.event = Event(index, now, now, index)
            ev.last_motion_time, ev.end_frame = now, index
            ev.peak_area = max(ev.peak_area, area)
            if ev.alert_frame is None and self._may_alert(now):
                ev.alert_frame, ev.alert_time = index, now
                ev.area, ev.boxes = area, list(boxes)
                self.last_alert_time = now
                step.alert = ev
        return step

    def _may_alert(self, now: float) -> bool:
        if self.quiet_until is not None and now < self.quiet_until - EPS:
            return False
        if sum(self.recent) < self.cfg.min_motion_frames:
            return False
        return self.last_alert_time is None or elapsed(now, self.last_alert_time, self.cfg.cooldown_s)
