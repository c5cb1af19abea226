"""The notifier: the one process that calls Slack, delivering the `slack:outbox` jobs in order.

    python3 app/notifier.py   (this module is app/slack/notifier.py)

It reads the outbox through the consumer group `notifier` one job at a time, and acks a job only
after Slack accepted it. A job that fails for a passing reason (network, 5xx, 429) blocks the queue
and is retried with capped backoff (429's Retry-After honoured), so a Slack outage of any length
loses nothing and order is kept. A job Slack refuses outright (invalid_auth, channel_not_found...)
is logged, shown in the heartbeat and retried slowly: alerts are never dropped. Each delivered job
id is marked in Redis before the ack, and an alert's finished upload is marked too, so a restart
never sends anything twice. Job types are described in app/outbox.py.
"""
from __future__ import annotations

import http.client
import json
import logging
import sys
import threading
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

import config
from app import health, keys, outbox, state, utils
from app.backoff import Backoff
from app.slack import messages
from app.storage import events

log = logging.getLogger("notifier")

NAME = "notifier"
CONSUMER = "notifier-1"                  # fixed, so a restart finds its own pending entries
DELIVERED_TTL_S = 7 * 86400
BLOCK_MS = 2000                          # under redis-py's 5 s socket timeout
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REDIS_RETRY_S, REDIS_RETRY_MAX_S = 0.5, 30.0   # while Redis is unreachable
UNEXPECTED_TRIES = 3       # a job failing in a way nobody foresaw is tried this often, then set aside...
PARKED_RETRY_S = 900.0     # ...and the set-aside jobs are queued again this often
# ok:false errors that pass by themselves; any other refusal needs the owner (token, channel...).
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout"}


class Transient(Exception):
    """Slack or the network failed for now: retry soon (after `retry_after` seconds when given).
    `answered`: Slack did answer (429, 5xx), so the call did not happen; otherwise it may have."""

    def __init__(self, message: str, retry_after: float | None = None, answered: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.answered = answered


class Permanent(Exception):
    """Slack refused the job (bad token, unknown channel...): retry slowly until the owner fixes it."""


class Undeliverable(Exception):
    """The job can never be sent (malformed, or its response_url expired): log it and ack it."""


def data_path(data_dir: Path, relative: object) -> Path | None:
    """A path from a job, resolved inside the data dir (None when it is missing or points outside)."""
    if not isinstance(relative, str) or not relative:
        return None
    base = Path(data_dir).resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) else None


def response_url_allowed(url: object, api_url: str) -> bool:
    """Only Slack's own hooks host, or the local fake when the API itself is the local fake.

    A response_url arrives inside a (verified) request; keeping this tight means a forged one could
    never make the Pi POST to an arbitrary host on its network.
    """
    if not isinstance(url, str):
        return False
    u = urlsplit(url)
    if u.scheme == "https" and u.hostname == "hooks.slack.com" and u.port in (None, 443) and not u.username:
        return True
    api = urlsplit(api_url)
    return (api.hostname in LOOPBACK and u.scheme in ("http", "https")
            and u.netloc == api.netloc and not u.username)


def _retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (any case), or None."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, min(float(value), 600.0))
            except (TypeError, ValueError):
                return None
    return None


class Notifier:
    """Delivers outbox jobs to Slack, strictly in order, each once."""

    def __init__(self, settings, r: redis.Redis, client: WebClient | None = None, stop=None,
                 consumer: str = CONSUMER, http_timeout: float = 10, backoff_base: float = 0.5,
                 backoff_max: float = 30, permanent_retry_s: float = 60, block_ms: int = BLOCK_MS):
        self.settings = settings
        self.r = r
        token = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else None
        # No retry handlers: every retry decision (and Retry-After) is made in one place, below,
        # where the stop flag is honoured.
        self.client = client or WebClient(token=token, base_url=settings.slack.api_url,
                                          timeout=int(http_timeout), retry_handlers=[])
        self.has_token = bool(token)
        self.stop = stop or threading.Event()
        self.consumer = consumer
        self.http_timeout = http_timeout
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
        try:
            health.write_heartbeat(self.r, NAME, self._state, self._detail, ttl=self.settings.heartbeat_ttl_s)
            self._last_beat = now
        except state.REDIS_DOWN:
            pass  # the main loop notices Redis is down and backs off

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
            self.r.xgroup_create(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _read(self, last_id: str) -> list:
        resp = self.r.xreadgroup(keys.SLACK_OUTBOX_GROUP, self.consumer, {keys.SLACK_OUTBOX: last_id},
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
                self.process(*entries[0])
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

    def process(self, entry_id: str, fields: dict | None) -> None:
        """Deliver one entry, retrying until Slack accepts it (or we are stopping), then ack it."""
        job = outbox.parse(fields or {})
        if job is None:
            log.error("Dropping malformed outbox entry %s", entry_id)
            self._ack(entry_id)
            return
        job_id = job["id"]
        if self.r.exists(keys.delivered(job_id)):
            log.info("Job %s was already delivered; not sending it again", job_id)
            self._ack(entry_id)
            return
        attempt, unexpected, backoff = 0, 0, Backoff(self.backoff_base, self.backoff_max)
        while not self.stop.is_set():
            try:
                self.deliver(job)
                break
            except Undeliverable as e:
                log.error("Dropping job %s: %s", job_id, e)
                self._ack(entry_id)
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
                    return
                self._sleep(backoff.next())
        else:
            return  # stopping: the job stays pending and is delivered after the restart
        self._finish(entry_id, job_id)
        self.sent += 1
        log.info("Delivered %s", job_id)
        self._set_state("ok", f"{self.sent} sent")

    def _park(self, entry_id: str, job: dict, error: str) -> None:
        """Set a job aside (kept, counted in /pycam_status, queued again later) and go on."""
        def write():
            with self.r.pipeline(transaction=True) as p:
                p.rpush(keys.SLACK_PARKED, json.dumps({"job": job, "error": error, "time": time.time()}))
                p.xack(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP, entry_id)
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
            raw = self.r.lpop(keys.SLACK_PARKED)
            if raw is None:
                return
            try:
                outbox.enqueue(self.r, json.loads(raw)["job"])
            except (ValueError, KeyError, TypeError):
                log.error("Dropping an unreadable set-aside job")

    def _ack(self, entry_id: str) -> None:
        self.r.xack(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP, entry_id)

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

    def _finish(self, entry_id: str, job_id: str) -> None:
        """Mark the job delivered, then ack it (one transaction)."""
        def write():
            with self.r.pipeline(transaction=True) as p:
                p.set(keys.delivered(job_id), time.time(), ex=DELIVERED_TTL_S)
                p.delete(keys.uploaded(job_id), keys.inflight(job_id))
                p.xack(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP, entry_id)
                p.execute()
        self._persist(f"{job_id} as delivered", write)

    # ------------------------------------------------------------ delivery

    def deliver(self, job: dict) -> None:
        """Send one job; raises Transient, Permanent or Undeliverable."""
        kind = job["type"]
        if kind in ("response", "image_response") and not response_url_allowed(
                job.get("response_url"), self.settings.slack.api_url):
            raise Undeliverable("its response_url is not a Slack hooks URL")
        if kind == "alert":
            self._alert(job)
        elif kind == "message":
            if not isinstance(job.get("text"), str):
                raise Undeliverable("a message job needs text")
            self._post_once(job, text=job["text"])
        elif kind == "response":
            body = {"text": str(job.get("text") or "")}
            for name in ("blocks", "replace_original", "response_type"):
                if job.get(name) is not None:
                    body[name] = job[name]
            self._respond(job["response_url"], body)
        elif kind == "image_response":
            path = data_path(self.settings.data_dir, job.get("snapshot"))
            done = self._upload_once(job, path, title=str(job.get("text") or "Latest snapshot"))
            text = str(job.get("text") or "") if done else "That snapshot is no longer stored."
            self._respond(job["response_url"], {"text": text, "response_type": "ephemeral",
                                                "replace_original": False})

    def _channel(self) -> str:
        if not self.has_token or not self.settings.slack.channel_id:
            raise Permanent("SLACK_BOT_TOKEN or SLACK_CHANNEL_ID is not set")
        return self.settings.slack.channel_id

    def _alert(self, job: dict) -> None:
        event_id = job.get("event_id")
        if not events.is_event_id(event_id):
            raise Undeliverable("an alert job needs a valid event_id")
        text = messages.alert_text(self.settings.camera.name, job.get("time"), job.get("area"))
        path = data_path(self.settings.data_dir, job.get("snapshot"))
        uploaded = self._upload_once(job, path, title=text, filename=f"{event_id}.jpg")
        note = None if uploaded else "No snapshot: it could not be stored (disk full) or retention deleted it."
        self._post_once(job, text=text, blocks=messages.alert_blocks(text, event_id, job.get("training") is True, note))

    # ------------------------------------------------------------ never twice, even after a crash
    #
    # A step whose answer never came (the notifier was killed, or the network dropped, while Slack
    # was answering) may have happened. Before such a step is done again, Slack is asked:
    # conversations.history (scope channels:history, or groups:history for a private channel)
    # for a message carrying this job's id in its metadata, files.list (scope files:read) for the
    # file. Asking costs one call, and only after such a loss; a duplicate alert costs the owner's
    # trust in every alert. A reply through a response_url cannot be asked about: at worst the
    # person who typed a command sees its answer twice.

    def _in_flight(self, job_id: str) -> dict:
        return self.r.hgetall(keys.inflight(job_id))

    def _mark(self, job_id: str, step: str) -> None:
        def write():
            with self.r.pipeline(transaction=True) as p:
                p.hset(keys.inflight(job_id), step, time.time())
                p.expire(keys.inflight(job_id), DELIVERED_TTL_S)
                p.execute()
        self._persist(f"{job_id} in flight", write)

    def _step(self, job: dict, step: str, do, already) -> object:
        """do() once: when an earlier try of this step never got its answer, already(since) asks
        Slack first. The mark stays if the answer is lost again; a clear refusal removes it."""
        since = self._in_flight(job["id"]).get(step)
        if since is not None and self._ask(already, float(since)):
            log.info("Job %s: Slack already has its %s from an attempt whose answer was lost", job["id"], step)
            return None
        self._mark(job["id"], step)
        try:
            return do()
        except (Permanent, Undeliverable):
            self.r.hdel(keys.inflight(job["id"]), step)
            raise
        except Transient as e:
            if e.answered:
                self.r.hdel(keys.inflight(job["id"]), step)
            raise

    def _ask(self, already, since: float) -> bool:
        try:
            return already(since)
        except Permanent as e:     # e.g. missing_scope: cannot ask, so send (a duplicate at worst)
            log.warning("Cannot check Slack for an earlier delivery (%s); add the scopes in "
                        "slack-app-manifest.yml to rule out duplicates", e)
            return False

    def _post_once(self, job: dict, **message) -> None:
        channel = self._channel()
        tag = {"event_type": "pycam_job", "event_payload": {"job_id": job["id"]}}

        def already(since: float) -> bool:
            resp = self._api(self.client.conversations_history, channel=channel, oldest=f"{since - 60:.6f}",
                             limit=100, include_all_metadata=True)
            return any(((m.get("metadata") or {}).get("event_payload") or {}).get("job_id") == job["id"]
                       for m in resp.get("messages") or [])

        self._step(job, "post", lambda: self._api(self.client.chat_postMessage, channel=channel,
                                                  metadata=tag, **message), already)

    def _upload_once(self, job: dict, path: Path | None, title: str, filename: str | None = None) -> bool:
        """Upload the job's image unless an earlier attempt finished it; False when the file is gone."""
        if self.r.exists(keys.uploaded(job["id"])):
            return True
        if path is None or not path.is_file():
            log.warning("Job %s: snapshot %r is missing; sending the text alone", job["id"], job.get("snapshot"))
            return False
        try:
            data = path.read_bytes()
        except OSError as e:
            log.warning("Job %s: cannot read the snapshot (%s); sending the text alone", job["id"], e)
            return False
        channel = self._channel()
        filename = filename or f"{path.stem}-{job['id'][-8:]}{path.suffix}"   # names this job's upload

        def already(since: float) -> bool:
            resp = self._api(self.client.files_list, channel=channel, ts_from=int(since) - 60, count=100)
            return any(f.get("name") == filename for f in resp.get("files") or [])

        resp = self._step(job, "upload", lambda: self._api(self.client.files_upload_v2, channel=channel,
                                                           file=data, filename=filename, title=title), already)
        file_id = (resp.get("file") or {}).get("id") if resp is not None else None
        self._persist(f"the upload of {job['id']}", lambda: state.set_json(
            self.r, keys.uploaded(job["id"]), {"file_id": file_id}, ex=DELIVERED_TTL_S))
        return True

    def _api(self, method, **kwargs):
        """Call a WebClient method, sorting its failures into Transient and Permanent."""
        try:
            return method(**kwargs)
        except SlackApiError as e:
            status = e.response.status_code
            error = e.response.data.get("error") if isinstance(e.response.data, dict) else None
            if status == 429:
                raise Transient("rate limited (429)", _retry_after(e.response.headers), answered=True) from None
            if status >= 500 or error in TRANSIENT_ERRORS:
                raise Transient(f"HTTP {status} {error or ''}".strip(), answered=True) from None
            raise Permanent(error or f"HTTP {status}") from None
        except HTTPError as e:  # the upload step POSTs to its upload_url with urllib directly
            retry = _retry_after(dict(e.headers.items())) if e.code == 429 else None
            raise Transient(f"upload HTTP {e.code}", retry, answered=True) from None
        except SlackRequestError as e:
            raise Transient(f"upload failed: {str(e)[:200]}") from None
        except (URLError, OSError, TimeoutError, http.client.HTTPException) as e:
            raise Transient(f"network: {type(e).__name__}") from None

    def _respond(self, url: str, body: dict) -> None:
        """POST a reply to a response_url (no token needed: the URL itself is the credential)."""
        try:
            resp = WebhookClient(url, timeout=int(self.http_timeout), retry_handlers=[]).send_dict(body)
        except SlackRequestError as e:
            raise Undeliverable(f"bad response_url ({str(e)[:100]})") from None
        except (URLError, OSError, TimeoutError, http.client.HTTPException) as e:
            raise Transient(f"network: {type(e).__name__}") from None
        if resp.status_code == 200:
            return
        if resp.status_code == 429:
            raise Transient("rate limited (429)", _retry_after(resp.headers))
        if resp.status_code >= 500:
            raise Transient(f"HTTP {resp.status_code}")
        # 404 expired_url / used_url and friends: a reply that can never arrive (Slack allows
        # five replies within 30 minutes). Retrying would only block the alerts behind it.
        raise Undeliverable(f"Slack refused the reply: HTTP {resp.status_code} {resp.body[:100]}")


def main() -> None:
    settings = config.load_or_exit()
    utils.check_data_dir(settings.data_dir)
    utils.setup_logging(NAME, settings.log_level, settings.logs_dir)
    stop = utils.StopFlag().install()
    r = state.connect(settings.redis_url, NAME)
    notifier = Notifier(settings, r, stop=stop)
    if not notifier.has_token or not settings.slack.channel_id:
        log.error("SLACK_BOT_TOKEN and SLACK_CHANNEL_ID must be set; jobs stay queued until they are")
    log.info("Notifier started (channel %s, API %s)", settings.slack.channel_id, settings.slack.api_url)
    # Slack calls block in a worker thread, so SIGTERM ends the process within 2 s even while a
    # request hangs; the job in hand is not acked and is delivered after the restart.
    if not utils.run_in_worker(notifier.run, stop, "notifier"):
        sys.exit(1)
    log.info("Notifier stopped")


if __name__ == "__main__":
    main()
