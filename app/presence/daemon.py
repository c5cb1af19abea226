"""who_is_home: polls the presence providers, keeps `home` in Redis, arms and disarms the camera.

    python3 app/who_is_home.py          # the daemon (this module is app/presence/daemon.py)
    python3 app/who_is_home.py --once   # one poll: prints what each provider saw and what was decided

Only while `auto_detect_status` is on does it change `camera_status`: armed when nobody is home,
disarmed when someone is. A manual /pycam_on|off (`presence:manual`) holds until `home` changes.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from datetime import datetime
from typing import Any, Callable

import redis

import config
from app import cameras, health, keys, outbox, schedule, state, utils
from app.backoff import Backoff
from app.presence import rules
from app.presence.providers import Provider, ProviderError, SetupError, build_providers

log = logging.getLogger("who_is_home")
NAME = "who_is_home"


class ProviderRun:
    """One provider's poll on a daemon thread, so a slow router never delays SIGTERM."""

    def __init__(self, provider: Provider):
        self.provider = provider
        self.devices: set[rules.Device] | None = None
        self.error: str | None = None
        self.ms = 0.0
        self.thread = threading.Thread(target=self._run, name=f"poll-{provider.name}", daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.devices = self.provider.poll()
        except ProviderError as e:
            self.error = str(e)
        except Exception as e:  # a provider bug must not stop presence: report it like a failure
            log.exception("provider %s crashed", self.provider.name)
            self.error = f"internal error ({type(e).__name__})"
        self.ms = (time.perf_counter() - t0) * 1000


class WhoIsHome:
    """The poll loop. `now` is the clock for presence decisions (tests advance their own)."""

    def __init__(self, r, cfg: config.PresenceConfig, providers: list[Provider],
                 now: Callable[[], float] = time.time, heartbeat_ttl_s: float = 30,
                 schedule_cfg: config.ScheduleConfig | None = None):
        self.r = r
        self.cfg = cfg
        self.schedule_cfg = schedule_cfg or config.ScheduleConfig()
        self.providers = providers
        self.now = now
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.people = [rules.Person.from_config(p.name, p.devices) for p in cfg.people]
        self.tracker: rules.Tracker | None = None
        self.status: dict[str, dict] = {p.name: {"ok": None, "error": "not polled yet"} for p in providers}
        self.running: dict[str, ProviderRun] = {}
        self.last_poll: float | None = None
        self.last_outcome: rules.Outcome | None = None

    # -- providers -----------------------------------------------------------------------------
    def poll_providers(self, stop=None) -> tuple[rules.Sightings, dict[str, ProviderRun]] | None:
        """Poll every provider at once; None when stop was set while waiting."""
        runs: dict[str, ProviderRun] = {}
        for p in self.providers:
            previous = self.running.get(p.name)
            run = ProviderRun(p)
            if previous is not None and previous.thread.is_alive():
                run.error = "the previous poll is still running"  # never two polls of one router at once
            else:
                self.running[p.name] = run
                run.thread.start()
            runs[p.name] = run
        deadline = time.monotonic() + max([p.max_duration_s for p in self.providers] + [0]) + 1
        for run in runs.values():
            while run.thread.is_alive() and time.monotonic() < deadline:
                if stop is not None and stop.is_set():
                    return None
                run.thread.join(0.05)
            if run.thread.is_alive() and run.error is None:
                run.error = "did not finish in time"
        sightings = rules.Sightings()
        for name, run in runs.items():
            if run.error is None and run.devices is not None:
                sightings.devices |= run.devices
                sightings.kinds_ok |= run.provider.kinds
        return sightings, runs

    def _note_status(self, runs: dict[str, ProviderRun], when: float) -> None:
        for name, run in runs.items():
            before = self.status.get(name, {})
            if run.error and before.get("error") != run.error:
                log.warning("provider %s failed: %s", name, run.error)
            elif not run.error and before.get("ok") is False:
                log.info("provider %s answers again", name)
            self.status[name] = {"ok": run.error is None, "error": run.error,
                                 "seen": len(run.devices or ()), "ms": round(run.ms, 1), "time": when}

    # -- one poll --------------------------------------------------------------------------------
    def _load_tracker(self, now: float) -> rules.Tracker:
        home = state.get_json(self.r, keys.HOME, [])
        raw = self.r.hgetall(keys.PRESENCE_LAST_SEEN)
        last_seen = {}
        for name, t in raw.items():
            try:
                last_seen[name] = float(t)
            except ValueError:
                pass
        return rules.Tracker(self.people, self.cfg.consider_home_s, now,
                                home=home if isinstance(home, list) else [], last_seen=last_seen)

    def poll_once(self, stop=None) -> dict[str, Any] | None:
        """Poll, update `home` and last-seen times, decide, write it all in one transaction."""
        polled = self.poll_providers(stop)
        if polled is None:
            return None
        sightings, runs = polled
        now = self.now()
        self._note_status(runs, now)
        if self.tracker is None:
            self.tracker = self._load_tracker(now)
        outcome = self.tracker.update(sightings, now)
        self.last_outcome = outcome
        for name in outcome.arrived:
            log.info("%s arrived (%s)", name, ", ".join(sorted(str(d) for p in self.people if p.name == name
                                                                for d in p.devices & sightings.devices)))
        for name in outcome.left:
            log.info("%s left (not seen for %.0f s)", name, self.cfg.consider_home_s)
        decision = self._apply(outcome, now)
        self.last_poll = now
        return {
            "time": now, "home": outcome.home, "arrived": outcome.arrived, "left": outcome.left,
            "seen": outcome.seen, "no_data": outcome.no_data,
            "decision": {"armed": decision.armed, "clear_manual": decision.clear_manual,
                         "message": decision.message, "reason": decision.reason},
            "providers": {name: {**self.status[name],
                                 "devices": sorted(d.value for d in (run.devices or ()))}
                          for name, run in runs.items()},
        }

    def _apply(self, outcome: rules.Outcome, now: float) -> rules.Decision:
        """Write the poll's result and the decision atomically; a concurrent /pycam_on|off restarts it."""
        status = {"time": now, "home": outcome.home, "no_data": outcome.no_data,
                  "providers": {n: {k: v for k, v in s.items() if k != "time"} for n, s in self.status.items()}}
        names = list(self.r.hkeys(keys.CAMERAS))
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(keys.MANUAL_OVERRIDE, keys.CAMERA_STATUS, keys.AUTO_DETECT_STATUS, keys.SCHEDULE)
                    manual = state.get_json(pipe, keys.MANUAL_OVERRIDE)
                    arm_windows = schedule.read(pipe, self.schedule_cfg)["arm"]
                    decision = rules.decide(
                        outcome, auto=state.get_flag(pipe, keys.AUTO_DETECT_STATUS),
                        armed=state.get_flag(pipe, keys.CAMERA_STATUS), manual=manual,
                        people_configured=bool(self.people), scheduled=bool(arm_windows),
                        window=schedule.open_window(arm_windows, datetime.fromtimestamp(now)))
                    pipe.multi()
                    state.set_json(pipe, keys.HOME, outcome.home)
                    if outcome.seen:
                        pipe.hset(keys.PRESENCE_LAST_SEEN, mapping={n: now for n in outcome.seen})
                    state.set_json(pipe, keys.PRESENCE_STATUS, status)
                    if decision.clear_manual:
                        pipe.delete(keys.MANUAL_OVERRIDE)
                    if decision.armed is not None:
                        state.set_flag(pipe, keys.CAMERA_STATUS, decision.armed)
                        cameras.clear_overrides(pipe, names)    # home-wide: every camera
                        outbox.enqueue(pipe, outbox.make_job("message", text=decision.message))
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        if decision.clear_manual:
            log.info("manual command ended: home is now %s", outcome.home or "nobody")
        if decision.armed is not None:
            log.info("%s", decision.message)
        return decision

    # -- heartbeat and loop ------------------------------------------------------------------------
    def heartbeat(self) -> None:
        failed = [n for n, s in self.status.items() if s.get("ok") is False]
        beat_state = "degraded" if failed else "running"
        detail = {"home": self.last_outcome.home if self.last_outcome else None,
                  "last_poll": self.last_poll,
                  "providers": {n: "ok" if s.get("ok") else (s.get("error") or "not polled yet")
                                for n, s in self.status.items()}}
        health.write_heartbeat(self.r, NAME, beat_state, detail, ttl=self.heartbeat_ttl_s)

    def run(self, stop, heartbeat_s: float = 5.0, poll_s: float | None = None) -> None:
        """Poll every poll_s and beat every heartbeat_s until stop; ride out Redis restarts."""
        poll_s = self.cfg.poll_s if poll_s is None else poll_s
        next_poll = next_beat = time.monotonic()
        backoff = Backoff(1.0, 60.0)
        while not stop.is_set():
            try:
                if time.monotonic() >= next_beat:  # first, so a slow first poll still shows we run
                    next_beat = time.monotonic() + heartbeat_s
                    self.heartbeat()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + poll_s
                    if self.poll_once(stop) is not None:
                        self.heartbeat()  # at once, so /pycam_status shows this poll's provider errors
                        next_beat = time.monotonic() + heartbeat_s
                backoff.reset()
            except state.REDIS_DOWN as e:
                log.warning("Redis unreachable (%s); retrying in %.0f s", type(e).__name__, backoff.delay)
                # The tracker stays in memory: we own `home`, and the next poll writes it again
                # (into an empty Redis if it restarted without its data).
                if backoff.wait(stop):
                    break
                next_poll = min(next_poll, time.monotonic())
                continue
            stop.wait(max(0.0, min(next_poll, next_beat) - time.monotonic()))

    def close(self) -> None:
        for p in self.providers:
            try:
                p.close()
            except Exception:  # closing is best effort at exit
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="poll once, print the result as JSON and exit")
    args = parser.parse_args(argv)
    settings = config.load_or_exit()
    if not args.once:
        utils.check_data_dir(settings.data_dir)
    utils.setup_logging(NAME, settings.log_level, None if args.once else settings.logs_dir)
    if not args.once:
        return serve(settings, state.connect(settings.redis_url, NAME), utils.StopFlag().install())
    try:
        providers = build_providers(settings.presence, config.environment())
    except SetupError as e:
        print(f"pycam: {e}", file=sys.stderr)
        return 2
    r = state.connect(settings.redis_url, NAME)
    app = WhoIsHome(r, settings.presence, providers, heartbeat_ttl_s=settings.heartbeat_ttl_s)
    try:
        state.init_flags(r)
        result = app.poll_once()
    except state.REDIS_DOWN as e:
        print(f"pycam: Redis unreachable at {settings.redis_url.split('@')[-1]} ({type(e).__name__})",
              file=sys.stderr)
        return 1
    finally:
        app.close()
    print(json.dumps(result, indent=1))
    return 0 if all(p["ok"] for p in result["providers"].values()) else 1


def serve(settings, r, stop) -> int:
    """Poll presence and arm or disarm until `stop`; 2 when the providers cannot be set up."""
    try:
        providers = build_providers(settings.presence, config.environment())
    except SetupError as e:
        print(f"pycam: {e}", file=sys.stderr)
        return 2
    if not settings.presence.people:
        log.warning("presence.people is empty: polling only (see docs/presence.md)")
    for person in settings.presence.people:
        for d in person.devices:
            if rules.normalize_mac(d) == d and rules.is_randomised(d):
                log.info("%s: %s is a private (randomised) address; it is stable only while the phone "
                         "keeps one per network", person.name, rules.mask_mac(d))
    app = WhoIsHome(r, settings.presence, providers, heartbeat_ttl_s=settings.heartbeat_ttl_s,
                    schedule_cfg=settings.schedule)
    try:
        if not state.wait_for_redis(r, stop):
            return 0
        state.init_flags(r)
        log.info("started: %d people, providers %s, poll every %g s, away after %g s",
                 len(app.people), ", ".join(p.name for p in providers) or "none",
                 settings.presence.poll_s, settings.presence.consider_home_s)
        app.run(stop, heartbeat_s=settings.heartbeat_s)
        log.info("stopped")
        return 0
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main())
