"""Capped exponential backoff: the one retry rule for Redis, the network and the camera source.

Every retry in pycam waits `first`, then twice as long each time up to `cap`, and starts again
from `first` after a success. The deliberate differences are parameters: the frame loop never
sleeps, so it asks `ready()` instead of waiting; the others wait on their stop flag.
"""
from __future__ import annotations

import time


class Backoff:
    """Delays first, first*2, ... capped at `cap`; `reset()` after a success."""

    def __init__(self, first: float, cap: float, factor: float = 2.0):
        self.first, self.cap, self.factor = first, max(cap, first), factor
        self.delay = first          # the wait the next failure gets
        self.retry_at = 0.0         # monotonic time before which ready() is False

    def next(self) -> float:
        """The wait after one more failure (and grow the one after it)."""
        delay, self.delay = self.delay, min(self.delay * self.factor, self.cap)
        return delay

    def reset(self) -> None:
        """A success: the next failure waits `first` again."""
        self.delay, self.retry_at = self.first, 0.0

    def wait(self, stop) -> bool:
        """Sleep the next delay on `stop` (an Event or StopFlag); True when stop was set meanwhile."""
        return stop.wait(self.next())

    # For loops that must never block (the camera): note the failure, try again once ready().
    def failed(self, now: float | None = None) -> float:
        """Record a failure; returns the delay until ready() is True again."""
        delay = self.next()
        self.retry_at = (time.monotonic() if now is None else now) + delay
        return delay

    def ready(self, now: float | None = None) -> bool:
        """True when no failure is recent enough to wait for."""
        return (time.monotonic() if now is None else now) >= self.retry_at
