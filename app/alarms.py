"""Health and tamper alarms: one Slack message when a problem starts, one when it ends.

A problem counts once it has lasted `raise_after_s` (a blip is not news) and is over once it has
been gone `clear_after_s` (a flapping link is one problem, not ten). Raised alarms live in Redis
(`alarms`, a hash: name -> {since, text}) so a restart neither repeats the start message nor
forgets the end one, and /pycam_status lists them. Each message's job id derives from the alarm
and its start time: a retry never sends it twice. Who owns which alarm: the camera daemon its view,
its source and its disk; the watchdog (app/watch/) the processes, Redis and the Pi's power.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from app import keys, outbox, state

LOG_SIZE = 200          # problems kept for the daily digest


@dataclass
class Alarm:
    """One problem's debounce: `update(bad, now)` says "raised", "cleared" or None."""
    name: str
    raise_after_s: float = 0.0
    clear_after_s: float = 0.0
    raised_since: float | None = None     # when the problem began (once raised)
    ended_at: float | None = None         # when the last raised problem was over (not when cleared)
    _bad_since: float | None = None
    _good_since: float | None = None

    def update(self, bad: bool, now: float) -> str | None:
        if bad:
            self._good_since = None
            if self._bad_since is None:
                self._bad_since = now
            if self.raised_since is None and now - self._bad_since >= self.raise_after_s:
                self.raised_since = self._bad_since
                return "raised"
            return None
        self._bad_since = None
        if self.raised_since is None:
            return None
        if self._good_since is None:
            self._good_since = now
        if now - self._good_since >= self.clear_after_s:
            self.raised_since, self.ended_at = None, self._good_since
            return "cleared"
        return None


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 05 min': how long a problem lasted, for a person."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def load_raised(r, names) -> dict[str, float]:
    """{name: since} of the alarms among `names` already raised (before a restart)."""
    raw = r.hmget(keys.ALARMS, list(names)) if names else []
    out = {}
    for name, value in zip(names, raw):
        entry = state.decode_json(value)
        if isinstance(entry, dict) and isinstance(entry.get("since"), (int, float)):
            out[name] = float(entry["since"])
    return out


def raise_alarm(r, name: str, since: float, text: str) -> bool:
    """Record the alarm and queue its start message, together."""
    with r.pipeline(transaction=True) as p:
        p.hset(keys.ALARMS, name, json.dumps({"since": since, "text": text}))
        _log(p, name, since, text)
        outbox.enqueue(p, outbox.make_job("message", f"alarm:{name}:{since:.3f}:start", text=text))
        p.execute()
    return True


def log_problem(r, name: str, since: float, text: str) -> None:
    """Note a problem told without an alarm (Redis away, the services down) for the daily digest."""
    with r.pipeline(transaction=True) as p:
        _log(p, name, since, text)
        p.execute()


def _log(p, name: str, since: float, text: str) -> None:
    """Add a problem to the capped log the daily digest reads (in the caller's transaction)."""
    p.lpush(keys.ALARMS_LOG, json.dumps({"name": name, "since": since, "text": text}))
    p.ltrim(keys.ALARMS_LOG, 0, LOG_SIZE - 1)


def clear_alarm(r, name: str, since: float, text: str) -> bool:
    """Forget the alarm and queue its end message, together."""
    with r.pipeline(transaction=True) as p:
        p.hdel(keys.ALARMS, name)
        outbox.enqueue(p, outbox.make_job("message", f"alarm:{name}:{since:.3f}:end", text=text))
        p.execute()
    return True


def active(r) -> dict[str, dict]:
    """Every raised alarm: {name: {since, text}}."""
    return parse(r.hgetall(keys.ALARMS))


def parse(raw: dict | None) -> dict[str, dict]:
    """The `alarms` hash as read from Redis (for /pycam_status, in its one round trip)."""
    out = {}
    for name, value in (raw or {}).items():
        entry = state.decode_json(value)
        if isinstance(entry, dict):
            out[name if isinstance(name, str) else name.decode()] = entry
    return out


class Board:
    """The alarms one process owns. `check()` debounces one, tells the owner once when it starts
    and once when it ends, and tries again at the next check when Redis could not take it.

    `call(fn, *args)` runs a Redis write and returns None when Redis failed (the camera's
    RedisLink.call, which never stalls the frame loop; a plain wrapper elsewhere).
    """

    def __init__(self, call, r_of, **debounce: tuple[float, float]):
        self.call, self.r_of = call, r_of
        self.alarms = {name: Alarm(name, *times) for name, times in debounce.items()}
        self.restored = False

    def restore(self) -> bool:
        """Take up the alarms raised before a restart (once Redis answers)."""
        if not self.restored:
            raised = self.call(load_raised, self.r_of(), list(self.alarms))
            if raised is not None:
                for name, since in raised.items():
                    self.alarms[name].raised_since = since
                self.restored = True
        return self.restored

    def add(self, name: str, raise_after_s: float = 0.0, clear_after_s: float = 0.0) -> None:
        """Another alarm, found while running (a camera that started beating): raised before a
        restart, it is taken up too."""
        if name in self.alarms:
            return
        self.alarms[name] = Alarm(name, raise_after_s, clear_after_s)
        if self.restored:
            raised = self.call(load_raised, self.r_of(), [name]) or {}
            self.alarms[name].raised_since = raised.get(name)

    def check(self, name: str, bad: bool, now: float, start, end) -> None:
        """`start(since)` and `end(since, ended)`: the messages when it is raised and when it is
        cleared (`since`: when the problem began; `ended`: when it was over)."""
        if not self.restore():
            return
        alarm = self.alarms[name]
        since = alarm.raised_since
        change = alarm.update(bad, now)
        if change == "raised":
            if self.call(raise_alarm, self.r_of(), name, alarm.raised_since, start(alarm.raised_since)) is None:
                alarm.raised_since = None                 # told nobody: raised again at a later check
        elif change == "cleared":
            if self.call(clear_alarm, self.r_of(), name, since, end(since, alarm.ended_at)) is None:
                alarm.raised_since = since                # told nobody: cleared again at a later check
