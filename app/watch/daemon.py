"""The watchdog: tells the owner when a pycam process stops beating, when Redis was away, and
when the Pi is under-volted or throttled; once when each problem starts, once when it ends.

    python3 app/watchdog.py     (in the standard and compact layouts: a thread of app/services.py)

It runs beside the notifier, since a message needs the notifier to reach Slack. When the whole
services process was down, it says so when it is back (its own last beat tells for how long).
Redis being away can only be told once it is back, with how long it was away. The camera daemon
watches its own view, source and disk (app/camera/daemon.py).
"""
from __future__ import annotations

import logging
import time

import redis

from app import alarms, cameras, health, outbox, state
from app.alarms import Board, clock, duration
from app.watch import digest, power

NAME = "watchdog"
log = logging.getLogger(NAME)
CHECK_S = 2.0
AWAY_MIN_S = 5.0                      # a shorter Redis outage is not news
LAST_SEEN = "watchdog:last_seen"      # epoch seconds of its last check (no TTL): downtime at start
NAMES = {"security_system": "the camera daemon", "notifier": "the notifier (Slack out)",
         "slack_socket": "Slack Socket Mode (Slack in)", "flask_app": "the Slack app (gunicorn)",
         "who_is_home": "presence (who_is_home)", "s3_upload": "the S3 uploader"}


def call(fn, *args):
    """A Redis write for the alarm board: None when Redis is away (the next check tries again)."""
    try:
        return fn(*args)
    except state.REDIS_DOWN:
        return None


class Watchdog:
    def __init__(self, settings, r, firmware=None, check_s: float = CHECK_S, away_min_s: float = AWAY_MIN_S):
        self.s, self.r = settings, r
        self.check_s, self.away_min_s = check_s, away_min_s
        # Processes are judged once each has had a heartbeat's lifetime to beat: at start, and
        # after Redis was away (every heartbeat expired meanwhile).
        self.judge_after: float | None = None
        self.firmware = firmware if firmware is not None else power.find()
        watched = [p for p in health.PROCESSES if p != NAME]
        self.board = Board(call, lambda: r, **{f"process:{p}": (0.0, 0.0) for p in watched},
                           power_under_voltage=(0.0, 60.0), power_throttled=(0.0, 60.0))
        self.away_since: float | None = None       # Redis unreachable since
        self.up_since = time.time()
        self.started = False

    def message(self, job_id: str, text: str, since: float) -> None:
        """A problem told once it is over (no alarm to raise): queued, and kept for the digest."""
        outbox.enqueue(self.r, outbox.make_job("message", job_id, text=text))
        alarms.log_problem(self.r, job_id.split(":")[1], since, text)

    def check(self, now: float) -> None:
        """One round; raises REDIS_DOWN when Redis does not answer."""
        self.r.ping()
        if self.judge_after is None:
            self.judge_after = now + self.s.heartbeat_ttl_s
        if self.away_since is not None:
            since = self.away_since
            if now - since >= self.away_min_s:
                self.message(f"alarm:redis:{since:.3f}", f"pycam: Redis was unreachable for "
                             f"{duration(now - since)} ({clock(since)} to {clock(now)}); what was queued "
                             "meanwhile follows.", since)
            self.away_since = None                # only once the message is queued
        if not self.started:
            last = state.decode_json(self.r.get(LAST_SEEN))
            if isinstance(last, (int, float)) and now - last > self.s.heartbeat_ttl_s:
                self.message(f"alarm:services:{last:.3f}", f"pycam: its services (Slack, presence, S3) "
                             f"were down for {duration(now - last)} ({clock(last)} to {clock(now)}).", last)
            self.started = True                   # only once the message is queued
        self.r.set(LAST_SEEN, now)
        if self.s.alerts.processes and now >= self.judge_after:
            report = health.process_health(self.r, self.s, now)
            for name in health.PROCESSES:
                if name == NAME:
                    continue
                who = NAMES.get(name, name)
                bad = name in report and not report[name]["ok"]
                self.board.check(f"process:{name}", bad, now,
                                 lambda since, who=who: f"pycam: {who} has stopped (no heartbeat since about "
                                 f"{clock(since - self.s.heartbeat_ttl_s)}).",
                                 lambda since, ended, who=who: f"pycam: {who} runs again (down for about "
                                 f"{duration(ended - since + self.s.heartbeat_ttl_s)}).")
            self.check_cameras(now)
        digest.send_if_due(self.r, self.s.schedule.digest, now, self.up_since, digest.pi_uptime())
        report = power.read(self.firmware) if self.s.alerts.power else None
        if report is not None:
            self.board.check("power_under_voltage", report["under_voltage"], now,
                             lambda since: "pycam: the Pi is under-volted: its power supply gives too little "
                             "(use the official 5 V supply and a short cable). The camera may stall or the SD card fail.",
                             lambda since, ended: f"pycam: the Pi's power is fine again (under-volted for "
                             f"{duration(ended - since)}).")
            self.board.check("power_throttled", report["throttled"], now,
                             lambda since: "pycam: the Pi is throttled (too hot or under-powered): frames may "
                             "be dropped. Give it air or a heatsink.",
                             lambda since, ended: f"pycam: the Pi runs at full speed again (throttled for "
                             f"{duration(ended - since)}).")

    def check_cameras(self, now: float) -> None:
        """With several cameras, each one's own beat (they share the camera daemon's heartbeat name,
        which one live camera keeps fresh while another is dead)."""
        known = cameras.known(self.r)
        if len(known) < 2:
            return
        for name, beat in known.items():
            self.board.add(f"camera:{name}")
            self.board.check(f"camera:{name}", health.is_stale(beat, self.s.heartbeat_ttl_s, now), now,
                             lambda since, name=name: f"pycam: camera {name} has stopped (no heartbeat since about "
                             f"{clock(since - self.s.heartbeat_ttl_s)}).",
                             lambda since, ended, name=name: f"pycam: camera {name} runs again (down for about "
                             f"{duration(ended - since + self.s.heartbeat_ttl_s)}).")

    def run(self, stop) -> None:
        while True:
            now = time.time()
            try:
                self.check(now)
                health.try_heartbeat(self.r, NAME, "ok", {"alarms": len(alarms.active(self.r))},
                                     ttl=self.s.heartbeat_ttl_s)
            except state.REDIS_DOWN:
                if self.away_since is None:
                    self.away_since = now
                    self.judge_after = None           # every heartbeat expires meanwhile
                    log.warning("Redis unreachable; the owner is told how long once it is back")
            except redis.RedisError as e:             # full disk (MISCONF), read-only replica, OOM
                log.error("Redis refused the watchdog's writes: %s", e)
            if stop.wait(self.check_s):
                return


def serve(settings, r, stop) -> int:
    dog = Watchdog(settings, r)
    log.info("Watchdog started (power report: %s)", "yes" if dog.firmware else "none, not a Pi")
    dog.run(stop)
    return 0
