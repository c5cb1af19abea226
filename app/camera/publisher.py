"""Publishing recorded events to Redis: the `events` stream, `latest_image` and the Slack alert job,
in one transaction per event, oldest first. While Redis is down the events wait here (and on
disk); after a restart, events that reached the disk but not Redis are found and published once.
"""
from __future__ import annotations

import json
import logging

from app import keys, outbox
from app.camera.control import RedisLink

log = logging.getLogger("security_system")


class Publisher:
    """Publishes recorded events in order: the events stream, latest image and Slack job, in one
    transaction per event; a restart finds events that reached the disk but not Redis."""

    def __init__(self, link: RedisLink, stream_maxlen: int, switches, on_published, quiet=lambda when: None):
        self.link = link
        self.stream_maxlen = stream_maxlen
        self.switches = switches             # () -> Switches: notifications and training as they are now
        self.quiet = quiet                   # (event time) -> the quiet-hours window open then, or None
        self.on_published = on_published     # called with each meta once it is in Redis
        self.pending: list[dict] = []        # recorded, not yet published

    def add(self, meta: dict) -> None:
        """Queue an event whose verdict is known, and publish what can be published now."""
        self.pending.append(meta)
        self.flush()

    def flush(self) -> None:
        """Publish the pending events, oldest first, until Redis fails."""
        while self.pending:
            meta = self.pending[0]
            if self.link.call(self._publish, meta) is None:
                return
            self.pending.pop(0)
            self.on_published(meta)

    def _publish(self, meta: dict) -> bool:
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
            pipe.set(keys.LATEST_IMAGE, json.dumps({"event_id": meta["id"], "path": meta["snapshot"],
                                                    "time": meta["time"]}))
        if meta.get("verified") is False:
            pipe.incr(keys.UNVERIFIED_COUNT)
        if notify:
            outbox.enqueue(pipe, outbox.make_job(
                "alert", f"alert:{meta['id']}", event_id=meta["id"], time=meta["time"],
                area=meta["area"], snapshot=meta["snapshot"], boxes=meta["boxes"], training=switches.training))
        pipe.set(keys.event_published(meta["id"]), 1, ex=30 * 86400)
        pipe.execute()
        return True

    def recover(self, recent: list[dict], busy: set[str] = frozenset()) -> None:
        """After a restart: queue the events that reached the disk but not Redis (not those in
        `busy`, still being verified: they are published with their verdict)."""
        known = {m["id"] for m in self.pending} | set(busy)
        candidates = [m for m in recent if m["id"] not in known]
        # Redis gone again meanwhile: queue them all; publishing checks each one first anyway.
        found = self.link.call(unpublished, self.link.r, candidates)
        for meta in candidates if found is None else found:
            log.info("Publishing event %s recorded before a restart", meta["id"])
            self.pending.append(meta)


def unpublished(r, metas: list[dict]) -> list[dict]:
    """The events among `metas` that never reached Redis (one round trip)."""
    with r.pipeline(transaction=False) as p:
        for meta in metas:
            p.exists(keys.event_published(meta["id"]))
        published = p.execute()
    return [m for m, done in zip(metas, published) if not done]
