"""The notifier: the one process that calls Slack, delivering the `slack:outbox` jobs in order
(on a camera Pi, its camera's own outbox: app/outbox.py).

    python3 app/notifier.py   (this module is app/slack/notifier.py)

It reads the outbox through the consumer group `notifier` one job at a time, and acks a job only
after Slack accepted it. A job that fails for a passing reason (network, 5xx, 429) blocks the queue
and is retried with capped backoff (429's Retry-After honoured), so a Slack outage of any length
loses nothing and order is kept. A job Slack refuses outright (invalid_auth, channel_not_found...)
is logged, shown in the heartbeat and retried slowly: alerts are never dropped. Each delivered job
id is marked in Redis before the ack, and an alert's finished upload is marked too, so a restart
never sends anything twice. Job types are described in app/outbox.py.

Alerts queued behind the one being sent (a burst: several cameras, or events held while Slack or
Redis was away) share its message, up to messages.MAX_SHOWN: none is dropped, and the channel
stays within Slack's rate of about one message a second.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time

import redis
from slack_sdk import WebClient

from app import cameras, health, outbox, startup, state, story, utils
from app.backoff import Backoff
from app.slack import messages
from app.slack.delivery import DELIVERED_TTL_S, Delivery, Permanent, Transient, Undeliverable
from app.storage import events

log = logging.getLogger("notifier")

NAME = "notifier"
CONSUMER = "notifier-1"                  # fixed, so a restart finds its own pending entries
BLOCK_MS = 2000                          # under redis-py's 5 s socket timeout
REDIS_RETRY_S, REDIS_RETRY_MAX_S = 0.5, 30.0   # while Redis is unreachable
UNEXPECTED_TRIES = 3       # a job failing in a way nobody foresaw is tried this often, then set aside...
PARKED_RETRY_S = 900.0     # ...and the set-aside jobs are queued again this often


class Notifier:
    """Delivers outbox jobs to Slack, strictly in order, each once."""

    def __init__(self, settings, r: redis.Redis, client: WebClient | None = None, stop=None,
                 consumer: str = CONSUMER, http_timeout: float = 10, backoff_base: float = 0.5,
                 backoff_max: float = 30, permanent_retry_s: float = 60, block_ms: int = BLOCK_MS,
                 box: outbox.Box = outbox.HOME, name: str = NAME):
        self.settings = settings
        self.r = r
        self.box, self.name = box, name          # the outbox it delivers; its heartbeat's name
        self.delivery = Delivery(settings, r, client, self._persist, http_timeout, box)
        self.has_token = self.delivery.has_token
        self.stop = stop or threading.Event()
        self.consumer = consumer
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.permanent_retry_s = permanent_retry_s
        self.block_ms = block_ms
        self.sent = 0
        self.parked_retry_s = PARKED_RETRY_S
        self._next_unpark = time.monotonic() + self.parked_retry_s
        self._state, self._detail = "starting", None
        self._last_beat = 0.0

    # ------------------------------------------------------------ heartbeat

    def _set_state(self, name: str, detail=None) -> None:
        changed = (name, detail) != (self._state, self._detail)
        self._state, self._detail = name, detail
        self._beat(force=changed)

    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < self.settings.heartbeat_s:
            return
        if health.try_heartbeat(self.r, self.name, self._state, self._detail, ttl=self.settings.heartbeat_ttl_s):
            self._last_beat = now    # else the main loop notices Redis is down and backs off

    def _sleep(self, seconds: float) -> None:
        """Wait, keeping the heartbeat fresh; returns early when stopping."""
        end = time.monotonic() + seconds
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._beat()
            self.stop.wait(min(left, self.settings.heartbeat_s))

    # ------------------------------------------------------------ the queue

    def _ensure_group(self) -> None:
        try:
            # From id 0, so jobs queued before the notifier ever ran are delivered too.
            self.r.xgroup_create(self.box.stream, self.box.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _read(self, last_id: str) -> list:
        resp = self.r.xreadgroup(self.box.group, self.consumer, {self.box.stream: last_id},
                                 count=1, block=None if last_id == "0" else self.block_ms)
        return resp[0][1] if resp else []  # [[stream, [(id, fields)]]], or [] when the block timed out

    def run(self) -> None:
        """Deliver jobs until stopped, riding out Redis restarts."""
        last_id, ready = "0", False  # "0": our own pending entries first
        redis_backoff = Backoff(REDIS_RETRY_S, REDIS_RETRY_MAX_S)
        while not self.stop.is_set():
            try:
                if not ready:
                    self._ensure_group()
                    ready = True
                    if self._state in ("starting", "redis down"):
                        self._set_state("ok", f"{self.sent} sent")
                self._beat()
                self._unpark_when_due()
                entries = self._read(last_id)
                if not entries:
                    last_id = ">"  # nothing (more) pending: new entries from now on
                    continue
                self.process(*entries[0], coalesce=last_id == ">")
                redis_backoff.reset()
            except state.REDIS_DOWN as e:
                log.warning("Redis unreachable (%s); retrying in %.1f s", type(e).__name__, redis_backoff.delay)
                self._state, self._detail = "redis down", None
                redis_backoff.wait(self.stop)
                last_id, ready = "0", False
            except redis.ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                log.warning("The outbox consumer group is gone (Redis restarted empty?); recreating it")
                last_id, ready = "0", False

    def _claim_alerts(self, after: str, room: int, seen: set) -> tuple[list, list]:
        """The alerts queued right behind entry `after` (a burst), claimed to share its message:
        (alerts, anything else claimed on the way, which goes on its own afterwards)."""
        behind = 0
        for _, queued in self.r.xrange(self.box.stream, min=f"({after}", count=max(0, room)):
            follower = outbox.parse(queued)
            if follower is None or follower["type"] != "alert" or not events.is_event_id(follower.get("event_id")):
                break
            behind += 1
        if not behind:
            return [], []
        # One consumer, and `after` was the last entry it read: the next new entries are those.
        claimed = self.r.xreadgroup(self.box.group, self.consumer, {self.box.stream: ">"}, count=behind)
        alerts, others = [], []
        for eid, fields in claimed[0][1] if claimed else []:
            job = outbox.parse(fields)
            if job is None or job["id"] in seen or self.r.exists(self.box.delivered(job["id"])):
                self._ack(eid)                       # malformed, queued twice, or sent already
                continue
            seen.add(job["id"])
            (alerts if job["type"] == "alert" and not others else others).append((eid, job))
        return alerts, others

    def process(self, entry_id: str, fields: dict | None, coalesce: bool = False) -> None:
        """Deliver one entry, retrying until Slack accepts it (or we are stopping), then ack it.
        With `coalesce`, an alert takes the alerts queued behind it into its message until it is posted."""
        self._deliver(entry_id, outbox.parse(fields or {}), coalesce)

    def _deliver(self, entry_id: str, job: dict | None, coalesce: bool = False) -> None:
        if job is None:
            log.error("Dropping malformed outbox entry %s", entry_id)
            self._ack(entry_id)
            return
        job_id = job["id"]
        if self.r.exists(self.box.delivered(job_id)):
            log.info("Job %s was already delivered; not sending it again", job_id)
            self._ack(entry_id)
            return
        followers, later = [], []
        self._attempts(entry_id, job, followers, later, coalesce and job["type"] == "alert"
                       and events.is_event_id(job.get("event_id")))
        for eid, other in later:             # claimed on the way: each on its own, in order
            if not self.stop.is_set():
                self._deliver(eid, other)

    def _attempts(self, entry_id: str, job: dict, followers: list, later: list, coalesce: bool) -> None:
        job_id = job["id"]
        seen = {job_id}
        attempt, unexpected, backoff = 0, 0, Backoff(self.backoff_base, self.backoff_max)
        while not self.stop.is_set():
            # A burst queued behind this alert (or alerts held while Slack was away) joins its
            # message, up to MAX_SHOWN, as long as the message is not posted yet.
            # Not once a post was tried without an answer: Slack may show it with the members it had.
            if (coalesce and len(followers) < messages.MAX_SHOWN - 1 and not later
                    and not self.r.hexists(story.key(job["event_id"]), "ts")
                    and not self.r.hexists(self.box.inflight(job_id), "post")):
                # The post must wait for Slack's second anyway: alerts arriving meanwhile join it.
                self._sleep(self.delivery.post_wait())
                more, odd = self._claim_alerts(followers[-1][0] if followers else entry_id,
                                               messages.MAX_SHOWN - 1 - len(followers), seen)
                followers += more
                later += odd
            try:
                self.delivery.deliver(job, [f for _, f in followers])
                break
            except Undeliverable as e:
                log.error("Dropping job %s: %s", job_id, e)
                self._ack(entry_id)
                later[:0] = followers
                return
            except Transient as e:
                attempt += 1
                wait = backoff.next()
                if e.retry_after is not None:   # Slack said how long: that, not our guess
                    wait = max(e.retry_after, self.backoff_base)
                log.warning("Job %s not delivered (%s); retry %d in %.1f s", job_id, e, attempt, wait)
                self._set_state("retrying", f"{job_id}: {e}")
                self._sleep(wait)
            except Permanent as e:
                attempt += 1
                log.error("Slack refused job %s: %s. Check SLACK_BOT_TOKEN, SLACK_CHANNEL_ID and the app's "
                          "scopes; retrying every %.0f s", job_id, e, self.permanent_retry_s)
                self._set_state("error", f"{job_id}: Slack refused it ({e})")
                self._sleep(self.permanent_retry_s)
            except state.REDIS_DOWN:
                raise
            except Exception as e:  # an answer nobody foresaw: one bad job must not stop the others
                unexpected += 1
                log.exception("Job %s failed unexpectedly (%d of %d)", job_id, unexpected, UNEXPECTED_TRIES)
                if unexpected >= UNEXPECTED_TRIES:
                    self._park(entry_id, job, f"{type(e).__name__}: {str(e)[:200]}")
                    if followers and self.r.hexists(story.key(job["event_id"]), "ts"):
                        self._finish(None, None, followers)  # in its posted message, which it completes later
                    else:
                        later[:0] = followers                # not posted: each goes on its own
                    return
                self._sleep(backoff.next())
        else:
            return  # stopping: the job stays pending and is delivered after the restart
        self._finish(entry_id, job_id, followers)
        self.sent += 1 + len(followers)
        log.info("Delivered %s%s", job_id, f" with {len(followers)} more alerts in its message" if followers else "")
        self._set_state("ok", f"{self.sent} sent")

    def _park(self, entry_id: str, job: dict, error: str) -> None:
        """Set a job aside (kept, counted in /pycam_status, queued again later) and go on."""
        def write():
            with self.r.pipeline(transaction=True) as p:
                p.rpush(self.box.parked, json.dumps({"job": job, "error": error, "time": time.time()}))
                p.xack(self.box.stream, self.box.group, entry_id)
                p.execute()
        self._persist(f"{job['id']} as set aside", write)
        log.error("Job %s set aside after %d unexpected failures (%s); the next jobs go on, and it is "
                  "tried again within %.0f min", job["id"], UNEXPECTED_TRIES, error, self.parked_retry_s / 60)
        self._set_state("ok", f"{self.sent} sent, {job['id']} set aside")

    def _unpark_when_due(self) -> None:
        """Queue the set-aside jobs again (the owner may have fixed what made them fail)."""
        if time.monotonic() < self._next_unpark:
            return
        self._next_unpark = time.monotonic() + self.parked_retry_s
        while True:
            raw = self.r.lindex(self.box.parked, 0)
            if raw is None:
                return
            with self.r.pipeline(transaction=True) as p:   # queued and taken off the list together
                try:
                    outbox.enqueue(p, json.loads(raw)["job"], self.box)
                except (ValueError, KeyError, TypeError):
                    log.error("Dropping an unreadable set-aside job")
                p.lpop(self.box.parked)
                p.execute()

    def _ack(self, entry_id: str) -> None:
        self.r.xack(self.box.stream, self.box.group, entry_id)

    def _persist(self, what: str, write) -> None:
        """Run a Redis write that records something Slack already accepted, through a Redis outage.

        Giving up here would send the same thing again after the restart.
        """
        backoff = Backoff(0.2, 5)   # short: Slack has the message, Redis must hear of it soon
        while True:
            try:
                write()
                return
            except state.REDIS_DOWN as e:
                log.warning("Cannot record %s yet (%s)", what, type(e).__name__)
                if backoff.wait(self.stop):
                    return

    def _finish(self, entry_id: str, job_id: str, followers: list[tuple[str, dict]] = ()) -> None:
        """Mark the job (and the alerts that shared its message) delivered, then ack them (one transaction)."""
        done = [(entry_id, job_id)] if entry_id else []
        done += [(eid, job["id"]) for eid, job in followers]

        def write():
            with self.r.pipeline(transaction=True) as p:
                for eid, jid in done:
                    p.set(self.box.delivered(jid), time.time(), ex=DELIVERED_TTL_S)
                    p.delete(self.box.uploaded(jid), self.box.inflight(jid))
                    p.xack(self.box.stream, self.box.group, eid)
                p.execute()
        self._persist(f"{job_id} as delivered", write)


def main() -> None:
    sys.exit(serve(*startup.start(NAME)))


def outbox_of(settings) -> tuple[outbox.Box, str]:
    """(box, heartbeat name) of the outbox this Pi's notifier delivers: the home's on the hub; on a
    camera Pi, its camera's own (a camera Pi runs one camera: config.py), whose images only it reads."""
    if settings.role == "camera":
        name = settings.camera_names[0]
        return outbox.box(name), cameras.sender(name)
    return outbox.HOME, NAME


def serve(settings, r, stop) -> int:
    """Deliver this Pi's outbox until `stop`; 1 when the loop crashed."""
    box, name = outbox_of(settings)
    notifier = Notifier(settings, r, stop=stop, box=box, name=name)
    if not notifier.has_token or not settings.slack.channel_id:
        log.error("SLACK_BOT_TOKEN and SLACK_CHANNEL_ID must be set; jobs stay queued until they are")
    log.info("Notifier started (channel %s, API %s, %s)", settings.slack.channel_id, settings.slack.api_url, box.stream)
    # Slack calls block in a worker thread, so SIGTERM ends the process within 2 s even while a
    # request hangs; the job in hand is not acked and is delivered after the restart.
    if not utils.run_in_worker(notifier.run, stop, name):
        return 1
    log.info("Notifier stopped")
    return 0


if __name__ == "__main__":
    main()
