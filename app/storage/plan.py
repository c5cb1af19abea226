"""What the S3 uploader should do next: S3 keys, the upload ledger and the plans. Pure, no I/O.

Keys (docs/architecture.md), `<prefix>/` left out when the prefix is empty:
    <prefix>/<camera>/training/<label>/<event id>.jpg   a labelled training image
    <prefix>/<camera>/training/labels.json              the labels manifest, beside them
    <prefix>/<camera>/events/<YYYY-MM-DD>/<event id>.jpg  an event snapshot (opt-in)

The ledger (`<data dir>/uploads.json` and its journal, kept by app/storage/ledger.py) holds only what S3
has confirmed (HeadObject showed the same size and checksum after the put):
    {"version": 1, "target": {"endpoint", "bucket"},
     "training": {<event id>: {key, label, size, sha256, md5, time}},
     "events": {<event id>: {key, size, sha256, md5, time}},
     "manifest": {key, size, sha256, md5, time} | null}
A ledger for another bucket or endpoint is ignored (everything is sent to the new one).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.storage import events

LEDGER_VERSION = 1


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def training_key(prefix: str, camera: str, label: str, event_id: str) -> str:
    """Key of a labelled training image."""
    return _join(prefix, camera, "training", label, f"{event_id}.jpg")


def manifest_key(prefix: str, camera: str) -> str:
    """Key of the labels manifest, beside the training images."""
    return _join(prefix, camera, "training", "labels.json")


def event_key(prefix: str, camera: str, event_id: str) -> str:
    """Key of an event snapshot; the date folder comes from the id, as on disk."""
    day = events.event_dir(Path(), event_id).name
    return _join(prefix, camera, "events", day, f"{event_id}.jpg")


@dataclass(frozen=True)
class Upload:
    """One object to send. `old_key` (training) is deleted once `key` is confirmed: a relabel is a
    move, so S3 never holds a sample under both labels. `copy` means the local image is gone
    (retention deleted it), so S3 copies `old_key` to `key` itself."""
    kind: str                      # "event" | "training" | "manifest"
    key: str
    event_id: str | None = None
    label: str | None = None
    old_key: str | None = None
    copy: bool = False


def new_ledger(target: dict) -> dict:
    """An empty ledger for one bucket and endpoint."""
    return {"version": LEDGER_VERSION, "target": dict(target), "training": {}, "events": {}, "manifest": None}


def checked_ledger(raw: Any, target: dict) -> tuple[dict, str | None]:
    """The ledger read from disk if it is well formed and for this target, else a new one and why."""
    if raw is None:
        return new_ledger(target), None
    if (not isinstance(raw, dict) or raw.get("version") != LEDGER_VERSION
            or not isinstance(raw.get("training"), dict) or not isinstance(raw.get("events"), dict)):
        return new_ledger(target), "the upload ledger is unreadable; every file will be checked again"
    if raw.get("target") != target:
        return new_ledger(target), "the bucket or endpoint changed; everything is sent to the new one"
    return raw, None


def plan_training(labels: dict[str, str], images: dict[str, int], done: dict[str, dict],
                  prefix: str, camera: str) -> list[Upload]:
    """Training images to send or move, oldest first.

    labels: {event id: label} from labels.json (only labelled images are complete: an image with no
    manifest entry yet may still be mid-labelling). images: {event id: size} of training/<id>.jpg.
    done: the ledger's training entries.
    """
    plan = []
    for event_id in sorted(labels):
        label = labels[event_id]
        key = training_key(prefix, camera, label, event_id)
        sent = done.get(event_id)
        size = images.get(event_id)
        if sent and sent.get("key") == key and (size is None or size == sent.get("size")):
            continue
        old_key = sent.get("key") if sent and sent.get("key") != key else None
        if size is not None:
            plan.append(Upload("training", key, event_id, label, old_key))
        elif old_key:
            plan.append(Upload("training", key, event_id, label, old_key, copy=True))
        # else: no image and never sent (the Slack app writes the image before the manifest, so
        # this is a sample whose image was lost): nothing to send.
    return plan


def plan_events(complete: list[str], done: dict[str, dict], prefix: str, camera: str) -> list[Upload]:
    """Event snapshots not yet confirmed, oldest first (ids sort by time)."""
    return [Upload("event", event_key(prefix, camera, e), e) for e in sorted(complete) if e not in done]


def manifest_upload(sha256: str | None, done: dict | None, prefix: str, camera: str) -> Upload | None:
    """The manifest, when its content differs from the confirmed copy."""
    if sha256 is None or (done and done.get("sha256") == sha256):
        return None
    return Upload("manifest", manifest_key(prefix, camera))


def plan_retention(labels: dict[str, str], images: dict[str, int], done: dict[str, dict],
                   prefix: str, camera: str) -> list[str]:
    """Training images that may be deleted locally: confirmed under their current label's key with
    the same size (the caller re-checks the checksum before deleting)."""
    return [e for e in sorted(labels) if e in images and e in done
            and done[e].get("key") == training_key(prefix, camera, labels[e], e)
            and done[e].get("size") == images[e]]


def pruned_events(done: dict[str, dict], on_disk: set[str]) -> list[str]:
    """Ledger entries of events no longer on disk (the daemon's retention removed them)."""
    return [e for e in done if e not in on_disk]
