"""Liveness: the processes pycam runs, their heartbeats, and the one rule for "stale".

Every daemon writes `heartbeat:<name>` every `heartbeat_s` with a TTL of `heartbeat_ttl_s`; a beat
that is missing or older than the TTL is stale. /pycam_status, /healthz and the shell all judge by
`is_stale` here.

    python3 -m app.health            # one line per process; exit 0 all fresh, 1 some stale, 3 no Redis
    python3 -m app.health --wait 20  # first wait up to 20 s for every expected beat to be fresh
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from app import cameras, keys, state
from app.utils import redact

# Heartbeat names, in the order /pycam_status lists them.
PROCESSES = ("security_system", "notifier", "slack_socket", "flask_app", "who_is_home", "s3_upload", "watchdog")


def processes_of(settings) -> tuple[str, ...]:
    """The heartbeats this Pi reports: a camera Pi (role: camera) has its camera daemons (named
    security_system@<name>, from the `cameras` beats) and its notifier; its Redis user may read no other."""
    if settings.role == "camera":
        return tuple(n for name in settings.camera_names for n in (f"security_system@{name}", cameras.sender(name)))
    return PROCESSES


def expected_processes(settings) -> list[str]:
    """The processes that should be running with these settings."""
    if settings.role == "camera":
        return list(processes_of(settings))
    expected = ["security_system", "notifier", "watchdog"]
    if settings.serves_http:
        expected.append("flask_app")          # HTTP mode (Slack posts to gunicorn), or the web page
    if settings.slack.app_token:
        expected.append("slack_socket")       # Socket Mode: the way Slack reaches the Pi
    if settings.presence.people or settings.schedule.arm:
        expected.append("who_is_home")        # it also applies the schedule's arm windows
    if settings.s3.bucket:
        expected.append("s3_upload")
    return expected


def is_stale(beat: dict | None, ttl: float, now: float) -> bool:
    """A heartbeat is stale when missing, malformed or older than the TTL."""
    return not isinstance(beat, dict) or not isinstance(beat.get("time"), (int, float)) or now - beat["time"] > ttl


def write_heartbeat(r, process: str, status: str, detail: Any = None, ttl: float = 30) -> None:
    """Record that `process` is alive, in `status`, with a TTL so a dead process's beat expires."""
    beat = {"time": time.time(), "pid": os.getpid(), "state": status, "detail": detail}
    # Details carry error texts, which may quote a URL: no password reaches Redis (or /pycam_status).
    state.set_json(r, keys.heartbeat(process), json.loads(redact(json.dumps(beat))), ex=ttl)


def try_heartbeat(r, process: str, status: str, detail: Any = None, ttl: float = 30) -> bool:
    """write_heartbeat, riding out a Redis outage (the caller's loop notices it): True when written."""
    try:
        write_heartbeat(r, process, status, detail, ttl)
        return True
    except state.REDIS_DOWN:
        return False


def idle(r, process: str, detail: dict, settings, stop, also=None) -> None:
    """A process with nothing to do (not configured): beat as "disabled" until stopped, instead of
    crash-looping; `also(r)` writes anything else that goes with the beat."""
    while True:
        if try_heartbeat(r, process, "disabled", detail, ttl=settings.heartbeat_ttl_s) and also is not None:
            try:
                also(r)
            except state.REDIS_DOWN:
                pass
        if stop.wait(settings.heartbeat_s):
            return


def read_heartbeats(r, names=PROCESSES) -> dict[str, dict | None]:
    """Each named process's last heartbeat (None when missing or expired); a camera's
    (security_system@<name>) is its beat in the `cameras` hash."""
    beats = {p: state.get_json(r, keys.heartbeat(p)) for p in names if not p.startswith("security_system@")}
    for p in names:
        if p.startswith("security_system@"):
            beats[p] = state.decode_json(r.hget(keys.CAMERAS, p.partition("@")[2]))
    return beats


def process_health(r, settings, now: float | None = None) -> dict[str, dict]:
    """{name: {ok, age, state}} for each expected process and each other one that beats."""
    now = time.time() if now is None else now
    names = processes_of(settings)
    beats = read_heartbeats(r, names)
    expected = expected_processes(settings)
    report = {}
    for name in names:
        beat = beats.get(name)
        if beat is None and name not in expected:
            continue  # not configured here, and not running
        stale = is_stale(beat, settings.heartbeat_ttl_s, now)
        age = now - beat["time"] if not stale else None
        report[name] = {"ok": not stale, "age": age,
                        "state": "missing" if stale else str(beat.get("state"))}
    return report


def stale_processes(r, settings, now: float | None = None) -> list[str]:
    """Names of the expected processes whose heartbeat is missing or older than the TTL."""
    return [name for name, h in process_health(r, settings, now).items() if not h["ok"]]


def format_report(report: dict[str, dict]) -> str:
    """One aligned line per process."""
    return "\n".join(
        f"{'ok   ' if h['ok'] else 'STALE'} {name:<16} {h['state']:<10} "
        + (f"beat {h['age']:.0f} s ago" if h["ok"] else "no fresh heartbeat")
        for name, h in report.items())


def main(argv: list[str] | None = None) -> int:
    import config
    parser = argparse.ArgumentParser(prog="python3 -m app.health",
                                     description="Report each pycam process's heartbeat.")
    parser.add_argument("--wait", type=float, default=0, metavar="S",
                        help="wait up to S seconds for every expected heartbeat to be fresh")
    args = parser.parse_args(argv)
    settings = config.load_or_exit()
    r = state.connect(settings.redis_url, "health", socket_timeout=3)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            report = process_health(r, settings)
        except state.REDIS_DOWN as e:
            print(f"pycam: Redis does not answer at {settings.redis_url.split('@')[-1]} ({type(e).__name__})")
            return 3
        healthy = all(h["ok"] for h in report.values())
        if healthy or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    print(format_report(report))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
