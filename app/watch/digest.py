"""The daily digest: the last 24 hours in one Slack message (setting schedule.digest, HH:MM).

Sent by the watchdog once a day at that local time (job id `digest:<date>`: never twice): events
by verdict (from the `events` stream), the health problems told (`alarms:log`), and uptime.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from app import keys, outbox, state
from app.alarms import clock, duration
from app.storage import events

DAY_S = 86400
FATES = {"sent": "sent", "held": "held back by the verifier", "quiet": "in quiet hours",
         "off": "not sent (notifications off)"}      # in the digest's order (app/storage/events.fate)


def due(digest_at: str | None, now: float) -> str | None:
    """Today's date (the job's key) once the digest time has passed today, else None."""
    if not digest_at:
        return None
    local = datetime.fromtimestamp(now)
    hour, minute = map(int, digest_at.split(":"))
    return local.strftime("%Y-%m-%d") if (local.hour, local.minute) >= (hour, minute) else None


def pi_uptime(path: Path = Path("/proc/uptime")) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def text(r, now: float, up_since: float, uptime_s: float | None) -> str:
    """The digest of the 24 hours before `now`."""
    counts = dict.fromkeys(FATES, 0)
    for _, fields in r.xrange(keys.EVENTS, min=f"{int((now - DAY_S) * 1000)}", max="+"):
        meta = state.decode_json(fields.get("event"))
        if isinstance(meta, dict):
            counts[events.fate(meta)] += 1
    total = sum(counts.values())
    summary = f"{total} event{'s' if total != 1 else ''}" + (
        ": " + ", ".join(f"{n} {FATES[fate]}" for fate, n in counts.items() if n) if total else "")
    problems = [p for p in (state.decode_json(x) for x in r.lrange(keys.ALARMS_LOG, 0, -1))
                if isinstance(p, dict) and isinstance(p.get("since"), (int, float)) and p["since"] >= now - DAY_S]
    told = "no health problems" if not problems else f"{len(problems)} health problem{'s' * (len(problems) > 1)}: " + \
        "; ".join(f"{clock(p['since'])} {str(p.get('text', p.get('name'))).removeprefix('pycam: ').rstrip('.')}"
                  for p in reversed(problems))
    up = f"Up: pycam's services for {duration(now - up_since)}"
    if uptime_s is not None:
        up += f", the Pi for {duration(uptime_s)}"
    return f"pycam daily digest, the last 24 hours: {summary}. {told[0].upper() + told[1:]}. {up}."


def send_if_due(r, digest_at: str | None, now: float, up_since: float, uptime_s: float | None) -> bool:
    """Queue today's digest once its time has passed (the job id keeps it to one a day)."""
    day = due(digest_at, now)
    if day is None or r.exists(keys.DIGEST_SENT_PREFIX + day):
        return False
    with r.pipeline(transaction=True) as p:
        outbox.enqueue(p, outbox.make_job("message", f"digest:{day}", text=text(r, now, up_since, uptime_s)))
        p.set(keys.DIGEST_SENT_PREFIX + day, json.dumps(time.time()), ex=2 * DAY_S)
        p.execute()
    return True
