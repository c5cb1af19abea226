"""The event store on disk: ids, paths, atomic snapshot + metadata writes, retention.

Layout under the data dir (paths in metadata are relative to it):
    events/<YYYY-MM-DD>/<event id>.jpg        annotated snapshot (boxes drawn), what Slack shows
    events/<YYYY-MM-DD>/<event id>.clean.jpg  the same frame without drawing (for training)
    events/<YYYY-MM-DD>/<event id>.json       metadata, written last: its presence means complete
"""
from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from app.utils import atomic_write_bytes, atomic_write_json, is_temp_file, read_json_file

EVENT_ID_RE = re.compile(r"^(\d{8})-(\d{6})-([0-9a-f]{6})$")


def new_event_id(when: float | None = None) -> str:
    """A sortable, filename-safe id: 20261124-015300-a1b2c3 (local time of the trigger)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when if when is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def is_event_id(value: object) -> bool:
    """True only for a well-formed event id (so it can never name a path outside the store)."""
    return isinstance(value, str) and EVENT_ID_RE.match(value) is not None


def events_root(data_dir: Path) -> Path:
    """The events folder under the data dir (one folder per day inside)."""
    return Path(data_dir) / "events"


def event_dir(data_dir: Path, event_id: str) -> Path:
    """The day folder an event's files live in (derived from the id, so no lookup is needed)."""
    m = EVENT_ID_RE.match(event_id)
    if m is None:
        raise ValueError("not an event id")
    day = m.group(1)
    return events_root(data_dir) / f"{day[:4]}-{day[4:6]}-{day[6:]}"


def event_files(data_dir: Path, event_id: str) -> dict[str, Path]:
    """Paths of an event's snapshot, clean frame and metadata."""
    d = event_dir(data_dir, event_id)
    return {"snapshot": d / f"{event_id}.jpg", "clean": d / f"{event_id}.clean.jpg",
            "meta": d / f"{event_id}.json"}


def complete_ids(data_dir: Path) -> list[str]:
    """Ids of events whose metadata file exists (it is written last: the event is complete), sorted."""
    ids = []
    try:
        days = sorted(d.path for d in os.scandir(events_root(data_dir)) if d.is_dir())
    except FileNotFoundError:
        return ids
    for day in days:
        try:
            names = os.listdir(day)
        except FileNotFoundError:
            continue   # removed by the daemon's retention meanwhile
        for name in names:
            stem = name[:-5]
            if name.endswith(".json") and is_event_id(stem):
                ids.append(stem)
    return sorted(ids)


class EventStore:
    """Writes events to disk atomically (images first, metadata last) and enforces retention."""

    def __init__(self, data_dir: Path, cfg):
        self.data_dir = Path(data_dir)
        self.root = events_root(self.data_dir)
        self.cfg = cfg

    def save(self, meta: dict, snapshot_jpg: bytes, clean_jpg: bytes) -> dict:
        """Write an event's two JPEGs then its metadata; returns meta with relative paths filled in."""
        files = event_files(self.data_dir, meta["id"])
        meta = dict(meta, snapshot=str(files["snapshot"].relative_to(self.data_dir)),
                    clean=str(files["clean"].relative_to(self.data_dir)))
        atomic_write_bytes(files["snapshot"], snapshot_jpg)
        atomic_write_bytes(files["clean"], clean_jpg)
        atomic_write_json(files["meta"], meta)
        return meta

    def update(self, meta: dict) -> None:
        """Rewrite an event's metadata (its end, its verdict)."""
        atomic_write_json(event_files(self.data_dir, meta["id"])["meta"], meta)

    def load(self, event_id: str) -> dict | None:
        """An event's metadata, or None when unknown (or not a valid id)."""
        if not is_event_id(event_id):
            return None
        return read_json_file(event_files(self.data_dir, event_id)["meta"])

    def recent(self, days: int = 2) -> list[dict]:
        """Metadata of the events of the last `days` day folders, oldest first."""
        if not self.root.is_dir():
            return []
        metas = []
        for day in sorted(p for p in self.root.iterdir() if p.is_dir())[-days:]:
            for f in sorted(day.glob("*.json")):
                if not is_temp_file(f):
                    meta = read_json_file(f)
                    if isinstance(meta, dict) and is_event_id(meta.get("id")):
                        metas.append(meta)
        return metas

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete events older than retention_days, then the oldest while over max_total_mb.

        Returns how many events were deleted. Works per event (all of its files together).
        """
        if not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        events = []  # (mtime, size, [files]) per event id, oldest first
        for day in sorted(p for p in self.root.iterdir() if p.is_dir()):
            groups: dict[str, list[Path]] = {}
            for f in day.iterdir():
                if f.is_file():
                    groups.setdefault(f.name.split(".")[0], []).append(f)
            for event_id in sorted(groups):
                stats = [f.stat() for f in groups[event_id]]
                events.append((min(s.st_mtime for s in stats), sum(s.st_size for s in stats), groups[event_id]))
        total = sum(size for _, size, _ in events)
        limit = self.cfg.max_total_mb * 1e6
        cutoff = now - self.cfg.retention_days * 86400
        deleted = 0
        for mtime, size, files in events:
            if mtime >= cutoff and total <= limit:
                break
            for f in files:
                f.unlink(missing_ok=True)
            total -= size
            deleted += 1
        for day in self.root.iterdir():
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
        return deleted
