"""The camera daemon: watches the camera, detects motion, records events, queues Slack alerts.

    python3 app/security_system.py            # the daemon (armed by /pycam_on or presence)
    python3 app/security_system.py --arm      # arm at start (the demo)
    python3 app/security_system.py --replay --source SRC --events-out FILE.jsonl
        [--frames-out FILE.csv] [--masks-out DIR]   # offline, no Redis, no Slack

Order of work for an alert: snapshot and metadata on disk, then (one Redis transaction) the
`events` stream, `latest_image` and the Slack job. Redis being down never stops the camera:
unpublished events wait in memory and on disk and are published once it is back.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import cv2

import config
from app import keys, outbox, state
from app.camera import EndOfStream, SourceError, open_source
from app.events import EventStore, annotate, new_event_id
from app.pipeline import Pipeline, Recheck
from app.replay import run_replay
from app.utils import StopFlag, setup_logging

log = logging.getLogger("security_system")
PROCESS = "security_system"
CONTROL_S = 0.25          # how often the armed flag and the pan-tilt target are read
RETENTION_S = 600         # how often old events are pruned


class CameraDaemon:
    """The live loop. Collaborators (Redis client, source opener, pan-tilt) are injected."""

    def __init__(self, settings: config.Settings, r, stop, open_source=open_source,
                 pantilt=None, verifier=None, arm: bool = False):
        self.s = settings
        self.r = r
        self.stop = stop
        self.open_source = open_source
        self.pantilt = pantilt
        self.verifier = verifier
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="verify") if verifier else None
        self.store = EventStore(settings.data_dir, settings.events)
        self.pipeline = Pipeline(settings)
        self.source = None
        self.armed = False
        self.arm_at_start = arm
        self.notifications = True
        self.training = False
        self.redis_ok = False
        self.redis_retry_at = 0.0
        self.pending: list[dict] = []                         # recorded, not yet published
        self.verifying: dict | None = None                    # the event waiting for its verdict
        self.current: dict | None = None                      # metadata of the alerted, ongoing event
        self.reopen_delay = 1.0
        self.reopen_at = 0.0
        self.source_state = "closed"
        self.last_error = ""
        self.frames = 0
        self.events = 0
        self.pantilt_target = None
        self.next_control = 0.0
        self.next_beat = 0.0
        self.next_retention = 0.0
        self.recovered = False

    # ---------- Redis, never allowed to stall or stop the frame loop ----------
    def _redis(self, fn, *args, **kwargs):
        """Run a Redis call; on failure mark Redis down for a while and return None."""
        now = time.monotonic()
        if not self.redis_ok and now < self.redis_retry_at:
            return None
        try:
            result = fn(*args, **kwargs)
        except state.REDIS_DOWN as e:
            if self.redis_ok or self.redis_retry_at == 0.0:
                log.warning("Redis unreachable (%s); the camera keeps recording", type(e).__name__)
            self.redis_ok = False
            self.redis_retry_at = now + 1.0
            return None
        if not self.redis_ok:
            log.info("Redis reachable")
            self.redis_ok = True
        return result

    def poll_control(self) -> None:
        """Read the flags and the pan-tilt target (one round trip); keep the last values if Redis is down."""
        def read():
            pipe = self.r.pipeline(transaction=False)
            for key in (keys.CAMERA_STATUS, keys.CAMERA_NOTIFICATIONS, keys.TRAINING_MODE, keys.PANTILT):
                pipe.get(key)
            return pipe.execute()
        values = self._redis(read)
        if values is None:
            return
        if not self.recovered:
            self.recovered = True
            self._redis(state.init_flags, self.r)
            if self.arm_at_start:
                self._redis(state.set_flag, self.r, keys.CAMERA_STATUS, True)
                values[0] = "true"
            self._recover_unpublished()
        flag = lambda raw, key: json.loads(raw) is True if raw else keys.FLAG_DEFAULTS[key]
        try:
            armed = flag(values[0], keys.CAMERA_STATUS)
            self.notifications = flag(values[1], keys.CAMERA_NOTIFICATIONS)
            self.training = flag(values[2], keys.TRAINING_MODE)
            target = json.loads(values[3]) if values[3] else None
        except ValueError:
            log.warning("Ignoring a non-JSON control value in Redis")
            return
        if armed != self.armed:
            self.set_armed(armed)
        if target != self.pantilt_target:
            self.pantilt_target = target
            self.move_camera(target)

    def set_armed(self, armed: bool) -> None:
        """Arm (open the camera, learn the background afresh) or disarm (release the camera)."""
        self.armed = armed
        log.info("Camera %s", "armed" if armed else "disarmed")
        if not armed:
            self._end_event()
            self._close_source()
        else:
            self.reopen_at = 0.0
            self.reopen_delay = 1.0

    def move_camera(self, target) -> None:
        """Point the Pan-Tilt HAT at the target, then re-learn the background (no alert for the move)."""
        if not isinstance(target, dict) or self.pantilt is None:
            return
        try:
            pan, tilt = int(target["pan"]), int(target["tilt"])
            pan, tilt = self.pantilt.move(pan, tilt)
        except (KeyError, TypeError, ValueError, OSError) as e:
            log.warning("Pan-tilt move to %r failed: %s", target, e)
            return
        self.stop.wait(self.s.pantilt.settle_s)
        self.pipeline.relearn(time.time())
        self._write_pantilt_position(pan, tilt)
        log.info("Camera moved to pan %d tilt %d; background re-learned", pan, tilt)

    def _write_pantilt_position(self, pan=None, tilt=None) -> None:
        present = self.pantilt is not None
        if present and pan is None:
            try:
                pan, tilt = self.pantilt.position()
            except OSError:
                pass
        self._redis(state.set_json, self.r, keys.PANTILT_POSITION,
                    {"pan": pan, "tilt": tilt, "present": present, "time": time.time()})

    def heartbeat(self) -> None:
        if not self.armed:
            st = "disarmed"
        else:
            st = self.source_state
        # A stream URL may carry a password (rtsp://user:pass@...): never put it in Redis.
        detail = {"source": self.s.camera.source if "://" not in self.s.camera.source else "stream",
                  "frames": self.frames, "events": self.events, "pending": len(self.pending),
                  "error": self.last_error}
        self._redis(state.write_heartbeat, self.r, PROCESS, st, detail, self.s.heartbeat_ttl_s)

    # ---------- the camera ----------
    def _close_source(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None
        self.source_state = "closed"

    def _open(self) -> bool:
        now = time.monotonic()
        if now < self.reopen_at:
            return False
        try:
            self.source = self.open_source(self.s.camera)
        except SourceError as e:
            self.last_error = str(e)
            self.source_state = "reopening"
            log.warning("%s; retrying in %.0f s", e, self.reopen_delay)
            self.reopen_at = now + self.reopen_delay
            self.reopen_delay = min(self.reopen_delay * 2, self.s.camera.reopen_max_s)
            return False
        self.source_state = "running"
        self.last_error = ""
        self.reopen_delay = 1.0
        self.pipeline.relearn(time.time())
        log.info("Camera source open (%.1f fps)", getattr(self.source, "fps", 0) or 0)
        return True

    def step(self) -> None:
        """Read and process one frame (armed and with an open source)."""
        try:
            frame = self.source.read()
        except EndOfStream:
            log.info("The file source ended; idle until disarmed and re-armed")
            self._end_event()
            self._close_source()
            self.source_state = "ended"
            self.reopen_at = float("inf")
            return
        except SourceError as e:
            self.last_error = str(e)
            log.warning("%s; reopening", e)
            self._end_event()
            self._close_source()
            self.source_state = "reopening"
            return
        self.frames += 1
        result, step = self.pipeline.step(frame.index, frame.time, frame.detect)
        if step.ended is not None:
            self._end_event(step.ended)
        if step.alert is not None:
            self._record(frame, step.alert)
        elif self.current is not None:
            self.current["peak_area"] = max(self.current["peak_area"], round(result.area, 5))
        if self.verifying is not None:
            self._advance_verification(frame.time, frame, result)

    # ---------- events ----------
    def _record(self, frame, ev) -> None:
        """Write the event to disk, then queue it for Redis (and Slack)."""
        image = frame.snapshot()
        boxes = self.pipeline.scale_boxes(ev.boxes, image.shape[1])
        when = time.time()
        event_id = new_event_id(when)
        label = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.s.events.jpeg_quality]
        snap = cv2.imencode(".jpg", annotate(image, boxes, label), quality)[1].tobytes()
        clean = cv2.imencode(".jpg", image, quality)[1].tobytes()
        meta = {"id": event_id, "camera": self.s.camera.name, "time": when,
                "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when)),
                "start_time": when - (ev.alert_time - ev.start_time),
                "area": round(ev.area, 5), "peak_area": round(ev.peak_area, 5), "boxes": boxes,
                "frame_size": [image.shape[1], image.shape[0]], "verified": None,
                "notified": False}
        meta = self.store.save(meta, snap, clean)
        self.events += 1
        self.current = meta
        log.info("Event %s area %.3f boxes %s -> %s", event_id, ev.area, boxes, meta["snapshot"])
        # One line per event on stdout, whatever the logging: what `make run` shows as it fires.
        print(f"EVENT {event_id} at {meta['time_iso']} area {ev.area:.3f} snapshot {meta['snapshot']}",
              flush=True)
        if self.pool is None:
            self.pending.append(meta)
            self.publish_pending()
            return
        if self.verifying is not None:   # the previous event's verdict is still out: notify it
            self._finish_verification(None, None)
        self.verifying = {"meta": meta, "recheck": Recheck(frame.time), "candidate": None,
                          "future": self.pool.submit(self.verifier.verify, [image], boxes)}

    def _advance_verification(self, now: float, frame=None, result=None) -> None:
        """Off the frame loop, the verifier judges the event; refused, it looks again at newer
        frames while the event goes on (a person entering close shows only a head at first)."""
        v = self.verifying
        if not v["future"].done():
            return
        verdict = v["future"].result()
        if verdict.passed:
            self._finish_verification(True, verdict)
        elif frame is not None and v["meta"] is self.current and v["recheck"].due(now, result.motion):
            v["recheck"].checked(frame.time)
            image = frame.snapshot()
            boxes = self.pipeline.scale_boxes(result.boxes, image.shape[1])
            v["candidate"] = (image, boxes)
            v["future"] = self.pool.submit(self.verifier.verify, [image], boxes)
        elif v["meta"] is not self.current or v["recheck"].expired(now):
            self._finish_verification(False, verdict)

    def _finish_verification(self, passed: bool | None, verdict) -> None:
        """Record the verdict; a pass on a later frame makes that frame the event's snapshot."""
        v, self.verifying = self.verifying, None
        meta = v["meta"]
        meta["verified"] = passed
        if verdict is not None:
            meta["verifier"] = {"stage": verdict.stage, "score": round(float(verdict.score), 3),
                                "reason": verdict.reason}
        if passed and v["candidate"] is not None:
            image, boxes = v["candidate"]
            label = time.strftime("%Y-%m-%d %H:%M:%S")
            quality = [cv2.IMWRITE_JPEG_QUALITY, self.s.events.jpeg_quality]
            meta["boxes"] = boxes
            meta.update(self.store.save(
                meta, cv2.imencode(".jpg", annotate(image, boxes, label), quality)[1].tobytes(),
                cv2.imencode(".jpg", image, quality)[1].tobytes()))
        if passed is False:
            log.info("Event %s not notified: %s", meta["id"], verdict.reason)
        self.pending.append(meta)
        self.publish_pending()

    def _end_event(self, ev=None) -> None:
        """An event ended: record its end and peak on disk."""
        if ev is None:
            ev = self.pipeline.trigger.finish()
        if self.current is not None and ev is not None:
            self.current["end_time"] = time.time()
            self.current["peak_area"] = max(self.current["peak_area"], round(ev.peak_area, 5))
            self.store.update(self.current)
        self.current = None

    def publish_pending(self) -> None:
        """Publish recorded events in order: events stream, latest image, Slack job, in one transaction."""
        while self.pending:
            meta = self.pending[0]
            if self._redis(self._publish, meta) is None:
                return
            self.pending.pop(0)
            self.store.update(meta)

    def _publish(self, meta: dict) -> bool:
        if self.r.exists(keys.event_published(meta["id"])):
            return True
        notify = self.notifications and meta.get("verified") is not False
        meta["notified"] = notify
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(keys.EVENTS, {"event": json.dumps(meta)}, maxlen=self.s.events.stream_maxlen,
                  approximate=True)
        pipe.set(keys.LATEST_IMAGE, json.dumps({"event_id": meta["id"], "path": meta["snapshot"],
                                                "time": meta["time"]}))
        if meta.get("verified") is False:
            pipe.incr(keys.UNVERIFIED_COUNT)
        if notify:
            outbox.enqueue(pipe, outbox.make_job(
                "alert", f"alert:{meta['id']}", event_id=meta["id"], time=meta["time"],
                area=meta["area"], snapshot=meta["snapshot"], boxes=meta["boxes"],
                training=self.training))
        pipe.set(keys.event_published(meta["id"]), 1, ex=30 * 86400)
        pipe.execute()
        return True

    def _recover_unpublished(self) -> None:
        """After a restart: publish events that reached the disk but not Redis."""
        known = {m["id"] for m in self.pending}
        for meta in self.store.recent():
            if meta["id"] not in known and not self.r.exists(keys.event_published(meta["id"])):
                log.info("Publishing event %s recorded before a restart", meta["id"])
                self.pending.append(meta)

    # ---------- the loop ----------
    def run(self) -> None:
        log.info("Camera daemon starting (source %s)", self.s.camera.source)
        self._write_pantilt_position()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now >= self.next_control:
                    self.next_control = now + CONTROL_S
                    self.poll_control()
                    if self.pending:
                        self.publish_pending()
                if now >= self.next_beat:
                    self.next_beat = now + self.s.heartbeat_s
                    self.heartbeat()
                if now >= self.next_retention:
                    self.next_retention = now + RETENTION_S
                    deleted = self.store.enforce_retention()
                    if deleted:
                        log.info("Retention deleted %d old events", deleted)
                if self.verifying is not None and self.source is None:
                    self._advance_verification(time.time())   # the event ended with the source
                if not self.armed or (self.source is None and not self._open()):
                    self.stop.wait(0.1)
                    continue
                self.step()
        finally:
            self._end_event()
            self._close_source()
            # An event still being verified stays on disk unpublished (verified: null); the next
            # start publishes and notifies it, erring on the side of telling the owner.
            if self.pending:
                self.publish_pending()
            if self.pool:
                self.pool.shutdown(wait=False, cancel_futures=True)
            self._redis(state.write_heartbeat, self.r, PROCESS, "stopped", None, self.s.heartbeat_ttl_s)
            log.info("Camera daemon stopped")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="store_true", help="arm the camera at start")
    ap.add_argument("--replay", action="store_true", help="process a file offline, as fast as possible")
    ap.add_argument("--source", help="camera source (overrides the configured one)")
    ap.add_argument("--events-out", help="replay: one JSON line per alert")
    ap.add_argument("--frames-out", help="replay: per-frame CSV (frame, time, motion, area, reason)")
    ap.add_argument("--masks-out", help="replay: foreground masks as PNG at the input size")
    return ap.parse_args(argv)


def build_verifier(settings):
    """The configured verification chain, or None when it is only 'none'."""
    if list(settings.verifier.kind) in ([], ["none"]):
        return None
    from app.verifier import build_verifier as build
    return build(settings.verifier, settings.data_dir)


def main(argv=None) -> int:
    args = parse_args(argv)
    # The per-frame work is small: OpenCV's worker threads would cost more CPU than they save.
    cv2.setNumThreads(1)
    settings = config.load_or_exit()
    if args.source:
        settings.camera.source = args.source
    if args.replay:
        setup_logging(PROCESS, "WARNING")
        if not args.events_out:
            raise SystemExit("pycam: --replay needs --events-out FILE.jsonl")
        try:
            verifier = build_verifier(settings)
        except config.ConfigError as e:
            raise SystemExit(f"pycam: {e}") from None
        try:
            run_replay(settings, args.events_out, args.frames_out, args.masks_out, verifier)
        except SourceError as e:
            raise SystemExit(f"pycam: {e}") from None
        return 0
    setup_logging(PROCESS, settings.log_level, settings.logs_dir)
    try:
        verifier = build_verifier(settings)
    except config.ConfigError as e:
        raise SystemExit(f"pycam: {e}") from None
    stop = StopFlag().install()
    r = state.connect(settings.redis_url, PROCESS, socket_timeout=1.0, connect_timeout=0.5, retries=1)
    pantilt = None
    if settings.pantilt.enabled != "off":
        from app.pantilt import open_pantilt
        pantilt = open_pantilt(settings.pantilt)
    CameraDaemon(settings, r, stop, pantilt=pantilt, verifier=verifier, arm=args.arm).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
