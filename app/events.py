"""The event store on disk: ids, paths, atomic snapshot + metadata writes, retention.

Layout under the data dir (paths in metadata are relative to it):
    events/<YYYY-MM-DD>/<event id>.jpg        annotated snapshot (boxes drawn), what Slack shows
    events/<YYYY-MM-DD>/<event id>.clean.jpg  the same frame without drawing (for training)
    events/<YYYY-MM-DD>/<event id>.json       metadata, written last: its presence means complete
"""
from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

EVENT_ID_RE = re.compile(r"^(\d{8})-(\d{6})-([0-9a-f]{6})$")


def new_event_id(when: float | None = None) -> str:
    """A sortable, filename-safe id: 20261124-015300-a1b2c3 (local time of the trigger)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when if when is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def is_event_id(value: object) -> bool:
    """True only for a well-formed event id (so it can never name a path outside the store)."""
    return isinstance(value, str) and EVENT_ID_RE.match(value) is not None


def event_dir(data_dir: Path, event_id: str) -> Path:
    """The day folder an event's files live in (derived from the id, so no lookup is needed)."""
    m = EVENT_ID_RE.match(event_id)
    if m is None:
        raise ValueError("not an event id")
    day = m.group(1)
    return Path(data_dir) / "events" / f"{day[:4]}-{day[4:6]}-{day[6:]}"


def event_files(data_dir: Path, event_id: str) -> dict[str, Path]:
    """Paths of an event's snapshot, clean frame and metadata."""
    d = event_dir(data_dir, event_id)
    return {"snapshot": d / f"{event_id}.jpg", "clean": d / f"{event_id}.clean.jpg",
            "meta": d / f"{event_id}.json"}
