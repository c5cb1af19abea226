"""Publishing recorded events to Redis: the `events` stream, `latest_image`, the event's story
(app/story.py) and its Slack alert job, in one transaction per event, oldest first; then what the
event does next (its end, its clip) as changes to its story and jobs that show them. While Redis is
down all of it waits here, in order (and the events on disk); after a restart, events that reached
the disk but not Redis are found and published once.
"""
from __future__ import annotations

import json
import logging

from collections import deque

from app import keys, outbox, story
from app.camera.control import RedisLink

log = logging.getLogger("security_system")


class Publisher:
    """Publishes recorded events in order: the events stream, latest image and Slack job, in one
    transaction per event; a restart finds events that reached the disk but not Redis."""

    def __init__(self, link: RedisLink, stream_maxlen: int, switches, on_published, quiet=lambda when: None,
                 camera: str | None = None, own_outbox: bool = False):
        self.link = link
        self.camera = camera                 # this daemon's name: its own latest-snapshot key
        # On a camera Pi (role: camera) the images stay here: the event's jobs go to this camera's
        # own outbox, which the notifier on this Pi sends; the story and latest snapshot say so,
        # so the hub queues what shows them (a label, /pycam_latest) there too.
        self.box_name = camera if own_outbox else None
        self.box = outbox.box(self.box_name)
        self.stream_maxlen = stream_maxlen
        self.switches = switches             # () -> Switches: notifications and training as they are now
        self.quiet = quiet                   # (event time) -> the quiet-hours window open then, or None
        self.on_published = on_published     # called with each meta once it is in Redis
        self.pending: list[tuple[str, dict]] = []   # ("event" | "end" | "clip", meta), not yet in Redis
        self.published: deque[str] = deque(maxlen=64)  # the ids of the last events published

    def add(self, meta: dict) -> None:
        """Queue an event whose verdict is known, and publish what can be published now."""
        self.pending.append(("event", meta))
        self.flush()

    def changed(self, meta: dict, kind: str) -> None:
        """The event ended ("end") or its clip is written ("clip"): tell Slack after the event
        itself. An event not yet published carries the change in its metadata (the same dict)."""
        if meta["id"] in self.published:
            self.pending.append((kind, meta))
            self.flush()

    def flush(self) -> None:
        """Publish what is pending, oldest first, until Redis fails."""
        while self.pending:
            kind, meta = self.pending[0]
            publish = self._publish if kind == "event" else self._publish_change
            if self.link.call(publish, meta, kind) is None:
                return
            self.pending.pop(0)
            if kind == "event":
                self.published.append(meta["id"])
                self.on_published(meta)

    def waiting(self) -> int:
        """Events recorded and not yet in Redis."""
        return sum(1 for kind, _ in self.pending if kind == "event")

    def _publish(self, meta: dict, kind: str = "event") -> bool:
        r = self.link.r
        if r.exists(keys.event_published(meta["id"])):
            return True
        switches = self.switches()
        # Quiet hours: recorded and published (it is in /pycam_status and the stream), not sent.
        meta["quiet"] = self.quiet(meta["time"])
        notify = switches.notifications and meta.get("verified") is not False and not meta["quiet"]
        meta["notified"] = notify
        pipe = r.pipeline(transaction=True)
        pipe.xadd(keys.EVENTS, {"event": json.dumps(meta)}, maxlen=self.stream_maxlen, approximate=True)
        if meta.get("snapshot"):   # none when the disk refused it (the alert goes out as text)
            latest = json.dumps({"event_id": meta["id"], "path": meta["snapshot"], "time": meta["time"],
                                 "camera": meta.get("camera"), "box": self.box_name})
            pipe.set(keys.LATEST_IMAGE, latest)                 # the home's newest
            if self.camera:
                pipe.set(keys.camera(self.camera, "latest"), latest)
        if meta.get("verified") is False:
            pipe.incr(keys.UNVERIFIED_COUNT)
        if notify:
            story.tell(pipe, meta["id"], **story.facts_of(meta, switches.training), box=self.box_name)
            outbox.enqueue(pipe, outbox.make_job(
                "alert", f"alert:{meta['id']}", event_id=meta["id"], time=meta["time"], area=meta["area"],
                snapshot=meta["snapshot"], boxes=meta["boxes"], training=switches.training), self.box)
        pipe.set(keys.event_published(meta["id"]), 1, ex=30 * 86400)
        if notify and meta.get("clip"):     # written while the event waited for its verdict
            self._queue_clip(pipe, meta)
        pipe.execute()
        return True

    def _publish_change(self, meta: dict, kind: str) -> bool:
        """An event's end or clip, for its Slack message (nothing when it was not sent)."""
        if not meta.get("notified"):
            return True
        pipe = self.link.r.pipeline(transaction=True)
        if kind == "end":
            story.tell(pipe, meta["id"], end_time=meta.get("end_time"))
            outbox.enqueue(pipe, outbox.make_job("update", event_id=meta["id"]), self.box)
        elif meta.get("clip"):
            self._queue_clip(pipe, meta)
        pipe.execute()
        return True

    def _queue_clip(self, pipe, meta: dict) -> None:
        story.tell(pipe, meta["id"], clip_s=meta.get("clip_s"))
        outbox.enqueue(pipe, outbox.make_job("clip", f"clip:{meta['id']}", event_id=meta["id"],
                                             clip=meta["clip"], seconds=meta.get("clip_s")), self.box)

    def recover(self, recent: list[dict], busy: set[str] = frozenset()) -> None:
        """After a restart: queue the events that reached the disk but not Redis (not those in
        `busy`, still being verified: they are published with their verdict)."""
        known = {m["id"] for k, m in self.pending if k == "event"} | set(busy)
        candidates = [m for m in recent if m["id"] not in known]
        # Redis gone again meanwhile: queue them all; publishing checks each one first anyway.
        found = self.link.call(unpublished, self.link.r, candidates)
        for meta in candidates if found is None else found:
            log.info("Publishing event %s recorded before a restart", meta["id"])
            self.pending.append(("event", meta))


def unpublished(r, metas: list[dict]) -> list[dict]:
    """The events among `metas` that never reached Redis (one round trip)."""
    with r.pipeline(transaction=False) as p:
        for meta in metas:
            p.exists(keys.event_published(meta["id"]))
        published = p.execute()
    return [m for m, done in zip(metas, published) if not done]
