"""Jobs for the notifier: the only way any process asks for something to be sent to Slack.

Each job is one entry on an outbox stream with a single field `job` holding JSON. The home's
outbox is `slack:outbox`. A camera Pi whose images stay on it (role: camera) queues its events'
jobs on its own, `camera:<name>:slack:outbox`, which the notifier on that Pi delivers: a Box names
an outbox and the notifier's marks for it. Each event's jobs go to one box, in order.
Every job has an `id` (unique and stable: the notifier sends each id at most once) and a `type`:

- `alert`: {event_id, time, area, snapshot (path relative to the data dir), boxes, training}
  -> the event's one message (chat.postMessage: camera, time, area, and Occupied / Unoccupied
  buttons carrying the event id when `training` is true), then its snapshot into the message's
  thread, then chat.update to show the snapshot in the message. What the message shows is the
  event's story (app/story.py); alerts queued together (a burst) share one message.
- `update`: {event_id} -> chat.update of the event's message with its story as it is now (its
  end, its label); nothing when the message already shows it.
- `clip`: {event_id, clip (path relative to the data dir), seconds} -> the clip into the event's
  message's thread, then the message says so.
- `message`: {text} -> chat.postMessage into the channel (presence changes and notices).
- `response`: {response_url, text, blocks?, replace_original?} -> POST to a slash command's or a
  button's response_url.
- `image_response`: {response_url, snapshot, text} -> upload the snapshot into the channel and
  tell the user through response_url (the slow half of /pycam_latest).
- `live_image`: {response_url, text} -> ask the camera for its frame now (app/live.py), upload it
  into the channel and tell the user (the slow half of /pycam_live); the frame never touches disk.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from app import keys

JOB_TYPES = ("alert", "update", "clip", "message", "response", "image_response", "live_image")
OUTBOX_MAXLEN = 10000


@dataclass(frozen=True)
class Box:
    """An outbox and the notifier's marks for its jobs (delivered, uploaded, in flight, set aside)."""
    prefix: str = keys.outbox_prefix(None)
    group: str = keys.SLACK_OUTBOX_GROUP

    @property
    def stream(self) -> str:
        return self.prefix + "outbox"

    @property
    def parked(self) -> str:
        return self.prefix + "parked"

    def delivered(self, job_id: str) -> str:
        return f"{self.prefix}delivered:{job_id}"

    def uploaded(self, job_id: str) -> str:
        return f"{self.prefix}uploaded:{job_id}"

    def inflight(self, job_id: str) -> str:
        return f"{self.prefix}inflight:{job_id}"


HOME = Box()
CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


def box(camera: object = None) -> Box:
    """The home's outbox, or the own outbox of the camera named (a name read back from Redis is
    checked: anything else is the home's)."""
    if isinstance(camera, str) and CAMERA_NAME.fullmatch(camera):
        return Box(keys.outbox_prefix(camera))
    return HOME


def make_job(job_type: str, job_id: str | None = None, **fields: Any) -> dict:
    """A job dict with a fresh id unless one is given (alerts use 'alert:<event id>')."""
    if job_type not in JOB_TYPES:
        raise ValueError(f"unknown job type {job_type!r}")
    return {"id": job_id or f"{job_type}:{uuid.uuid4().hex}", "type": job_type, **fields}


def enqueue(r: redis.Redis | Any, job: dict, to: Box = HOME) -> None:
    """Append a job to an outbox (r may be a pipeline, to queue it atomically with other writes)."""
    r.xadd(to.stream, {"job": json.dumps(job)}, maxlen=OUTBOX_MAXLEN, approximate=True)


def parse(fields: dict) -> dict | None:
    """The job inside a stream entry, or None when it is not valid JSON with an id and a known type."""
    try:
        job = json.loads(fields.get("job", ""))
    except (TypeError, ValueError):
        return None
    if not isinstance(job, dict) or job.get("type") not in JOB_TYPES or not job.get("id"):
        return None
    return job
