"""Uploads one data dir to S3: what to send (app/storage/plan.py), verified puts, and the ledger.

Nothing is lost:
- only complete files are sent: a training image once labels.json names it, an event snapshot once
  its .json exists (written last), never a temp file;
- a file is recorded in the ledger (app/storage/ledger.py) only after S3 confirmed its size and
  checksum; a relabelled sample is moved (new key confirmed, then the old
  one deleted);
- local training images are deleted (opt-in) only once confirmed; event snapshots never (the
  camera daemon's retention owns them).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import config
from app.storage import events, labels, plan
from app.storage.ledger import Ledger
from app.storage.plan import Upload
from app.storage.s3 import Blob, S3Store

log = logging.getLogger("s3_upload")


class Uploader:
    """Sends one data dir's training data and event snapshots to S3 and keeps the ledger."""

    def __init__(self, settings: config.Settings, store: S3Store, on_progress=None):
        self.data_dir = Path(settings.data_dir)
        self.cfg = settings.s3
        self.camera = settings.camera.name
        self.store = store
        self.on_progress = on_progress or (lambda: None)
        self.book = Ledger(self.data_dir, {"endpoint": self.cfg.endpoint_url, "bucket": self.cfg.bucket})
        self.ledger = self.book.entries
        self.pending = 0
        self.checked = False          # head_bucket before the first pass, and again after a failure
        self._warned: set[str] = set()

    @property
    def uploaded(self) -> int:
        """Objects S3 has confirmed (training images and event snapshots)."""
        return len(self.ledger["training"]) + len(self.ledger["events"])

    def _warn_once(self, msg: str) -> None:
        if msg not in self._warned:
            self._warned.add(msg)
            log.warning("%s", msg)

    # Disk --------------------------------------------------------------------------------------

    def training_images(self) -> dict[str, int]:
        """{event id: size} of the training images on disk."""
        return labels.images(self.data_dir)

    def read_manifest(self) -> labels.Manifest:
        """labels.json, validated; problems are logged once, not at every pass."""
        manifest = labels.read_manifest(self.data_dir)
        if manifest.error:
            self._warn_once(f"{manifest.error}; training data waits until it is fixed")
        if manifest.bad:
            self._warn_once(f"labels.json: skipping {len(manifest.bad)} malformed entries "
                            f"(first: {manifest.bad[0]!r})")
        return manifest

    def complete_events(self) -> list[str]:
        """Ids of the events complete on disk, oldest first."""
        return events.complete_ids(self.data_dir)

    # Ledger ------------------------------------------------------------------------------------

    def save(self) -> None:
        """Make the confirmations recorded so far survive a power cut."""
        self.book.sync()

    # Uploads -----------------------------------------------------------------------------------

    @staticmethod
    def _entry(key: str, blob_or_entry, **extra) -> dict:
        if isinstance(blob_or_entry, Blob):
            sums = {"size": blob_or_entry.size, "sha256": blob_or_entry.sha256, "md5": blob_or_entry.md5_hex}
        else:
            sums = {k: blob_or_entry.get(k) for k in ("size", "sha256", "md5")}
        return {"key": key, **sums, "time": time.time(), **extra}

    def send(self, up: Upload) -> None:
        """Upload (or move) one planned object and record it once confirmed; a vanished local file is skipped."""
        if up.kind == "event":
            if up.event_id in self.ledger["events"]:
                return   # already sent from the stream during this pass
            path = events.event_files(self.data_dir, up.event_id)["snapshot"]
        else:
            path = labels.image_path(self.data_dir, up.event_id)
        if up.copy:
            old = self.ledger["training"][up.event_id]
            self.store.copy(up.old_key, up.key, old["size"], old["sha256"], old.get("md5"))
            entry = self._entry(up.key, old, label=up.label)
        else:
            try:
                blob = Blob.of(path.read_bytes())
            except FileNotFoundError:   # deleted by the daemon's retention, or never written
                self._warn_once(f"{path.name} is missing; not uploaded")
                return
            self.store.put(up.key, blob, "image/jpeg")
            entry = self._entry(up.key, blob, **({"label": up.label} if up.label else {}))
        if up.old_key:
            self.store.delete(up.old_key)   # only now that the new key is confirmed
            log.info("Moved %s to the %s label", up.event_id, up.label)
        self.book.record("training" if up.kind == "training" else "events", up.event_id, entry)

    def send_event_now(self, event_id: str) -> bool:
        """Send one event's snapshot (from the stream) unless already confirmed or not complete yet."""
        if event_id in self.ledger["events"] or not events.event_files(self.data_dir, event_id)["meta"].is_file():
            return False   # incomplete events are found by the next scan
        self.send(Upload("event", plan.event_key(self.cfg.prefix, self.camera, event_id), event_id))
        self.save()
        return True

    def run_pass(self, stop=None) -> int:
        """Scan, upload everything not yet confirmed (events first: they are evidence), then the
        manifest, then retention. Returns how many objects were sent; raises S3Error or OSError."""
        try:
            if not self.checked:
                self.store.check()
                self.checked = True
            prefix = self.cfg.prefix
            todo: list[Upload] = []
            if self.cfg.upload_events:
                complete = self.complete_events()
                for gone in plan.pruned_events(self.ledger["events"], set(complete)):
                    self.book.record("events", gone, None)
                todo += plan.plan_events(complete, self.ledger["events"], prefix, self.camera)
            manifest = self.read_manifest()
            todo += plan.plan_training(manifest.labels, self.training_images(), self.ledger["training"],
                                       prefix, self.camera)
            manifest_up = None
            if manifest.raw is not None:
                manifest_blob = Blob.of(manifest.raw)
                manifest_up = plan.manifest_upload(manifest_blob.sha256, self.ledger["manifest"], prefix,
                                                   self.camera)
            self.pending = len(todo) + (manifest_up is not None)
            sent = 0
            for up in todo:
                if stop is not None and stop.is_set():
                    return sent
                self.send(up)
                sent += 1
                self.pending -= 1
                self.on_progress()
            if manifest_up is not None:
                # After the images, so the manifest in S3 never names a sample that is not there yet.
                self.store.put(manifest_up.key, manifest_blob, "application/json")
                self.book.record("manifest", None, self._entry(manifest_up.key, manifest_blob))
                self.pending -= 1
            self.save()
            if self.cfg.delete_after_upload:
                self.apply_retention()
            if sent:
                log.info("Uploaded %d object(s); %d confirmed in total", sent, self.uploaded)
            return sent
        except BaseException:
            self.checked = False
            raise
        finally:
            self.save()   # keep what was confirmed before a failure

    def apply_retention(self) -> int:
        """Delete local training images that S3 confirmed under their current label (same checksum)."""
        deleted = 0
        # The Slack app's lock: never delete while it rewrites an image or relabels.
        with labels.locked(self.data_dir):
            manifest = self.read_manifest()
            for event_id in plan.plan_retention(manifest.labels, self.training_images(), self.ledger["training"],
                                                self.cfg.prefix, self.camera):
                path = labels.image_path(self.data_dir, event_id)
                try:
                    if Blob.of(path.read_bytes()).sha256 != self.ledger["training"][event_id]["sha256"]:
                        continue   # changed since the upload: the next pass sends it again
                    path.unlink()
                    deleted += 1
                except FileNotFoundError:
                    pass
        if deleted:
            log.info("Deleted %d local training image(s) that S3 confirmed", deleted)
        return deleted
