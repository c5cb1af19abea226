"""Schedules: windows by weekday and time that arm the camera, and quiet hours when events are
recorded but not sent (health alerts still are).

A window is written `DAYS HH:MM-HH:MM`: DAYS is `daily`, `weekdays`, `weekends`, a day (`mon`)
or a list and ranges (`mon-fri`, `sat,sun`); a window that ends before it starts runs past
midnight and belongs to the day it starts (`fri 23:00-06:00` runs into Saturday morning). The
schedule in force is the one set from Slack (`/pycam_schedule`, Redis key `schedule`) or else
pycam.yaml's (`schedule.arm`, `schedule.quiet`). Pure: times come in as datetimes (local time).

How it combines with presence (app/presence/rules.py): the camera is armed when nobody is home
or an arm window is open; a manual /pycam_on or /pycam_off wins until the next change (someone
arrives or leaves, or a window opens or closes).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import redis

from app import keys, state
from config_sections.schedule import DAYS, ScheduleError, parse_days, parse_window

__all__ = ["DAYS", "KINDS", "ScheduleError", "parse_days", "parse_window", "open_window", "read", "save",
           "checked", "describe", "from_settings", "in_force"]

KINDS = ("arm", "quiet")

def open_window(windows: list[str], when: datetime) -> str | None:
    """The first window open at `when` (local time), or None."""
    for window in windows:
        days_text, times = window.rsplit(" ", 1)
        days = parse_days(days_text)
        (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in times.split("-"))
        start, end = h1 * 60 + m1, h2 * 60 + m2
        minute = when.hour * 60 + when.minute
        today, yesterday = DAYS[when.weekday()], DAYS[(when - timedelta(days=1)).weekday()]
        if start < end and today in days and start <= minute < end:
            return window
        if start > end and ((today in days and minute >= start) or (yesterday in days and minute < end)):
            return window
    return None


def from_settings(cfg) -> dict[str, list[str]]:
    return {"arm": list(cfg.arm), "quiet": list(cfg.quiet)}


def read(r, cfg) -> dict[str, list[str]]:
    """The schedule in force: the one set from Slack, or else pycam.yaml's (also when the stored
    value is unreadable, or not even a string: presence must go on arming)."""
    try:
        raw = r.get(keys.SCHEDULE)
    except redis.ResponseError:
        raw = None
    return in_force(raw, cfg)


def in_force(raw, cfg) -> dict[str, list[str]]:
    """The schedule in force, from the `schedule` value as read from Redis and the settings."""
    return checked(state.decode_json(raw)) or from_settings(cfg)


def checked(raw) -> dict[str, list[str]] | None:
    """A schedule read from Redis, or None when absent or malformed (then pycam.yaml's holds)."""
    if not isinstance(raw, dict):
        return None
    try:
        return {kind: [parse_window(w) for w in raw.get(kind, [])] for kind in KINDS}
    except (ScheduleError, TypeError):
        return None


def save(r, schedule: dict[str, list[str]]) -> None:
    r.set(keys.SCHEDULE, json.dumps(schedule))


def describe(schedule: dict[str, list[str]], when: datetime) -> str:
    """One line for /pycam_status and /pycam_schedule."""
    parts = []
    for kind, label in (("arm", "arms"), ("quiet", "quiet hours")):
        windows = schedule.get(kind) or []
        if windows:
            now = open_window(windows, when)
            parts.append(f"{label} {', '.join(windows)}" + (f" (open now: {now})" if now else ""))
    return "; ".join(parts) if parts else "none"
