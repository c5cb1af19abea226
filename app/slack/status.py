"""The /pycam_status report: flags, presence, the last event, each process's health, S3, disk."""
from __future__ import annotations

import shutil
import time
from datetime import datetime

import redis

from app import alarms, arming, cameras, health, keys, schedule, state, utils
from app.slack import messages


def ago(seconds: float) -> str:
    seconds = max(0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _mb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _last_event(entries: list) -> dict | None:
    """Metadata of the newest entry on the events stream (from XREVRANGE ... COUNT 1)."""
    for _id, fields in entries:
        meta = state.decode_json(fields.get("event"))
        return meta if isinstance(meta, dict) else None
    return None


def _presence_line(presence, now: float) -> str | None:
    """"Presence: router: ok, lan: error (timeout) (polled 10 s ago)" from who_is_home's last poll."""
    if not isinstance(presence, dict) or not isinstance(presence.get("providers"), dict):
        return None
    parts = []
    for name, provider in presence["providers"].items():
        provider = provider if isinstance(provider, dict) else {}
        parts.append(f"{name}: ok" if provider.get("ok") else f"{name}: error ({provider.get('error')})")
    polled = presence.get("time")
    return "Presence: " + ", ".join(parts) + (
        f" (polled {ago(now - polled)})" if isinstance(polled, (int, float)) else "")


STATUS_KEYS = [keys.CAMERA_STATUS, keys.CAMERA_NOTIFICATIONS, keys.AUTO_DETECT_STATUS, keys.TRAINING_MODE,
               keys.MANUAL_OVERRIDE, keys.HOME, keys.UNVERIFIED_COUNT, keys.S3_STATUS, keys.PRESENCE_STATUS]


def _camera_line(name: str, beat, settings, now: float, sender=None) -> str:
    """One camera of several: armed or not (its own or the home's), what it does, how fresh; for a
    camera Pi (`sender`: its notifier's heartbeat), whether that Pi sends its alerts."""
    if not isinstance(beat, dict) or health.is_stale(beat, settings.heartbeat_ttl_s, now):
        return f"{name} *not running* (no fresh heartbeat)"
    line = f"{name} {'armed' if beat.get('armed') else 'disarmed'}, {beat.get('state')}, {ago(now - beat['time'])}"
    if beat.get("sends") and health.is_stale(sender, settings.heartbeat_ttl_s, now):
        line += " (its Pi's notifier is *not running*: its alerts wait there)"
    return line


def status_text(r: redis.Redis, settings, now: float | None = None) -> str:
    """The /pycam_status report (one Redis round trip)."""
    now = time.time() if now is None else now
    with r.pipeline(transaction=False) as p:
        p.mget(STATUS_KEYS + [keys.heartbeat(name) for name in health.PROCESSES])
        p.xrevrange(keys.EVENTS, count=1)
        p.llen(keys.SLACK_PARKED)
        p.get(keys.SCHEDULE)
        p.hgetall(keys.ALARMS)
        p.hgetall(keys.CAMERAS)
        raw, newest, parked, raw_schedule, raw_alarms, raw_cameras = p.execute()
    v = dict(zip(STATUS_KEYS, raw))
    flag = {k: state.decode_flag(k, v[k]) for k in keys.FLAG_DEFAULTS}
    beats = {name: state.decode_json(b) for name, b in zip(health.PROCESSES, raw[len(STATUS_KEYS):])}
    yes = {True: "on", False: "off"}
    armed, manual, home = flag[keys.CAMERA_STATUS], state.decode_json(v[keys.MANUAL_OVERRIDE]), state.decode_json(v[keys.HOME], [])
    plan = schedule.in_force(raw_schedule, settings.schedule)
    window = schedule.open_window(plan["arm"], datetime.fromtimestamp(now))
    lines = ["*pycam status*",
             f"Armed: {'*yes*' if armed else '*no*'}"
             + (" (set by hand)" if arming.armed_by_hand(manual, armed, home, window) else ""),
             f"Schedule: {schedule.describe(plan, datetime.fromtimestamp(now))}",
             f"Notifications: {yes[flag[keys.CAMERA_NOTIFICATIONS]]}",
             f"Auto mode: {yes[flag[keys.AUTO_DETECT_STATUS]]}",
             f"Training mode: {yes[flag[keys.TRAINING_MODE]]}",
             "Home: " + (", ".join(map(str, home)) if isinstance(home, list) and home else "nobody")]
    beats_of = {name: state.decode_json(value) for name, value in raw_cameras.items()}
    if len(beats_of) > 1 or any(name != settings.camera.name or (isinstance(b, dict) and b.get("armed") != armed)
                                for name, b in beats_of.items()):
        pis = sorted(n for n, b in beats_of.items() if isinstance(b, dict) and b.get("sends"))
        senders = dict(zip(pis, r.mget([keys.heartbeat(cameras.sender(n)) for n in pis]))) if pis else {}
        lines.append("Cameras: " + "; ".join(
            _camera_line(name, beats_of[name], settings, now, state.decode_json(senders.get(name)))
            for name in sorted(beats_of)))
    presence = _presence_line(state.decode_json(v[keys.PRESENCE_STATUS]), now)
    if presence:
        lines.append(presence)
    event = _last_event(newest)
    if event and isinstance(event.get("time"), (int, float)):
        lines.append(f"Last event: {messages.when(event['time'])} ({ago(now - event['time'])})")
    else:
        lines.append("Last event: none yet")
    if v[keys.UNVERIFIED_COUNT]:
        lines.append(f"Events the verifier held back: {v[keys.UNVERIFIED_COUNT]}")
    if parked:
        lines.append(f"Slack messages set aside after unexpected errors: {parked} (tried again every 15 min; "
                     "see logs/notifier.log)")
    problems = alarms.parse(raw_alarms)
    if problems:
        lines.append("Problems now (told when each began; Slack hears again when each ends):")
        for name in sorted(problems, key=lambda n: problems[n].get("since", 0)):
            lines.append(f"  • {problems[name].get('text', name)}")
    lines.append("Processes:")
    expected = health.expected_processes(settings)
    for name in health.PROCESSES:
        beat = beats.get(name)
        if not isinstance(beat, dict):
            if name in expected:  # a process that is not configured here and not running is not listed
                lines.append(f"  • {name}: *not running* (no heartbeat)")
            continue
        age = now - beat["time"] if isinstance(beat.get("time"), (int, float)) else float("inf")
        stale = " *STALE*" if health.is_stale(beat, settings.heartbeat_ttl_s, now) else ""
        detail = beat.get("detail")
        lines.append(f"  • {name}: {beat.get('state', '?')}, {ago(age)}{stale}"
                     + (f" ({detail})" if detail not in (None, "", {}) else ""))
    s3 = state.decode_json(v[keys.S3_STATUS])
    if isinstance(s3, dict):
        lines.append(f"S3: {'ok' if s3.get('ok') else 'error: ' + str(s3.get('error'))}, "
                     f"{s3.get('pending', '?')} pending, {s3.get('uploaded', '?')} uploaded")
    # The camera daemon keeps the events folder's size as it writes (no walk of 10^4 files here).
    camera = (beats.get("security_system") or {}).get("detail") or {}
    events_mb = camera.get("events_mb") if isinstance(camera, dict) else None
    disk = "Disk: " + (f"events {events_mb:.0f} MB of {settings.events.max_total_mb:.0f} MB"
                       if isinstance(events_mb, (int, float)) else "events folder size not known yet")
    try:
        disk += f", {_mb(shutil.disk_usage(settings.data_dir).free)} free"
    except OSError:
        pass
    lines.append(disk)
    temp = utils.cpu_temperature()
    if temp is not None:
        lines.append(f"CPU temperature: {temp:.1f} °C")
    return utils.redact("\n".join(lines))
