"""The upload ledger on disk: what S3 has confirmed, kept as a snapshot plus a journal.

    <data dir>/uploads.json   the snapshot (atomic rewrite), the layout app/storage/plan.py reads
    <data dir>/uploads.log    one JSON line per confirmation (or forgetting) since that snapshot

Each confirmed upload appends one short line, so its cost does not grow with the ledger (50,000
entries made the old whole-file rewrite 13 MB and 0.4 s per event). The journal is folded into a
new snapshot at start and whenever it holds more lines than the snapshot has entries: rewrites
stay rare, their cost spread over as many appends as they copy. A line torn by a crash is ignored;
the worst a crash costs is re-putting a few objects under the same keys.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from app import utils
from app.storage import plan

log = logging.getLogger("s3_upload")

SNAPSHOT_FILE = "uploads.json"
JOURNAL_FILE = "uploads.log"
MIN_FOLD_LINES = 1000       # never fold for fewer lines than this (a small ledger)


def read(data_dir: Path, target: dict) -> tuple[dict, str | None]:
    """The ledger as on disk (snapshot, then journal), or a new one and why; writes nothing."""
    entries, why = plan.checked_ledger(utils.read_json_file(Path(data_dir) / SNAPSHOT_FILE), target)
    if why:
        return entries, why
    try:
        with open(Path(data_dir) / JOURNAL_FILE, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return entries, None
    for line in lines:
        try:
            change = json.loads(line)
            section, key, entry = change["section"], change["id"], change["entry"]
        except (ValueError, KeyError, TypeError):
            continue          # torn by a crash mid-write: that upload is simply sent again
        _apply(entries, section, key, entry)
    return entries, None


def _apply(entries: dict, section: str, key: str | None, entry: dict | None) -> None:
    if section == "manifest":
        entries["manifest"] = entry
    elif section in ("training", "events") and isinstance(key, str):
        if entry is None:
            entries[section].pop(key, None)
        elif isinstance(entry, dict):
            entries[section][key] = entry


class Ledger:
    """One data dir's ledger, kept by its uploader: `entries` is the plan's dict (training,
    events, manifest)."""

    def __init__(self, data_dir: Path, target: dict):
        self.snapshot_path = Path(data_dir) / SNAPSHOT_FILE
        self.journal_path = Path(data_dir) / JOURNAL_FILE
        self.entries, why = read(data_dir, target)
        if why:
            log.warning("%s", why)
        self._journal = None
        self.lines = 0
        self.fold()               # start from a snapshot that holds everything, and an empty journal

    def record(self, section: str, key: str | None, entry: dict | None) -> None:
        """Note one confirmation (`entry`) or forgetting (None); written at once, synced by sync()."""
        _apply(self.entries, section, key, entry)
        if self._journal is None:
            self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._journal.write(json.dumps({"section": section, "id": key, "entry": entry}) + "\n")
        self._journal.flush()
        self.lines += 1
        if self.lines > max(MIN_FOLD_LINES, len(self.entries["training"]) + len(self.entries["events"])):
            self.fold()

    def sync(self) -> None:
        """Make the lines written so far survive a power cut."""
        if self._journal is not None:
            os.fsync(self._journal.fileno())

    def fold(self) -> None:
        """Write the snapshot (atomically), then empty the journal."""
        utils.atomic_write_json(self.snapshot_path, self.entries)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        try:
            os.truncate(self.journal_path, 0)
        except FileNotFoundError:
            pass
        self.lines = 0

    def close(self) -> None:
        if self._journal is not None:
            self.sync()
            self._journal.close()
            self._journal = None
