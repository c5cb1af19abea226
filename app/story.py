"""An event's story: what its one Slack message shows, kept in Redis so the processes that learn
something about the event (the camera daemon: its verdict, its end, its clip; a button click: its
label) and the notifier that shows it agree, whoever restarts.

    story:<event id>   hash, kept STORY_TTL_S:
        f:<fact>   JSON, one per fact (FACTS), set by whoever learns it
        v          how many times the facts changed
        ts, channel, members   the notifier's: the message showing the event, and the events it
                               shows (JSON list: a burst shares one message)
        file, clip_file        the notifier's: Slack file ids of the snapshot and the clip
        shown      the value of v the message last showed (an update finding shown == v is done:
                   several changes queued together are shown by one chat.update)
        image_retry  set once the message was shown without its snapshot (Slack not ready) and
                   one more update was queued for it
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

STORY_TTL_S = 7 * 86400
# `box`: the camera whose own outbox carries the event's jobs (its images are on that camera Pi),
# None for the home's outbox.
FACTS = ("camera", "time", "area", "training", "snapshot", "verified", "verifier", "start_time", "end_time",
         "clip_s", "label", "labelled_by", "box")


def key(event_id: str) -> str:
    return "story:" + event_id


@dataclass
class Story:
    event_id: str
    facts: dict = field(default_factory=dict)
    version: int = 0
    ts: str | None = None
    channel: str | None = None
    members: list[str] = field(default_factory=list)
    file: str | None = None
    clip_file: str | None = None
    shown: int = 0


def tell(r, event_id: str, **facts) -> None:
    """Record facts about an event (r may be a pipeline, to do it with the job that shows them)."""
    unknown = set(facts) - set(FACTS)
    if unknown:
        raise ValueError(f"not a fact of an event: {sorted(unknown)}")
    r.hset(key(event_id), mapping={f"f:{k}": json.dumps(v) for k, v in facts.items()})
    r.hincrby(key(event_id), "v", 1)
    r.expire(key(event_id), STORY_TTL_S)


def facts_of(meta: dict, training: bool) -> dict:
    """The facts an event's metadata holds (what its first message shows)."""
    facts = {k: meta[k] for k in ("camera", "time", "area", "snapshot", "verified", "verifier", "start_time",
                                  "end_time", "clip_s") if meta.get(k) is not None}
    facts["training"] = training
    return facts


def read(r, event_id: str) -> Story:
    """The story (empty when nothing was told: an event from before stories, or expired)."""
    raw = r.hgetall(key(event_id))
    story = Story(event_id)
    for name, value in raw.items():
        if name.startswith("f:"):
            try:
                story.facts[name[2:]] = json.loads(value)
            except ValueError:
                continue
    story.version = _int(raw.get("v"))
    story.shown = _int(raw.get("shown"))
    story.ts, story.channel = raw.get("ts"), raw.get("channel")
    story.file, story.clip_file = raw.get("file"), raw.get("clip_file")
    try:
        members = json.loads(raw.get("members") or "[]")
    except ValueError:
        members = []
    story.members = [m for m in members if isinstance(m, str)] or [event_id]
    return story


def posted(r, event_ids: list[str], channel: str, ts: str) -> None:
    """The notifier posted the message showing these events."""
    with r.pipeline(transaction=True) as p:
        for event_id in event_ids:
            p.hset(key(event_id), mapping={"ts": ts, "channel": channel, "members": json.dumps(event_ids)})
            p.expire(key(event_id), STORY_TTL_S)
        p.execute()


def note(r, event_id: str, **fields) -> None:
    """The notifier's own fields (file, clip_file, shown)."""
    r.hset(key(event_id), mapping={k: str(v) for k, v in fields.items()})
    r.expire(key(event_id), STORY_TTL_S)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
