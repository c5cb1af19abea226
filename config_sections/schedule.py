"""Schedules in the settings: arm windows and quiet hours, written `DAYS HH:MM-HH:MM`
(app/schedule.py applies them; its docstring has the rules)."""
from __future__ import annotations

import re

from config_sections.base import Section
from config_sections.model import Field, field_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAMED = {"daily": DAYS, "weekdays": DAYS[:5], "weekends": DAYS[5:]}
_WINDOW = re.compile(r"^\s*(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
    """A window that cannot be read; the message says what is expected."""


def parse_days(text: str) -> tuple[str, ...]:
    text = text.strip().lower()
    if text in NAMED:
        return NAMED[text]
    days: list[str] = []
    for part in text.split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise ScheduleError(f"{text!r}: days are daily, weekdays, weekends, or mon..sun as a list "
                                "or range (mon-fri, sat,sun)")
        a, b = DAYS.index(ends[0]), DAYS.index(ends[-1])
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        days += [DAYS[i] for i in span if DAYS[i] not in days]
    return tuple(d for d in DAYS if d in days)


def parse_window(text: str) -> str:
    """The window in its normal spelling (`mon-fri 08:30-17:30`); ScheduleError when unreadable."""
    m = _WINDOW.match(str(text))
    if not m:
        raise ScheduleError(f"{text!r}: a window is DAYS HH:MM-HH:MM, for example 'mon-fri 08:30-17:30'")
    days = parse_days(m.group(1))
    h1, m1, h2, m2 = (int(m.group(i)) for i in range(2, 6))
    end_of_day = (h2, m2) == (24, 0)                   # `daily 00:00-24:00`: the whole day
    if not (h1 < 24 and (h2 < 24 or end_of_day) and m1 < 60 and m2 < 60) or (h1, m1) == (h2, m2):
        raise ScheduleError(f"{text!r}: times are 00:00 to 23:59 (24:00 may end a window), and a "
                            "window cannot be empty")
    return f"{_days_text(days)} {h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def _days_text(days: tuple[str, ...]) -> str:
    for name, named in NAMED.items():
        if days == named:
            return name
    if len(days) > 2 and DAYS.index(days[-1]) - DAYS.index(days[0]) == len(days) - 1:
        return f"{days[0]}-{days[-1]}"
    return ",".join(days)



class ScheduleConfig(Section):
    arm: list[str] = Field(default_factory=list, description=(
        "Windows that arm the camera, e.g. ['mon-fri 08:30-17:30', 'daily 23:00-06:30']; with presence, "
        "the camera is armed when nobody is home or a window is open. /pycam_schedule overrides them."))
    quiet: list[str] = Field(default_factory=list, description=(
        "Quiet hours: events are recorded but not sent to Slack (health alerts still are), e.g. "
        "['daily 00:00-06:00']. They win over arm windows: do not overlap the two unless you mean it."))

    digest: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description=(
        "HH:MM: a daily digest in Slack at this time: the last 24 hours' events by verdict, health "
        "problems, uptime. Unset: none."))

    @field_validator("arm", "quiet")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        return [parse_window(w) for w in v]
