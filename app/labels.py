"""The training-data writer: a labelled event's clean frame plus one line in the manifest.

Layout (docs/architecture.md, read by s3_upload and app.train):
    training/<event id>.jpg   the event's clean frame (no boxes drawn)
    training/labels.json      {"<event id>": {event_id, label, user_id, user_name, labelled_at,
                               event_time, camera}}
The image is written first, then the manifest, both atomically; the manifest is read, changed and
rewritten under an exclusive flock on training/.lock so two gunicorn workers (or the uploader
pruning it) never lose each other's entries. A second label for the same event replaces the first.
"""
from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path

from app import events, utils

LABELS = ("occupied", "unoccupied")
MANIFEST = "labels.json"
LOCK = ".lock"


@contextmanager
def manifest_lock(training_dir: Path):
    """Hold the exclusive lock that guards labels.json (blocking; writers hold it for milliseconds)."""
    training_dir.mkdir(parents=True, exist_ok=True)
    with open(training_dir / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_labels(training_dir: Path) -> dict:
    """The manifest as a dict (empty when missing or unreadable)."""
    labels = utils.read_json_file(Path(training_dir) / MANIFEST, {})
    return labels if isinstance(labels, dict) else {}


def record_label(data_dir: Path, event_id: str, label: str, user_id: str, user_name: str,
                 now: float | None = None) -> dict:
    """Copy the event's clean frame into training/ and set its label; returns the manifest entry.

    Raises ValueError for an unknown label or a malformed id, FileNotFoundError when the event's
    files are gone; nothing is written in either case.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}")
    if not events.is_event_id(event_id):
        raise ValueError("not an event id")
    files = events.event_files(Path(data_dir), event_id)
    clean = files["clean"].read_bytes()
    meta = utils.read_json_file(files["meta"], None)
    if not isinstance(meta, dict):
        raise FileNotFoundError(f"event {event_id} has no metadata")
    training_dir = Path(data_dir) / "training"
    entry = {
        "event_id": event_id, "label": label, "user_id": user_id, "user_name": user_name,
        "labelled_at": time.time() if now is None else now,
        "event_time": meta.get("time"), "camera": meta.get("camera"),
    }
    utils.atomic_write_bytes(training_dir / f"{event_id}.jpg", clean)  # image first, then the manifest
    with manifest_lock(training_dir):
        manifest = read_labels(training_dir)
        manifest[event_id] = entry
        utils.atomic_write_json(training_dir / MANIFEST, manifest)
    return entry
