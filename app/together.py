"""The network services in one process: Slack out and in, presence, S3 and the watchdog, each in
its own thread.

    python3 app/services.py                       # all five (the standard and compact layouts)
    python3 app/services.py notifier slack_socket # only these

Each service is the same code its own launch path runs (`serve(settings, r, stop)`), with its own
Redis client, heartbeat and stop flag. They wait on the network, never on each other, so one
interpreter serves them all and its imports (redis-py, slack_sdk, the settings) are paid once:
about 75 MB less than four processes on a Pi (docs/running.md, "Memory"). The camera daemon stays
a process of its own: its frame loop never shares a GIL with a network call.

A service that crashes, or stops because its settings cannot be used yet (a variable missing from
`.env`, which it reads again), is logged and started again with backoff (2 s, doubling up to a
minute, as systemd would restart its own process); the others go on.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time

from app import startup, state, utils
from app.backoff import Backoff

log = logging.getLogger("services")
NAME = "services"
# Each service's module, which has `serve(settings, r, stop) -> int`.
SERVICES = {"notifier": "app.slack.notifier", "slack_socket": "app.slack.socket",
            "who_is_home": "app.presence.daemon", "s3_upload": "app.storage.daemon",
            "watchdog": "app.watch.daemon"}
STEADY_S = 60.0        # a service that ran this long before it stopped starts again from the first delay


class Service:
    """One service's thread: started, watched, and started again after a crash."""

    def __init__(self, name: str, settings, serve=None):
        self.name, self.settings = name, settings
        self.serve = serve                       # default: the service module's serve()
        self.stop = utils.StopFlag()             # its own: a crash stops this service, not the rest
        self.thread: threading.Thread | None = None
        self.code: int | None = None
        self.started_at = self.ended_at = 0.0
        self.backoff = Backoff(2.0, 60.0)

    def start(self) -> None:
        self.stop = utils.StopFlag()
        self.code = None
        self.started_at = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            serve = self.serve or importlib.import_module(SERVICES[self.name]).serve
            self.code = serve(self.settings, state.connect(self.settings.redis_url, self.name), self.stop)
        except Exception:
            log.exception("%s crashed", self.name)
            self.code = 1
        finally:
            self.ended_at = time.monotonic()

    def ended(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()


def run(names: list[str]) -> int:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise SystemExit(f"pycam: no such service: {', '.join(unknown)} (known: {', '.join(SERVICES)})")
    settings, _r, stop = startup.start(NAME)
    log.info("running %s in one process", ", ".join(names))
    supervise([Service(name, settings) for name in names], stop)
    log.info("stopped")
    return 0


def supervise(services: list[Service], stop, every: float = 0.5) -> None:
    """Start the services and keep them running until `stop`; then stop them all."""
    for service in services:
        service.start()
    while not stop.wait(every):
        for service in services:
            if not service.ended():
                continue
            if service.ended_at - service.started_at > STEADY_S:
                service.backoff.reset()
            if service.backoff.ready():
                log.warning("%s stopped (exit %s); starting it again", service.name, service.code)
                service.backoff.failed()
                service.start()
    for service in services:
        service.stop.set()
    for service in services:
        if service.thread is not None:
            service.thread.join(2.0)
