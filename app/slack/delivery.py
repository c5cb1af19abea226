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

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

from app import live, outbox, state, story
from app.slack import messages
from app.storage import events, labels

log = logging.getLogger("notifier")

DELIVERED_TTL_S = 7 * 86400
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# ok:false errors that pass by themselves; any other refusal needs the owner (token, channel...).
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout"}
# chat.update refusals that no retry can mend (the owner deleted the message...): the update is
# dropped rather than block the alerts behind it.
STALE_MESSAGE = {"message_not_found", "cant_update_message", "edit_window_closed", "msg_too_long",
                 "no_text", "invalid_blocks"}
POST_INTERVAL_S = 1.0   # Slack takes about one message a second in a channel: posts are spaced so


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

    def __init__(self, settings, r, client: WebClient | None, persist, http_timeout: float = 10,
                 box: outbox.Box = outbox.HOME):
        self.settings = settings
        self.r = r
        self.box = box                          # the outbox it delivers: its marks, its retries
        token = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else None
        # No retry handlers: every retry decision (and Retry-After) is made in one place, the
        # notifier's loop, where the stop flag is honoured.
        self.client = client or WebClient(token=token, base_url=settings.slack.api_url,
                                          timeout=int(http_timeout), retry_handlers=[])
        self.has_token = bool(token)
        self.http_timeout = http_timeout
        self._persist = persist
        self.last_post = 0.0
        self.raw: redis.Redis | None = None     # keeps bytes, for the live frame

    def deliver(self, job: dict, followers: list[dict] = ()) -> None:
        """Send one job (an alert with the alerts queued behind it: one message); raises
        Transient, Permanent or Undeliverable."""
        kind = job["type"]
        if kind in ("response", "image_response", "live_image") and not response_url_allowed(
                job.get("response_url"), self.settings.slack.api_url):
            raise Undeliverable("its response_url is not a Slack hooks URL")
        if kind in ("alert", "update", "clip") and not events.is_event_id(job.get("event_id")):
            raise Undeliverable(f"an {kind} job needs a valid event_id")
        if kind == "alert":
            self._alert(job, list(followers))
        elif kind == "update":
            self._update(job)
        elif kind == "clip":
            self._clip(job)
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
            done = self._upload_once(job, path, title=str(job.get("text") or "Latest snapshot")) is not None
            text = str(job.get("text") or "") if done else "That snapshot is no longer stored."
            self._respond(job["response_url"], {"text": text, "response_type": "ephemeral",
                                                "replace_original": False})
        elif kind == "live_image":
            frame = self._live_frame()
            if frame is None:
                text = ("The camera sends no picture now: it is disarmed (and `web.live_when_disarmed` is off), "
                        "lost, or stopped (see /pycam_status).")
            else:
                taken, jpeg = frame
                title = f"{job.get('text') or 'Live'} ({time.strftime('%H:%M:%S', time.localtime(taken))})"
                self._upload_once(job, None, title=title, filename=f"live-{int(taken)}.jpg", data=jpeg)
                text = title
            self._respond(job["response_url"], {"text": text, "response_type": "ephemeral",
                                                "replace_original": False})

    def post_wait(self) -> float:
        """Seconds before the next post may go (Slack's rate of about one a second)."""
        return max(0.0, self.last_post + POST_INTERVAL_S - time.monotonic())

    def _live_frame(self, wait_s: float = 4.0) -> tuple[float, bytes] | None:
        """A frame from the camera now (it sends while a viewer is registered), or None."""
        if self.raw is None:
            self.raw = redis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        return live.one_frame(self.r, self.raw, wait_s)

    def _channel(self) -> str:
        if not self.has_token or not self.settings.slack.channel_id:
            raise Permanent("SLACK_BOT_TOKEN or SLACK_CHANNEL_ID is not set")
        return self.settings.slack.channel_id

    # ------------------------------------------------------------ an event's one message
    #
    # Posted first (text and buttons: the phone buzzes at once), then the snapshot goes into its
    # thread and the message is updated to show it; later the event's end, its clip (into the
    # thread) and its label update the same message. What it shows is the event's story in Redis
    # (app/story.py), so each update shows everything known, and updates queued together are
    # shown by one chat.update.

    def _alert(self, job: dict, followers: list[dict]) -> None:
        jobs = [job] + followers
        head = story.read(self.r, job["event_id"])
        channel = self._channel()
        if head.ts is None:                 # a retry after the post finds its ts here
            ids = [j["event_id"] for j in jobs]
            stories = [story.read(self.r, i) for i in ids]
            text, blocks = messages.event_message(self.settings.camera.name, self._shown(stories, jobs), images=False)
            found = self._post_once(job, text=text, blocks=blocks, group=[j["id"] for j in followers], event_ids=ids)
            ts = found.get("ts") if found is not None else None
            if not ts:
                raise Transient("chat.postMessage gave no ts")
            # Found again after a lost answer: the message names the events it shows.
            payload = (found.get("metadata") or {}).get("event_payload") or {}
            shown = [i for i in payload.get("events") or [] if events.is_event_id(i)]
            members = (shown + [i for i in ids if i not in shown])[:messages.MAX_SHOWN]
            self._persist(f"the message of {job['id']}", lambda: story.posted(self.r, members, channel, ts))
            head = story.read(self.r, job["event_id"])
        by_id = {j["event_id"]: j for j in jobs}
        for event_id in head.members:      # each snapshot into the thread (once)
            told = story.read(self.r, event_id)
            if told.file:
                continue
            j = by_id.get(event_id, {})
            path = data_path(self.settings.data_dir, told.facts.get("snapshot", j.get("snapshot")))
            title = messages.alert_text(told.facts.get("camera") or self.settings.camera.name,
                                        told.facts.get("time", j.get("time")), told.facts.get("area", j.get("area")))
            file_id = self._upload_once(job, path, title=title, filename=f"{event_id}.jpg", thread_ts=head.ts,
                                        key=f"{job['id']}:{event_id}")
            if file_id:
                self._persist(f"the snapshot of {event_id}", lambda: story.note(self.r, event_id, file=file_id))
            if told.facts.get("clip_s") is not None:   # an alert sent late (set aside) brings its clip
                self._upload_clip(job, event_id, told)
        self._show(head.members, jobs)

    def _update(self, job: dict) -> None:
        if job.get("label") is not None:
            self._keep_label(job)
        told = story.read(self.r, job["event_id"])
        if told.ts is None or told.shown >= told.version:
            return                          # never posted (quiet hours...), or shown already
        self._show(told.members)

    def _keep_label(self, job: dict) -> None:
        """A label clicked on the hub for an event of this camera Pi: its labelled copy for
        training is made here, where the event's files are (the hub only has its story)."""
        try:
            labels.record_label(self.settings.data_dir, job["event_id"], job["label"],
                                str(job.get("user_id") or ""), str(job.get("user_name") or ""))
        except ValueError as e:
            raise Undeliverable(f"a bad label ({e})") from None
        except FileNotFoundError:
            log.info("Event %s is no longer stored here; its label is shown, not kept", job["event_id"])

    def _clip(self, job: dict) -> None:
        told = story.read(self.r, job["event_id"])
        if told.ts is None:
            return                          # no message (yet: an alert set aside brings its clip itself)
        self._upload_clip(job, job["event_id"], told)
        self._show(told.members)

    def _upload_clip(self, job: dict, event_id: str, told: story.Story) -> None:
        """The event's clip into its message's thread, once (found from the event id alone)."""
        if told.clip_file:
            return
        files = events.event_files(self.settings.data_dir, event_id)
        path = next((p for p in (files["clip"], files["clip_gif"]) if p.is_file()), None)
        if path is None:
            log.info("Job %s: the clip of %s is not stored", job["id"], event_id)
            return
        title = "Clip: " + messages.alert_text(told.facts.get("camera") or self.settings.camera.name,
                                               told.facts.get("time"), told.facts.get("area"))
        file_id = self._upload_once(job, path, title=title, filename=path.name, thread_ts=told.ts,
                                    key=f"clip:{event_id}")
        if file_id:
            self._persist(f"the clip of {event_id}", lambda: story.note(self.r, event_id, clip_file=file_id))

    def _shown(self, stories: list[story.Story], jobs: list[dict] = ()) -> list[tuple[str, dict, dict]]:
        """What the message shows of each event: its story (or, for an alert queued before
        stories, the job's own fields)."""
        by_id = {j["event_id"]: j for j in jobs}
        shown = []
        for told in stories:
            event_id = told.event_id
            facts = told.facts or {k: v for k, v in by_id.get(event_id, {}).items()
                                   if k in ("time", "area", "training", "snapshot")}
            path = data_path(self.settings.data_dir, facts.get("snapshot"))
            stored = bool(told.file) or (path is not None and path.is_file())
            shown.append((event_id, facts, {"snapshot": told.file, "clip": told.clip_file, "stored": stored}))
        return shown

    def _show(self, event_ids: list[str], jobs: list[dict] = ()) -> None:
        """chat.update the message of these events with all their stories hold now."""
        stories = [story.read(self.r, i) for i in event_ids]
        first = stories[0]
        versions = {t.event_id: t.version for t in stories}
        shown = self._shown(stories, jobs)
        for images in (True, False):
            text, blocks = messages.event_message(self.settings.camera.name, shown, images=images)
            try:
                self._api(self.client.chat_update, channel=first.channel, ts=first.ts, text=text, blocks=blocks)
                break
            except Permanent as e:
                if str(e) == "invalid_blocks" and images:
                    # Slack has not finished with the snapshot: the thread shows it meanwhile, and
                    # one more update, queued behind what waits now, tries again.
                    log.info("Slack cannot show the snapshot in the message yet; updating without it")
                    if not self.r.hexists(story.key(event_ids[0]), "image_retry"):
                        story.note(self.r, event_ids[0], image_retry=1)
                        outbox.enqueue(self.r, outbox.make_job("update", event_id=event_ids[0]), self.box)
                        versions = {}            # not shown yet: that update shows it
                    continue
                if str(e) in STALE_MESSAGE:
                    log.warning("Cannot update the message of %s (%s); leaving it as it is", event_ids[0], e)
                    break
                raise
        self._persist("what the message shows", lambda: [story.note(self.r, i, shown=v) for i, v in versions.items()])

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
        return self.r.hgetall(self.box.inflight(job_id))

    def _mark(self, job_id: str, step: str) -> None:
        def write():
            with self.r.pipeline(transaction=True) as p:
                p.hset(self.box.inflight(job_id), step, time.time())
                p.expire(self.box.inflight(job_id), DELIVERED_TTL_S)
                p.execute()
        self._persist(f"{job_id} in flight", write)

    def _step(self, job_id: str, step: str, do, already) -> object:
        """do() once: when an earlier try of this step never got its answer, already(since) asks
        Slack first (and what it found is returned). The mark stays if the answer is lost again;
        a clear refusal removes it."""
        since = self._in_flight(job_id).get(step)
        found = self._ask(already, float(since)) if since is not None else None
        if found:
            log.info("Job %s: Slack already has its %s from an attempt whose answer was lost", job_id, step)
            return found
        self._mark(job_id, step)
        try:
            return do()
        except (Permanent, Undeliverable):
            self.r.hdel(self.box.inflight(job_id), step)
            raise
        except Transient as e:
            if e.answered:
                self.r.hdel(self.box.inflight(job_id), step)
            raise

    def _ask(self, already, since: float):
        try:
            return already(since)
        except Permanent as e:     # e.g. missing_scope: cannot ask, so send (a duplicate at worst)
            log.warning("Cannot check Slack for an earlier delivery (%s); add the scopes in "
                        "slack-app-manifest.yml to rule out duplicates", e)
            return None

    def _post_once(self, job: dict, group: list[str] = (), event_ids: list[str] = (), **message) -> dict | None:
        """Post unless an earlier attempt did; the message (its ts) either way. `group`: the ids of
        other jobs this message delivers too (a burst of alerts), `event_ids`: the events it shows."""
        channel = self._channel()
        ids = [job["id"], *group]
        payload = {"job_id": job["id"]}
        if group:
            payload.update(group=list(group), events=list(event_ids))
        tag = {"event_type": "pycam_job", "event_payload": payload}

        def already(since: float) -> dict | None:
            resp = self._api(self.client.conversations_history, channel=channel, oldest=f"{since - 60:.6f}",
                             limit=100, include_all_metadata=True)
            for m in resp.get("messages") or []:
                payload = (m.get("metadata") or {}).get("event_payload") or {}
                if payload.get("job_id") in ids or set(ids) & set(payload.get("group") or []):
                    return m
            return None

        def post():
            for other in group:       # each of them, alone after a restart, asks Slack first too
                self._mark(other, "post")
            time.sleep(self.post_wait())
            try:
                return self._api(self.client.chat_postMessage, channel=channel, metadata=tag, **message)
            finally:
                self.last_post = time.monotonic()

        return self._step(job["id"], "post", post, already)

    def _upload_once(self, job: dict, path: Path | None, title: str, filename: str | None = None,
                     thread_ts: str | None = None, key: str | None = None, data: bytes | None = None) -> str | None:
        """Upload a file of the job (into a message's thread when `thread_ts` is given) unless an
        earlier attempt finished it; its Slack file id ("" when Slack did not say), None when the
        file is gone. `key` names the upload when a job has several."""
        key = key or job["id"]
        done = state.get_json(self.r, self.box.uploaded(key))
        if isinstance(done, dict):
            return done.get("file_id") or ""
        if data is None:
            if path is None or not path.is_file():
                log.warning("Job %s: %r is missing; sending the text alone", job["id"], path.name if path else None)
                return None
            try:
                data = path.read_bytes()
            except OSError as e:
                log.warning("Job %s: cannot read %s (%s); sending the text alone", job["id"], path.name, e)
                return None
            filename = filename or f"{path.stem}-{job['id'][-8:]}{path.suffix}"   # names this job's upload
        channel = self._channel()
        where = {"thread_ts": thread_ts} if thread_ts else {}

        def already(since: float) -> dict | None:
            resp = self._api(self.client.files_list, channel=channel, ts_from=int(since) - 60, count=100)
            return next((f for f in resp.get("files") or [] if f.get("name") == filename), None)

        def upload() -> dict:
            resp = self._api(self.client.files_upload_v2, channel=channel, file=data, filename=filename,
                             title=title, **where)
            return resp.get("file") or {}

        file_id = (self._step(key, "upload", upload, already) or {}).get("id") or ""
        self._persist(f"the upload of {key}", lambda: state.set_json(
            self.r, self.box.uploaded(key), {"file_id": file_id}, ex=DELIVERED_TTL_S))
        return file_id

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
