"""How one outbox job reaches Slack: the Web API calls, their errors sorted into what to do next,
and the checks that make every step happen once even when an answer is lost.

The notifier (app/slack/notifier.py) owns the queue and the retries; this module owns the calls.
"""
from __future__ import annotations

import http.client
import logging
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

from app import keys, state
from app.slack import messages
from app.storage import events

log = logging.getLogger("notifier")

DELIVERED_TTL_S = 7 * 86400
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
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


class Delivery:
    """Sends jobs with one WebClient. `persist(what, write)` records what Slack already accepted
    (the notifier's, which rides out a Redis outage)."""

    def __init__(self, settings, r, client: WebClient | None, persist, http_timeout: float = 10):
        self.settings = settings
        self.r = r
        token = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else None
        # No retry handlers: every retry decision (and Retry-After) is made in one place, the
        # notifier's loop, where the stop flag is honoured.
        self.client = client or WebClient(token=token, base_url=settings.slack.api_url,
                                          timeout=int(http_timeout), retry_handlers=[])
        self.has_token = bool(token)
        self.http_timeout = http_timeout
        self._persist = persist

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
