"""From per-frame motion results to events and alerts. Pure: the clock comes in as frame times,
so replaying a file gives the same alerts as running it live.

An event starts at the first moving frame and ends after `end_after_s` without motion. It alerts
once, when `min_motion_frames` of the last `window_frames` frames moved, no earlier than
`cooldown_s` after the previous alert. While the background is being (re-)learned (`warmup_s`
after arming or a camera move) it alerts only for motion that has travelled from where it first
moved: someone walking in view when watching starts, not a tree or a screen moving in place.
Continuous motion therefore raises one alert, not one every few seconds; but something new during
a long event (moving where the event has not moved in the last RECENT_S, in `min_motion_frames`
of the last `window_frames` frames) ends it and starts a new one, with its own alert, once the
cooldown has passed: a car passing while a tree tosses, a second person while the first sits.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from app.camera.clock import EPS, elapsed
from config import TriggerConfig


RECENT_S = 3.0       # where an event moved this recently is not new
FIRST_S = 0.25       # while the background is young, an event alerts once it has left where it moved this early
NEW_SHARE = 0.5      # a box at least this much outside those places is something new
MARGIN = 0.1         # places are grown by this share of each box's size (a sway is not a walk)
KNOWN_MARGIN = 0.5   # ...and by this much for what is new (a limb, a step, is not someone new)


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
    trail: deque = field(default_factory=deque, repr=False)   # (time, boxes) of its recent moving frames
    first: list = field(default_factory=list, repr=False)     # boxes of its first FIRST_S
    young: bool = False        # began while the background was young: alerts only once it travels


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
        self.novel: deque[bool] = deque(maxlen=cfg.window_frames)   # frames that showed something new
        self.away: deque[bool] = deque(maxlen=cfg.window_frames)    # frames where it had left its start
        self.moving: list = []           # the last frame's boxes that were not new
        self.new_min_px = 0              # smallest box that can be something new (set by the pipeline)

    def relearn(self, now: float) -> None:
        """The background is being learned again (start, re-arm, camera moved): no alerts for a while."""
        self.quiet_until = now + self.cfg.warmup_s
        self.recent.clear()

    def finish(self) -> Event | None:
        """End the current event (stream over or camera disarmed) and return it."""
        ended, self.event = self.event, None
        for window in (self.recent, self.novel, self.away):
            window.clear()
        self.moving = []
        return ended

    def update(self, index: int, now: float, motion: bool, area: float = 0.0, boxes=()) -> Step:
        """Feed one frame's motion flag; returns what this frame changed."""
        step = Step()
        self.recent.append(motion)
        ev = self.event
        if ev is not None and not motion and elapsed(now, ev.last_motion_time, self.cfg.end_after_s):
            step.ended, self.event, ev = ev, None, None
        labels = self._label(ev, now, boxes if motion else ())
        new = any(label is True for label in labels)
        self.novel.append(new)
        if new and sum(self.novel) >= self.cfg.min_motion_frames \
                and elapsed(now, self.last_alert_time, self.cfg.cooldown_s):
            step.ended, self.event, ev = ev, None, None      # the new thing is an event of its own
            self.novel.clear()
            labels = [False] * len(labels)
        if motion:
            if ev is None:
                ev = self.event = Event(index, now, now, index)
                ev.young = self.quiet_until is not None and now < self.quiet_until - EPS
            ev.last_motion_time, ev.end_frame = now, index
            ev.trail.append((now, [b for b, label in zip(boxes, labels) if label is False]))
            if not elapsed(now, ev.start_time, FIRST_S):
                ev.first.extend(boxes)
            while elapsed(now, ev.trail[0][0], RECENT_S + 1.0):
                ev.trail.popleft()
            ev.peak_area = max(ev.peak_area, area)
            if ev.alert_frame is None and self._may_alert(now, ev, boxes):
                ev.alert_frame, ev.alert_time = index, now
                ev.area, ev.boxes = area, list(boxes)
                self.last_alert_time = now
                step.alert = ev
        return step

    def _may_alert(self, now: float, ev: Event, boxes) -> bool:
        if sum(self.recent) < self.cfg.min_motion_frames:
            return False
        if ev.young:
            # The event began while the background was young: trees, screens and sensor noise
            # still moved in place, unlearned. Someone already in view when watching starts walks
            # away from where they first moved, and stays away (a branch only pokes out now and
            # then); a tree keeps its event going until it is learned as busy, and the event ends.
            self.away.append(any(outside_share(b, ev.first) >= NEW_SHARE for b in boxes))
            return sum(self.away) >= self.cfg.min_motion_frames
        return self.last_alert_time is None or elapsed(now, self.last_alert_time, self.cfg.cooldown_s)

    def _label(self, ev: Event | None, now: float, boxes) -> list[bool | None]:
        """Which of this frame's boxes are something new to an alerted event (True), part of what
        it is about (False), or too small to say (None).

        New: large enough (a fragment of what moves is not), mostly outside where the event
        moved in the last RECENT_S, and apart from what else moves, now and in the last frame
        (a shadow's edge ahead of its object, an arm, the next step of someone walking touch
        those). Only boxes of what the event is about join where it moved, so a newcomer stays
        new until it is alerted on.
        """
        if ev is None or ev.alert_frame is None or not boxes:
            self.moving = list(boxes)
            return [False] * len(boxes)
        known = [b for t, bs in ev.trail if not elapsed(now, t, RECENT_S) for b in bs]
        outside = [bool(known) and outside_share(b, known, KNOWN_MARGIN) >= NEW_SHARE for b in boxes]
        near = self.moving + [b for b, out in zip(boxes, outside) if not out]
        apart = [out and outside_share(b, near, KNOWN_MARGIN) == 1.0 for b, out in zip(boxes, outside)]
        labels = [(b[2] * b[3] >= self.new_min_px or None) if away else False for b, away in zip(boxes, apart)]
        self.moving = [b for b, label in zip(boxes, labels) if label is False]
        return labels


def outside_share(box, places, margin: float = MARGIN) -> float:
    """The share of `box` (x, y, w, h) outside every one of `places` (boxes, each grown by `margin`)."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return 0.0
    covered = np.zeros((h, w), bool)
    for px, py, pw, ph in places:
        mx, my = round(pw * margin), round(ph * margin)
        x0, y0 = max(px - mx - x, 0), max(py - my - y, 0)
        x1, y1 = min(px + pw + mx - x, w), min(py + ph + my - y, h)
        if x0 < x1 and y0 < y1:
            covered[y0:y1, x0:x1] = True
    return 1.0 - covered.mean()
