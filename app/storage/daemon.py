"""The S3 uploader: labelled training data every S3_UPLOAD_INTERVAL and, when s3.upload_events is
on, each event snapshot within seconds of the event (off-site evidence).

    python3 app/s3_upload.py          # run until SIGTERM
    python3 app/s3_upload.py --once   # one pass; exit 0 when everything is confirmed, 1 if not

How it keeps going: every pass rescans the disk, oldest first, so a restart or an outage of any
length catches up; a failed pass is retried with backoff; the `events` stream only makes new
events go up at once. What a pass sends, and why nothing is lost: app/storage/uploader.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import config
from app import health, keys, startup, state, utils
from app.backoff import Backoff
from app.storage import events

NAME = "s3_upload"
log = logging.getLogger(NAME)

BACKOFF_START_S = 2.0     # after a failed pass; doubles up to BACKOFF_MAX_S, back to normal after a success
BACKOFF_MAX_S = 60.0
STREAM_BLOCK_MS = 1000    # XREAD block: short, so the loop also keeps its timers


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

    def __init__(self, settings: config.Settings, r, up, stop):
        from app.storage.s3 import S3Error   # boto3 is imported only where a bucket is set
        self.failures = (S3Error, OSError)
        self.settings = settings
        self.cfg = settings.s3
        self.r = r
        self.up = up
        self.stop = stop
        up.on_progress = self.between_items
        self.last_error: str | None = None
        self.backoff = Backoff(BACKOFF_START_S, BACKOFF_MAX_S)
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
        self.next_pass = time.monotonic() + self.backoff.next()

    def succeeded(self) -> None:
        if self.last_error:
            log.info("S3 uploads work again")
        self.last_error = None
        self.backoff.reset()

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
            health.write_heartbeat(self.r, NAME, "error" if self.last_error else "running", detail,
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
        except self.failures as e:
            self.failed(f"local file error: {e}" if isinstance(e, OSError) else str(e))
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
                self.stop.wait(min(self.backoff.delay, 5.0))
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
                    except self.failures as e:
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
    health.idle(r, NAME, {"pending": 0, "uploaded": 0, "last_error": message}, settings, stop,
                also=lambda r: state.set_json(r, keys.S3_STATUS, {
                    "ok": False, "error": message, "pending": 0, "uploaded": 0, "time": time.time(), "enabled": False}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload training data and event snapshots to S3.")
    parser.add_argument("--once", action="store_true", help="do one pass and exit (1 if anything failed)")
    args = parser.parse_args(argv)
    settings, r, stop = startup.start(NAME)
    if args.once:
        if not settings.s3.bucket:
            log.warning("uploads are off: S3_BUCKET is not set")
            return 0
        ok = build_service(settings, r, stop).do_pass()
        return 0 if ok and not stop.is_set() else 1
    return serve(settings, r, stop)


def build_service(settings: config.Settings, r, stop) -> Service:
    from app.storage.s3 import S3Store, make_client
    from app.storage.uploader import Uploader
    store = S3Store(make_client(settings.s3.endpoint_url, settings.s3.region), settings.s3.bucket,
                    settings.s3.endpoint_url)
    return Service(settings, r, Uploader(settings, store), stop)


def serve(settings: config.Settings, r, stop) -> int:
    """Upload until `stop` (idle without a bucket); 1 when the loop crashed."""
    if not settings.s3.bucket:
        idle_disabled(settings, r, stop)
        return 0
    # An interrupted put is simply not in the ledger and is sent again (same key) at the next start.
    return 0 if utils.run_in_worker(build_service(settings, r, stop).run, stop, "uploader") else 1

if __name__ == "__main__":
    sys.exit(main())
