"""The training data: labelled events' clean frames and labels.json. The one module that knows
its layout, its lock and what a valid entry is; the Slack app writes through it, s3_upload and
app.camera.train read through it.

Layout (docs/architecture.md):
    training/<event id>.jpg   the event's clean frame (no boxes drawn)
    training/labels.json      {"<event id>": {event_id, label, user_id, user_name, labelled_at,
                               event_time, camera}}
    training/.lock            flock guarding labels.json and the images
The image is written first, then the manifest, both atomically; the manifest is read, changed and
rewritten under an exclusive flock on training/.lock so two gunicorn workers (or the uploader
deleting confirmed images) never lose each other's changes. A second label replaces the first.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import utils
from app.storage import events

LABELS = ("occupied", "unoccupied")
MANIFEST = "labels.json"
LOCK = ".lock"


def training_dir(data_dir: Path) -> Path:
    """Where the training data lives under the data dir."""
    return Path(data_dir) / "training"


def image_path(data_dir: Path, event_id: str) -> Path:
    """A labelled event's image (the id is checked, so it can never name a path elsewhere)."""
    if not events.is_event_id(event_id):
        raise ValueError("not an event id")
    return training_dir(data_dir) / f"{event_id}.jpg"


def images(data_dir: Path) -> dict[str, int]:
    """{event id: size} of training/<id>.jpg (temp files and other names are never listed)."""
    found = {}
    try:
        entries = list(os.scandir(training_dir(data_dir)))
    except FileNotFoundError:
        return found
    for entry in entries:
        path = Path(entry.path)
        if path.suffix == ".jpg" and not utils.is_temp_file(path) and events.is_event_id(path.stem):
            try:
                found[path.stem] = entry.stat().st_size
            except FileNotFoundError:
                pass
    return found


@contextmanager
def locked(data_dir: Path):
    """Hold the exclusive lock that guards labels.json and the images (writers hold it for milliseconds)."""
    folder = training_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def valid_labels(manifest: Any) -> tuple[dict[str, str], list[str]]:
    """{event id: label} for the well-formed entries of a manifest, and the ids that were not."""
    good: dict[str, str] = {}
    bad: list[str] = []
    if not isinstance(manifest, dict):
        return good, bad
    for event_id, entry in manifest.items():
        label = entry.get("label") if isinstance(entry, dict) else None
        if events.is_event_id(event_id) and label in LABELS:
            good[event_id] = label
        else:
            bad.append(str(event_id)[:40])
    return good, bad


@dataclass
class Manifest:
    """labels.json as read: the valid labels, the raw bytes (to upload as they are) and what was wrong."""
    labels: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    bad: list[str] = field(default_factory=list)
    error: str | None = None          # why the file could not be used at all (None: fine or absent)


def read_manifest(data_dir: Path) -> Manifest:
    """labels.json, validated; an absent file is an empty manifest, an unreadable one says why."""
    path = training_dir(data_dir) / MANIFEST
    try:
        raw = path.read_bytes()   # rewritten atomically: always whole
        entries = json.loads(raw)
    except FileNotFoundError:
        return Manifest()
    except (OSError, ValueError) as e:
        return Manifest(error=f"cannot read {path} ({type(e).__name__})")
    if not isinstance(entries, dict):
        return Manifest(error=f"{path} is not a JSON object")
    labels, bad = valid_labels(entries)
    return Manifest(labels, raw, bad)


def read_entries(data_dir: Path) -> dict:
    """Every entry of labels.json as stored (empty when missing or unreadable)."""
    entries = utils.read_json_file(training_dir(data_dir) / MANIFEST, {})
    return entries if isinstance(entries, dict) else {}


def record_label(data_dir: Path, event_id: str, label: str, user_id: str, user_name: str,
                 now: float | None = None) -> dict:
    """Copy the event's clean frame into training/ and set its label; returns the manifest entry.

    Raises ValueError for an unknown label or a malformed id, FileNotFoundError when the event's
    files are gone; nothing is written in either case.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}")
    files = events.event_files(Path(data_dir), event_id)   # ValueError for a malformed id
    clean = files["clean"].read_bytes()
    meta = utils.read_json_file(files["meta"], None)
    if not isinstance(meta, dict):
        raise FileNotFoundError(f"event {event_id} has no metadata")
    entry = {
        "event_id": event_id, "label": label, "user_id": user_id, "user_name": user_name,
        "labelled_at": time.time() if now is None else now,
        "event_time": meta.get("time"), "camera": meta.get("camera"),
    }
    with locked(data_dir):
        utils.atomic_write_bytes(image_path(data_dir, event_id), clean)  # image first, then the manifest
        manifest = read_entries(data_dir)
        manifest[event_id] = entry
        utils.atomic_write_json(training_dir(data_dir) / MANIFEST, manifest)
    return entry
