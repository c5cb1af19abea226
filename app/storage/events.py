"""The event store on disk: ids, paths, atomic snapshot + metadata writes, retention.

Layout under the data dir (paths in metadata are relative to it):
    events/<YYYY-MM-DD>/<event id>.jpg        annotated snapshot (boxes drawn), what Slack shows
    events/<YYYY-MM-DD>/<event id>.clean.jpg  the same frame without drawing (for training)
    events/<YYYY-MM-DD>/<event id>.json       metadata, written last: its presence means complete
    events/<YYYY-MM-DD>/<event id>.mp4        the event's clip (or .gif where H.264 cannot be made)
"""
from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.utils import atomic_write_bytes, atomic_write_json, is_temp_file, read_json_file

EVENT_ID_RE = re.compile(r"^(\d{8})-(\d{6})-([0-9a-f]{6})$")
STALE_TEMP_S = 60.0     # a temp file this old was left by an interrupted write; a younger one is being written


def new_event_id(when: float | None = None) -> str:
    """A sortable, filename-safe id: 20261124-015300-a1b2c3 (local time of the trigger)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when if when is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def is_event_id(value: object) -> bool:
    """True only for a well-formed event id (so it can never name a path outside the store)."""
    return isinstance(value, str) and EVENT_ID_RE.match(value) is not None


def event_time(event_id: str) -> float:
    """The trigger time an event id carries (local time, to the second)."""
    return time.mktime(time.strptime(event_id[:15], "%Y%m%d-%H%M%S"))


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
    """Paths of an event's snapshot, clean frame, metadata and clip (one of its two kinds)."""
    d = event_dir(data_dir, event_id)
    return {"snapshot": d / f"{event_id}.jpg", "clean": d / f"{event_id}.clean.jpg",
            "meta": d / f"{event_id}.json", "clip": d / f"{event_id}.mp4", "clip_gif": d / f"{event_id}.gif"}


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


@dataclass
class Scan:
    """What one pass over the events folder found."""
    index: dict[str, list]                 # id -> [trigger time, bytes], oldest first
    incomplete: list[str]                  # ids with images but no metadata (a crash in between)
    total: int = 0
    recent: list[dict] = field(default_factory=list)   # metadata of the last days' events


def fate(meta: dict) -> str:
    """What became of a published event: "held" (the verifier said no), "quiet" (recorded in
    quiet hours), "sent", or "off" (notifications were off)."""
    if meta.get("verified") is False:
        return "held"
    if meta.get("quiet"):
        return "quiet"
    return "sent" if meta.get("notified") else "off"


class EventStore:
    """Writes events to disk atomically (images first, metadata last) and keeps retention.

    The store keeps an index of its events (id -> [trigger time, bytes], oldest first: ids sort by time),
    built by one scan and kept up to date by every write and deletion, so retention costs the same
    at 100 events as at 50,000, and the events folder never grows past max_total_mb: room is made
    before each event is written.

    The scan of 50,000 events takes seconds (tens on a Pi). The camera daemon runs it on a thread
    (`scan()` reads only) and `install()`s the result between two frames; events written before
    that are counted then, and the size cap applies from then on.
    """

    def __init__(self, data_dir: Path, cfg):
        self.data_dir = Path(data_dir)
        self.root = events_root(self.data_dir)
        self.cfg = cfg
        self._index: dict[str, list] | None = None
        self.total = 0
        self.incomplete: list[str] = []      # ids with images but no metadata, found by the scan
        self.scanning = False                # a scan runs elsewhere: writes wait for install()
        self._early: list[str] = []          # written while it ran

    # -- the index -----------------------------------------------------------------------------
    def scan(self, recent_days: int = 0) -> Scan:
        """Read the events folder (nothing in the store changes, so any thread may call it); stray
        temp files of an interrupted write are removed, never one being written."""
        groups: dict[str, list] = {}
        old = time.time() - STALE_TEMP_S
        if self.root.is_dir():
            for day in sorted(p for p in self.root.iterdir() if p.is_dir()):
                try:
                    entries = list(os.scandir(day))
                except FileNotFoundError:
                    continue
                for f in entries:
                    try:
                        st = f.stat()
                    except FileNotFoundError:
                        continue
                    if is_temp_file(Path(f.path)):
                        if st.st_mtime < old:
                            Path(f.path).unlink(missing_ok=True)
                        continue
                    event_id = f.name.split(".")[0]
                    if not f.is_file() or not is_event_id(event_id):
                        continue
                    entry = groups.setdefault(event_id, [event_time(event_id), 0, False])
                    entry[1] += st.st_size
                    entry[2] |= f.name.endswith(".json")
        index = {i: [groups[i][0], groups[i][1]] for i in sorted(groups)}
        return Scan(index, [i for i in index if not groups[i][2]], sum(e[1] for e in index.values()),
                    self.recent(recent_days) if recent_days else [])

    def install(self, scan: Scan) -> None:
        """Use a scan's index; the events written since are counted now (call it from the thread
        that writes, between two writes)."""
        self._index, self.incomplete, self.total = scan.index, scan.incomplete, scan.total
        self.scanning = False
        early, self._early = self._early, []
        for event_id in early:
            self._account(event_id)

    @property
    def ready(self) -> bool:
        return self._index is not None

    @property
    def index(self) -> dict[str, list]:
        """The index; scanned here when nobody scans elsewhere, empty (nothing to evict) until the
        scan running elsewhere is installed."""
        if self._index is None:
            if self.scanning:
                return {}
            self.install(self.scan())
        return self._index

    def event_files(self, event_id: str) -> dict[str, Path]:
        return event_files(self.data_dir, event_id)

    def _files_of(self, event_id: str) -> list[Path]:
        """An event's files, by name (listing a day folder of 10^4 events would cost per event)."""
        return [f for f in event_files(self.data_dir, event_id).values() if f.exists()]

    def _size_of(self, event_id: str) -> int:
        total = 0
        for f in event_files(self.data_dir, event_id).values():
            try:
                total += f.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def _account(self, event_id: str) -> None:
        if self._index is None and self.scanning:
            self._early.append(event_id)     # counted when the scan's index is installed
            return
        size = self._size_of(event_id)
        if event_id not in self.index and self.index and event_id[:15] < next(reversed(self.index))[:15]:
            # The clock went back (no RTC before NTP, DST): keep the index oldest first. (Ids of
            # the same second differ only in their random tail: their order does not matter.)
            self._index = dict(sorted({**self._index, event_id: [event_time(event_id), 0]}.items()))
        entry = self.index.setdefault(event_id, [event_time(event_id), 0])
        self.total += size - entry[1]
        entry[1] = size

    def delete(self, event_id: str) -> None:
        """Delete one event, all of its files together."""
        for f in self._files_of(event_id):
            f.unlink(missing_ok=True)
        entry = self.index.pop(event_id, None)
        if entry is not None:
            self.total -= entry[1]
        day = event_dir(self.data_dir, event_id)
        try:
            day.rmdir()            # only when it is empty
        except OSError:
            pass

    def evict_oldest(self, keep: str | None = None) -> bool:
        """Delete the oldest event (never `keep`); False when there is nothing to delete."""
        oldest = next((i for i in self.index if i != keep), None)
        if oldest is None:
            return False
        self.delete(oldest)
        return True

    # -- writes ----------------------------------------------------------------------------------
    def save(self, meta: dict, snapshot_jpg: bytes, clean_jpg: bytes) -> dict:
        """Write an event's two JPEGs then its metadata; returns meta with relative paths filled in.

        Room is made first (oldest events deleted) so the folder stays under max_total_mb. Raises
        OSError when the disk refuses (full): nothing of this event is left behind then.
        """
        files = event_files(self.data_dir, meta["id"])
        meta = dict(meta, snapshot=str(files["snapshot"].relative_to(self.data_dir)),
                    clean=str(files["clean"].relative_to(self.data_dir)))
        self.make_room(len(snapshot_jpg) + len(clean_jpg) + 4096, keep=meta["id"])
        existed = {name: f.exists() for name, f in files.items()}
        try:
            atomic_write_bytes(files["snapshot"], snapshot_jpg)
            atomic_write_bytes(files["clean"], clean_jpg)
            atomic_write_json(files["meta"], meta)
        except OSError:
            for name, f in files.items():   # only what this call created: a saved event stays whole
                if not existed[name]:
                    f.unlink(missing_ok=True)
            self._account(meta["id"])
            raise
        self._account(meta["id"])
        return meta

    def update(self, meta: dict) -> None:
        """Rewrite an event's metadata (its end, its verdict)."""
        atomic_write_json(event_files(self.data_dir, meta["id"])["meta"], meta)
        self._account(meta["id"])

    def make_room(self, needed: int, keep: str | None = None) -> int:
        """Delete the oldest events until `needed` more bytes fit under max_total_mb (from the
        moment the index is known)."""
        if self._index is None and self.scanning:
            return 0
        self.index   # the first scan counts what is already there
        limit = self.cfg.max_total_mb * 1e6
        deleted = 0
        while self.total + needed > limit and self.evict_oldest(keep):
            deleted += 1
        return deleted

    # -- reads -----------------------------------------------------------------------------------
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

        Returns how many were deleted; costs only what it deletes (the index is in memory).
        """
        if self._index is None and self.scanning:
            return 0
        now = time.time() if now is None else now
        cutoff = now - self.cfg.retention_days * 86400
        deleted = 0
        while self.index:
            oldest = next(iter(self.index))
            if self.index[oldest][0] >= cutoff:
                break
            self.delete(oldest)
            deleted += 1
        return deleted + self.make_room(0)

    def finish_incomplete(self, camera: str) -> list[str]:
        """Events whose images were written but not their metadata (a crash in between): write a
        minimal one, so they are published (and notified) once, like any event."""
        finished = []
        self.index   # the first scan finds them
        for event_id in list(self.incomplete):
            files = event_files(self.data_dir, event_id)
            if files["meta"].exists() or not files["snapshot"].exists():
                continue
            when = event_time(event_id)
            meta = {"id": event_id, "camera": camera, "time": when,
                    "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when)),
                    "start_time": when, "area": 0.0, "peak_area": 0.0, "boxes": [],
                    "snapshot": str(files["snapshot"].relative_to(self.data_dir)),
                    "clean": str(files["clean"].relative_to(self.data_dir)) if files["clean"].exists() else None,
                    "verified": None, "notified": False, "recovered": True}
            self.update(meta)
            finished.append(event_id)
        self.incomplete = []
        return finished
