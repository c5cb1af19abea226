"""The events page's rows: newest first, one page at a time, from the `events` stream (its ids are
times, so a day is a range and paging a cursor: the cost is a page's, not the store's), completed
from each shown event's metadata on disk (its end, its clip) and the training labels."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app import keys, state
from app.storage import events, labels

CHUNK = 200          # stream entries read per round trip while filtering


@dataclass
class Row:
    id: str
    camera: str | None
    time: float
    area: float | None
    fate: str                 # sent | held | quiet | off (storage.events.fate)
    verified: bool | None
    duration: float | None
    clip: str | None          # "mp4" | "gif" | None
    label: str | None
    snapshot: bool


@dataclass
class Page:
    rows: list[Row] = field(default_factory=list)
    older: str | None = None  # cursor for the next (older) page


def day_range(day: str | None) -> tuple[str, str]:
    """Stream id bounds (min, max) of a local day, or the whole stream; ValueError for a bad day."""
    if not day:
        return "-", "+"
    start = datetime.combine(date.fromisoformat(day), datetime.min.time())
    end = start + timedelta(days=1)
    return str(int(start.timestamp() * 1000)), f"({int(end.timestamp() * 1000)}"


def page(r, data_dir, size: int, day: str | None = None, fate: str | None = None,
         before: str | None = None) -> Page:
    """One page of events, newest first, older than the cursor `before` (a stream id)."""
    low, high = day_range(day)
    if before:
        high = f"({before}"
    metas, last = [], None
    while len(metas) < size:
        chunk = r.xrevrange(keys.EVENTS, max=high, min=low, count=CHUNK)
        for entry_id, fields in chunk:
            meta = state.decode_json(fields.get("event"))
            if isinstance(meta, dict) and events.is_event_id(meta.get("id")) and \
                    (fate is None or events.fate(meta) == fate):
                metas.append(meta)
                last = entry_id
                if len(metas) == size:
                    break
        if len(chunk) < CHUNK or len(metas) == size:
            break
        high = f"({chunk[-1][0]}"
    known = labels.read_manifest(data_dir).labels if metas else {}
    rows = [_row(data_dir, meta, known) for meta in metas]
    return Page(rows, last if len(rows) == size else None)


def _row(data_dir, meta: dict, known: dict) -> Row:
    on_disk = events.event_files(data_dir, meta["id"])
    full = state.decode_json(_read(on_disk["meta"])) or meta
    start, end = full.get("start_time", full.get("time")), full.get("end_time")
    clip = "mp4" if on_disk["clip"].exists() else "gif" if on_disk["clip_gif"].exists() else None
    return Row(meta["id"], meta.get("camera"), meta.get("time") or events.event_time(meta["id"]), meta.get("area"),
               events.fate(meta),
               meta.get("verified"), end - start if isinstance(end, (int, float)) and isinstance(start, (int, float))
               else None, clip, known.get(meta["id"]), on_disk["snapshot"].exists())


def _read(path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def when(t: float) -> str:
    return time.strftime("%a %d %b %H:%M:%S", time.localtime(t))
