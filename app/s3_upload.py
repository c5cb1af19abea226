"""The S3 uploader: labelled training data every S3_UPLOAD_INTERVAL and, when s3.upload_events is
on, each event snapshot within seconds of the event (off-site evidence).

    python3 app/s3_upload.py          # run until SIGTERM
    python3 app/s3_upload.py --once   # one pass; exit 0 when everything is confirmed, 1 if not

Nothing is lost:
- only complete files are sent: a training image once labels.json names it, an event snapshot once
  its .json exists (written last), never a temp file;
- a file is recorded in the ledger (data/uploads.json, see app/uploader.py) only after S3 confirmed
  its size and checksum; a relabelled sample is moved (new key confirmed, then the old one deleted);
- local training images are deleted (opt-in) only once confirmed; event snapshots never (the
  camera daemon's retention owns them);
- every pass rescans the disk, oldest first, so a restart or an outage of any length catches up; a
  failed pass is retried with backoff; the `events` stream only makes new events go up at once.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config  # noqa: E402
from app import events, keys, state, uploader, utils  # noqa: E402
from app.s3_store import Blob, S3Error, S3Store, make_client  # noqa: E402
from app.uploader import Upload  # noqa: E402

NAME = "s3_upload"
log = logging.getLogger(NAME)

LEDGER_FILE = "uploads.json"
SAVE_EVERY_S = 2.0        # batch ledger rewrites: a crash only means re-putting a few objects under the same key
BACKOFF_START_S = 2.0     # after a failed pass; doubles up to BACKOFF_MAX_S, back to normal after a success
BACKOFF_MAX_S = 60.0
STREAM_BLOCK_MS = 1000    # XREAD block: short, so the loop also keeps its timers


class Uploader:
    """Sends one data dir's training data and event snapshots to S3 and keeps the ledger."""

    def __init__(self, settings: config.Settings, store: S3Store, on_progress=None):
        self.data_dir = Path(settings.data_dir)
        self.training_dir = self.data_dir / "training"
        self.cfg = settings.s3
        self.camera = settings.camera.name
        self.store = store
        self.on_progress = on_progress or (lambda: None)
        self.ledger_path = self.data_dir / LEDGER_FILE
        target = {"endpoint": self.cfg.endpoint_url, "bucket": self.cfg.bucket}
        self.ledger, why = uploader.checked_ledger(utils.read_json_file(self.ledger_path), target)
        if why:
            log.warning("%s", why)
        self.pending = 0
        self.checked = False          # head_bucket before the first pass, and again after a failure
        self._dirty = False
        self._saved_at = time.monotonic()
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
        """{event id: size} of training/<id>.jpg (temp files and other names are never listed)."""
        images = {}
        try:
            entries = list(os.scandir(self.training_dir))
        except FileNotFoundError:
            return images
        for entry in entries:
            path = Path(entry.path)
            if path.suffix == ".jpg" and not utils.is_temp_file(path) and events.is_event_id(path.stem):
                try:
                    images[path.stem] = entry.stat().st_size
                except FileNotFoundError:
                    pass
        return images

    def read_manifest(self) -> tuple[dict[str, str], bytes | None]:
        """({event id: label}, the raw labels.json bytes); ({}, None) when missing or unreadable."""
        path = self.training_dir / "labels.json"
        try:
            raw = path.read_bytes()   # rewritten atomically by the Slack app: always whole
            manifest = json.loads(raw)
        except FileNotFoundError:
            return {}, None
        except (OSError, ValueError) as e:
            self._warn_once(f"cannot read {path} ({type(e).__name__}); training data waits until it is fixed")
            return {}, None
        if not isinstance(manifest, dict):
            self._warn_once(f"{path} is not a JSON object; training data waits until it is fixed")
            return {}, None
        labels, bad = uploader.valid_labels(manifest)
        if bad:
            self._warn_once(f"labels.json: skipping {len(bad)} malformed entries (first: {bad[0]!r})")
        return labels, raw

    def complete_events(self) -> list[str]:
        """Ids of events whose metadata file exists (it is written last: the event is complete)."""
        ids = []
        try:
            days = sorted(d.path for d in os.scandir(self.data_dir / "events") if d.is_dir())
        except FileNotFoundError:
            return ids
        for day in days:
            try:
                names = os.listdir(day)
            except FileNotFoundError:
                continue   # removed by the daemon's retention meanwhile
            for name in names:
                stem = name[:-5]
                if name.endswith(".json") and events.is_event_id(stem):
                    ids.append(stem)
        return sorted(ids)

    # Ledger ------------------------------------------------------------------------------------

    def _record(self, section: str, event_id: str, entry: dict) -> None:
        self.ledger[section][event_id] = entry
        self._dirty = True
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        """Write the ledger if it changed (atomically: a crash leaves the old or the new one)."""
        if self._dirty:
            utils.atomic_write_json(self.ledger_path, self.ledger)
            self._dirty = False
        self._saved_at = time.monotonic()

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
            path = self.training_dir / f"{up.event_id}.jpg"
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
        self._record("training" if up.kind == "training" else "events", up.event_id, entry)

    def send_event_now(self, event_id: str) -> bool:
        """Send one event's snapshot (from the stream) unless already confirmed or not complete yet."""
        if event_id in self.ledger["events"] or not events.event_files(self.data_dir, event_id)["meta"].is_file():
            return False   # incomplete events are found by the next scan
        self.send(Upload("event", uploader.event_key(self.cfg.prefix, self.camera, event_id), event_id))
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
            plan: list[Upload] = []
            if self.cfg.upload_events:
                complete = self.complete_events()
                self.ledger["events"] = uploader.prune_events(self.ledger["events"], set(complete))
                plan += uploader.plan_events(complete, self.ledger["events"], prefix, self.camera)
            labels, raw = self.read_manifest()
            plan += uploader.plan_training(labels, self.training_images(), self.ledger["training"],
                                           prefix, self.camera)
            manifest = None
            if raw is not None:
                manifest_blob = Blob.of(raw)
                manifest = uploader.manifest_upload(manifest_blob.sha256, self.ledger["manifest"], prefix, self.camera)
            self.pending = len(plan) + (manifest is not None)
            sent = 0
            for up in plan:
                if stop is not None and stop.is_set():
                    return sent
                self.send(up)
                sent += 1
                self.pending -= 1
                self.on_progress()
            if manifest is not None:
                # After the images, so the manifest in S3 never names a sample that is not there yet.
                self.store.put(manifest.key, manifest_blob, "application/json")
                self.ledger["manifest"] = self._entry(manifest.key, manifest_blob)
                self._dirty = True
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
        self.training_dir.mkdir(parents=True, exist_ok=True)
        deleted = 0
        # The Slack app's lock: never delete while it rewrites an image or relabels.
        with open(self.training_dir / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            labels, _ = self.read_manifest()
            for event_id in uploader.plan_retention(labels, self.training_images(), self.ledger["training"],
                                                    self.cfg.prefix, self.camera):
                path = self.training_dir / f"{event_id}.jpg"
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


def stream_event_id(fields: dict) -> str | None:
    """The event id inside an `events` stream entry, or None when it is not a well-formed one."""
    try:
        meta = json.loads(fields.get("event", ""))
    except (TypeError, ValueError):
        return None
    event_id = meta.get("id") if isinstance(meta, dict) else None
    return event_id if events.is_event_id(event_id) else None


class Service:
    """The long-running loop: passes on a timer (with backoff after a failure), the events
    stream for new snapshots, heartbeat and status. Errors are logged once, not per retry."""

    def __init__(self, settings: config.Settings, r, up: Uploader, stop):
        self.settings = settings
        self.cfg = settings.s3
        self.r = r
        self.up = up
        self.stop = stop
        up.on_progress = self.between_items
        self.last_error: str | None = None
        self.backoff = BACKOFF_START_S
        self.next_pass = 0.0
        self.next_beat = 0.0
        self.last_stream_poll = 0.0
        self.last_id: str | None = None       # position in the events stream; None: not read yet
        self.redis_ok = True

    # Status ------------------------------------------------------------------------------------

    def failed(self, message: str) -> None:
        """Remember a failure; log it only when it differs from the last one (no log flood)."""
        if message != self.last_error:
            log.error("S3 upload failed: %s (retrying with backoff, at most every %.0f s)", message, BACKOFF_MAX_S)
        self.last_error = message
        self.next_pass = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)

    def succeeded(self) -> None:
        if self.last_error:
            log.info("S3 uploads work again")
        self.last_error = None
        self.backoff = BACKOFF_START_S

    def status(self) -> dict:
        return {"ok": self.last_error is None, "error": self.last_error, "pending": self.up.pending,
                "uploaded": self.up.uploaded, "time": time.time(), "enabled": True}

    def beat(self, force: bool = False) -> None:
        """Heartbeat and s3:status, every heartbeat_s; a Redis outage is logged once and ridden out."""
        now = time.monotonic()
        if not force and now < self.next_beat:
            return
        self.next_beat = now + self.settings.heartbeat_s
        status = self.status()
        detail = {"pending": status["pending"], "uploaded": status["uploaded"], "last_error": status["error"]}
        try:
            state.write_heartbeat(self.r, NAME, "error" if self.last_error else "running", detail,
                                  ttl=self.settings.heartbeat_ttl_s)
            state.set_json(self.r, keys.S3_STATUS, status)
        except state.REDIS_DOWN as e:
            self._redis_down(e)
        else:
            self._redis_up()

    def _redis_down(self, e: Exception) -> None:
        if self.redis_ok:
            log.warning("Redis unreachable (%s); uploads carry on from the disk", type(e).__name__)
        self.redis_ok = False
        self.last_id = None   # re-read the position (and rescan) once Redis is back

    def _redis_up(self) -> None:
        if not self.redis_ok:
            log.info("Redis is back")
        self.redis_ok = True

    # Work --------------------------------------------------------------------------------------

    def do_pass(self) -> bool:
        """One pass; schedules the next one (interval, or backoff after a failure)."""
        try:
            self.up.run_pass(self.stop)
        except (S3Error, OSError) as e:
            self.failed(str(e) if isinstance(e, S3Error) else f"local file error: {e}")
            self.beat(force=True)
            return False
        self.succeeded()
        self.next_pass = time.monotonic() + self.cfg.interval_s
        self.beat(force=True)
        return True

    def between_items(self) -> None:
        """Called after each upload of a long pass: keep the heartbeat and let new events jump the queue."""
        self.beat()
        if self.cfg.upload_events and self.last_id and time.monotonic() - self.last_stream_poll >= 1.0:
            self.follow_stream(block_ms=None)

    def stream_position(self) -> None:
        """Start reading the stream after its newest entry; older events are the catch-up scan's job."""
        try:
            newest = self.r.xrevrange(keys.EVENTS, count=1)
        except state.REDIS_DOWN as e:
            self._redis_down(e)
            return
        self._redis_up()
        self.last_id = newest[0][0] if newest else "0-0"
        if self.last_error is None:
            self.next_pass = min(self.next_pass, time.monotonic())   # rescan for what came meanwhile

    def follow_stream(self, block_ms: int | None) -> None:
        """Read new `events` entries (blocking up to block_ms) and send their snapshots at once."""
        self.last_stream_poll = time.monotonic()
        try:
            reply = self.r.xread({keys.EVENTS: self.last_id}, count=50, block=block_ms)
        except state.REDIS_DOWN as e:
            self._redis_down(e)
            if block_ms is not None:      # the main loop: pause; mid-pass: carry on uploading
                self.stop.wait(min(self.backoff, 5.0))
            return
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self.last_id = entry_id
                event_id = stream_event_id(fields)
                if event_id is None:
                    log.warning("Ignoring a malformed events stream entry %s", entry_id)
                elif self.last_error is None:   # while S3 fails, the retried pass's scan sends it
                    try:
                        self.up.send_event_now(event_id)
                    except (S3Error, OSError) as e:
                        self.failed(str(e))

    def run(self) -> None:
        """Until stopped: passes on the timer, and the stream (when events are uploaded) in between."""
        log.info("Uploading to bucket %r%s every %.0f s%s", self.cfg.bucket,
                 f" under {self.cfg.prefix}/" if self.cfg.prefix else "", self.cfg.interval_s,
                 "; event snapshots as they happen" if self.cfg.upload_events else "")
        while not self.stop.is_set():
            if self.cfg.upload_events and self.last_id is None:
                self.stream_position()   # before the pass, so no event falls between scan and stream
            if time.monotonic() >= self.next_pass:
                self.do_pass()
                continue
            self.beat()
            wait_s = max(0.0, min(self.next_pass - time.monotonic(), STREAM_BLOCK_MS / 1000))
            if self.cfg.upload_events and self.last_id is not None:
                self.follow_stream(block_ms=max(1, int(wait_s * 1000)))
            else:
                self.stop.wait(wait_s)


def idle_disabled(settings: config.Settings, r, stop) -> None:
    """No bucket: say so once and keep a heartbeat (state "disabled") instead of crash-looping."""
    message = "uploads are off: S3_BUCKET is not set"
    log.warning("%s (set it, and AWS credentials, to upload training data and snapshots)", message)
    while True:
        status = {"ok": False, "error": message, "pending": 0, "uploaded": 0, "time": time.time(), "enabled": False}
        try:
            state.write_heartbeat(r, NAME, "disabled", {"pending": 0, "uploaded": 0, "last_error": message},
                                  ttl=settings.heartbeat_ttl_s)
            state.set_json(r, keys.S3_STATUS, status)
        except state.REDIS_DOWN:
            pass
        if stop.wait(settings.heartbeat_s):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload training data and event snapshots to S3.")
    parser.add_argument("--once", action="store_true", help="do one pass and exit (1 if anything failed)")
    args = parser.parse_args(argv)
    settings = config.load_or_exit()
    utils.setup_logging(NAME, settings.log_level, settings.logs_dir)
    stop = utils.StopFlag().install()
    r = state.connect(settings.redis_url, NAME)
    if not settings.s3.bucket:
        if args.once:
            log.warning("uploads are off: S3_BUCKET is not set")
            return 0
        idle_disabled(settings, r, stop)
        return 0

    store = S3Store(make_client(settings.s3.endpoint_url, settings.s3.region), settings.s3.bucket,
                    settings.s3.endpoint_url)
    service = Service(settings, r, Uploader(settings, store), stop)
    if args.once:
        ok = service.do_pass()
        return 0 if ok and not stop.is_set() else 1

    # An interrupted put is simply not in the ledger and is sent again (same key) at the next start.
    return 0 if utils.run_in_worker(service.run, stop, "uploader") else 1

if __name__ == "__main__":
    sys.exit(main())
