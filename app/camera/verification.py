"""The verification policy, one implementation for the live daemon and for replay.

An event is judged on its trigger frame. Refused, it is judged again on a newer frame every
RECHECK_EVERY_S while something moves, for RECHECK_FOR_S after the trigger: a person entering
close to the camera shows only a head at first, and a few frames later the whole body. A pass on
a later frame makes that frame the event's picture (the `candidate`).

The verifier itself runs through `submit(image, boxes) -> Future`: a worker thread live (the frame
loop never waits for it), a future that is already done in replay (`run_now`).
"""
from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from app.camera.clock import EPS

log = logging.getLogger("security_system")

RECHECK_EVERY_S = 0.5   # a refused event is checked again on a newer frame this often...
RECHECK_FOR_S = 10.0    # ...for this long after its trigger, while it keeps moving


@dataclass
class Candidate:
    """A later frame the verifier is looking at: if it passes, it becomes the event's picture."""
    index: int
    time: float                  # the frame's time (the pipeline's clock)
    taken: float                 # wall-clock time it was taken (what the picture is stamped with)
    image: np.ndarray
    boxes: list[list[int]]       # in the image's pixels
    area: float


@dataclass
class Judgement:
    """How verification ended: passed True / False, or None when no verdict came (notify anyway)."""
    passed: bool | None
    verdict: Any = None            # the verifier's Verdict, when there is one
    candidate: Candidate | None = None   # the later frame that passed, if any


def run_now(verify: Callable) -> Callable[[np.ndarray, list], Future]:
    """A `submit` that runs the verifier at once (replay: the frame loop waits, as fast as it can)."""
    def submit(image, boxes) -> Future:
        future: Future = Future()
        future.set_result(verify([image], boxes))
        return future
    return submit


class Verification:
    """One event's verification, advanced frame by frame until it reaches a Judgement."""

    def __init__(self, submit: Callable[[np.ndarray, list], Future], image, boxes, trigger_time: float):
        self.submit = submit
        self.next_check = trigger_time + RECHECK_EVERY_S
        self.deadline = trigger_time + RECHECK_FOR_S
        self.pending: Candidate | None = None     # the frame the running check looks at (None: the trigger)
        self.future = submit(image, boxes)

    def _verdict(self):
        """The finished check's verdict, or None when the verifier raised (a model error on an
        odd frame must never stop the camera)."""
        try:
            return self.future.result()
        except Exception:
            log.warning("The verifier failed on an event; it is notified unverified", exc_info=True)
            return None

    def advance(self, now: float, frame=None, result=None,
                snapshot: Callable[[Any, Any], Candidate] | None = None) -> Judgement | None:
        """Call once per frame (or with no frame, after the source closed); a Judgement when done.

        `frame` and `result` are this frame and its motion result; `snapshot(frame, result)` makes
        the Candidate for a re-check. Re-checks go on while anything moves, even once the event
        has ended (someone lingering at the door ends an event and starts another without an
        alert); a new alert interrupts them.
        """
        if not self.future.done():
            return None
        verdict = self._verdict()
        if verdict is None:
            return Judgement(None)   # the verifier failed: notify, erring on the side of telling
        if verdict.passed:
            return Judgement(True, verdict, self.pending)
        if (frame is not None and result.motion
                and self.next_check - EPS <= now <= self.deadline + EPS):
            self.next_check = frame.time + RECHECK_EVERY_S
            self.pending = snapshot(frame, result)
            self.future = self.submit(self.pending.image, self.pending.boxes)
            return None
        if now > self.deadline + EPS:
            return Judgement(False, verdict)
        return None

    def interrupt(self) -> Judgement:
        """A new event starts (or the daemon stops) before this one's verification ended."""
        verdict = self._verdict() if self.future.done() else None
        if verdict is not None:
            return Judgement(bool(verdict.passed), verdict, self.pending if verdict.passed else None)
        return Judgement(None)   # the verdict is still out: notify, erring on the side of telling
