"""The camera daemon: watches the camera, detects motion, records events, queues Slack alerts.

    python3 app/security_system.py            # the daemon (armed by /pycam_on or presence)
    python3 app/security_system.py --arm      # arm at start (the demo)
    python3 app/security_system.py --replay --source SRC --events-out FILE.jsonl
        [--frames-out FILE.csv] [--masks-out DIR] [--clock-origin EPOCH]   # offline, no Redis, no Slack

Its parts, each with one job: the camera source's life (capture.py over sources.py) and the
frame step here; the detector and trigger (pipeline.py); the verifier policy (verification.py, shared with replay);
the event recorder, the only writer of an event's files (recorder.py); the switches read from
Redis (control.py) and the events published to it (publisher.py).

Order of work for an alert: snapshot and metadata on disk, then (one Redis transaction) the
`events` stream, `latest_image` and the Slack job. Redis being down never stops the camera:
unpublished events wait in memory and on disk and are published once it is back.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import cv2

import config
from app import cameras, health, keys, live, outbox, schedule, state
from app.alarms import Board, clock, duration
from app.camera import clips
from app.camera.capture import Capture
from app.camera.control import ArmedMemory, RedisLink, Switches, read_switches
from app.camera.pipeline import Pipeline
from app.camera.publisher import Publisher, unpublished
from app.camera.recorder import EventRecorder
from app.camera.replay import run_replay
from app.camera.sources import SourceError, open_source
from app.camera.verification import Candidate, Verification
from app.camera.view import ViewWatch
from app.storage.events import EventStore, Scan, event_files
from app.utils import StopFlag, check_data_dir, disk_low, in_thread, redact, setup_logging

log = logging.getLogger("security_system")
PROCESS = "security_system"
CONTROL_S = 0.25          # how often the armed flag and the pan-tilt target are read
RETENTION_S = 600         # how often old events are pruned
SCAN_RETRY_S = 30         # after the events folder could not be listed
ALARMS_S = 0.5            # how often the view, the source and the disk are checked
DEFAULT_CAMERA = "pycam"  # camera.name's default: one camera, its alarms keep their plain names


class CameraDaemon:
    """The live loop. Collaborators (Redis client, source opener, pan-tilt, verifier) are injected."""

    def __init__(self, settings: config.Settings, r, stop, open_source=open_source,
                 pantilt=None, verifier=None, arm: bool = False):
        self.s = settings
        self.stop = stop
        self.capture = Capture(settings.camera, open_source)
        self.pantilt = pantilt
        self.verifier = verifier
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="verify") if verifier else None
        self.link = RedisLink(r)
        self.switches = Switches()
        self.store = EventStore(settings.data_dir, settings.events)
        # The store is scanned on a thread from the start (50,000 events take seconds to list,
        # tens on a Pi), whatever Redis does; frames go on meanwhile.
        self.store.scanning = True
        self.scanning: Future | None = in_thread(self._scan_store, "event-scan")
        self.to_check: list[dict] | None = None  # recent events to check against Redis (a crash)
        self.checking: Future | None = None      # that check, on a thread
        self.check_after = 0.0
        self.recorder = EventRecorder(self.store, settings.camera.name, settings.events.jpeg_quality)
        self.publisher = Publisher(self.link, settings.events.stream_maxlen, lambda: self.switches,
                                   self.recorder.published, quiet=self._quiet, camera=settings.camera.name,
                                   own_outbox=settings.role == "camera")
        self.pipeline = Pipeline(settings)
        # Clips: the encoder that works here is found on a thread (a test encode); until then,
        # and without one, events are recorded without clips.
        self.clips = clips.Clips(settings.clips, self._clip_path, encoder=None)
        self.frame_time = 0.0
        self.choosing: Future | None = in_thread(lambda: clips.choose(settings.clips), "clip-encoder") \
            if settings.clips.enabled else None
        self.verifying: tuple[dict, Verification] | None = None   # an event waiting for its verdict
        self.arm_at_start = arm
        self.recovered = False
        # Fail armed: while Redis is away (or comes back empty) the last armed state on disk holds.
        self.memory = ArmedMemory(settings.data_dir, settings.camera.name if len(settings.camera_names) > 1 else None)
        self.switches.armed = arm or self.memory.load() is True
        if arm:
            self.memory.save(True)
        # Health and tamper alarms this daemon owns (app/alarms.py): its view, its source, its disk.
        # Named for this camera when there are several (the default name keeps the plain names).
        a, name = settings.alerts, settings.camera.name
        self.alarm = (lambda what: what) if name == DEFAULT_CAMERA else (lambda what: f"{what}@{name}")
        self.who = "the camera" if name == DEFAULT_CAMERA else f"camera {name}"
        self.board = Board(self.link.call, lambda: self.link.r, **{
            self.alarm("camera_view"): (a.covered_s, 2.0), self.alarm("camera_source"): (a.source_lost_s, 2.0),
            self.alarm("disk_writes"): (0.0, 5.0), self.alarm("disk_low"): (0.0, 60.0)})
        self.view = ViewWatch()
        self.view_restored = False
        self.seen = None                        # the working frame the view was last judged on
        self.disk_low: str | None = None        # the data disk is nearly full (checked with each heartbeat)
        self.next_alarms = 0.0
        self.next_control = self.next_beat = self.next_retention = 0.0
        self.next_live = 0.0                    # when the live view gets its next frame

    # ---------- control from Redis ----------
    def poll_control(self) -> None:
        """Read the switches (one round trip); keep the last values while Redis is down."""
        switches = self.link.call(read_switches, self.link.r, self.s.camera.name)
        if switches is None:
            return
        r = self.link.r
        if not self.recovered:   # first contact: --arm, defaults, and events a crash left unpublished
            self.recovered = True
            if self.arm_at_start:
                self.link.call(state.set_flag, r, keys.CAMERA_STATUS, True)
                switches.armed = switches.armed_known = True
            if switches.armed_known:
                self.link.call(state.init_flags, r)
        if not switches.armed_known:
            # Redis has no camera_status: it restarted without its data (or this is the first
            # run). The state the camera was in holds; never disarm silently. The home's flag and
            # this camera's own override are restored each as it was (another camera may be
            # restoring the home's flag too: the first one wins, both remember the same).
            home, own = self.memory.load_home()
            home = self.switches.armed if home is None else home
            self.link.call(r.set, keys.CAMERA_STATUS, json.dumps(home), nx=True)
            if own is not None:
                self.link.call(r.set, keys.camera(self.s.camera.name, "armed"), json.dumps(own), nx=True)
            self.link.call(state.init_flags, r)
            remembered = cameras.effective(home, own)
            if remembered:
                log.warning("Redis had lost camera_status; restored it (armed)")
                self._announce("pycam: Redis restarted without its data. The camera stays *armed*; "
                               "check /pycam_status.")
            switches.armed, switches.home, switches.own = remembered, home, own
        elif (switches.home, switches.own) != (self.switches.home, self.switches.own):
            self.memory.save(switches.armed, switches.home, switches.own)
        if switches.armed != self.switches.armed:
            self.set_armed(switches.armed, switches.home, switches.own)
        if switches.pantilt_target != self.switches.pantilt_target:
            self.move_camera(switches.pantilt_target)
        self.switches = switches

    def set_armed(self, armed: bool, home: bool | None = None, own: bool | None = None) -> None:
        """Arm (open the camera, learn the background afresh) or disarm (release the camera)."""
        self.switches.armed = armed
        self.memory.save(armed, home, own)
        log.info("Camera %s", "armed" if armed else "disarmed")
        if not armed:
            self._end_event()
            self.capture.close()
        else:
            self.capture.rearm()
            if self.capture.is_open:     # open for the live view: watching starts with a new background
                self.pipeline.relearn(time.time())

    def move_camera(self, target) -> None:
        """Point the Pan-Tilt HAT at the target, then re-learn the background (no alert for the move)."""
        if not isinstance(target, dict) or self.pantilt is None:
            return
        try:
            pan, tilt = self.pantilt.move(int(target["pan"]), int(target["tilt"]))
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
        position = {"pan": pan, "tilt": tilt, "present": present, "time": time.time()}
        self.link.call(state.set_json, self.link.r, keys.PANTILT_POSITION, position)
        self.link.call(state.set_json, self.link.r, keys.camera(self.s.camera.name, "position"), position)

    def _announce(self, text: str) -> bool:
        """One message to the owner's channel (through the notifier); False when Redis failed."""
        def send():
            outbox.enqueue(self.link.r, outbox.make_job("message", text=text))
            return True
        return self.link.call(send) is True

    def heartbeat(self) -> None:
        # A stream URL may carry a password (rtsp://user:pass@...): never put it in Redis.
        source = self.s.camera.source
        disk = self.recorder.disk_error
        self.disk_low = disk_low(self.s.data_dir, self.s.alerts.disk_free_mb)
        detail = {"source": source if "://" not in source else "stream", "frames": self.frames,
                  "events": self.recorder.count, "pending": self.publisher.waiting(),
                  "error": self.capture.error, "disk": disk,
                  "events_mb": round(self.store.total / 1e6, 1) if self.store.ready else None}
        status = self.capture.state if self.switches.armed else "disarmed"
        self.link.call(health.write_heartbeat, self.link.r, PROCESS, status, detail, self.s.heartbeat_ttl_s)
        self.link.call(cameras.beat, self.link.r, self.s.camera.name, status, self.switches.armed,
                       self.s.role == "camera")

    @property
    def frames(self) -> int:
        """Frames read since start."""
        return self.capture.frames

    # ---------- the frame step ----------
    def step(self) -> None:
        """Read and process one frame (armed and with an open source)."""
        frame = self.capture.read()
        if frame is None:            # the source ended or failed: so did the event
            self._end_event()
            return
        result, step = self.pipeline.step(frame.index, frame.time, frame.detect)
        self.frame_time = frame.time     # the clips' clock: a file read fast runs ahead of the wall's
        self.clips.feed(frame.time, frame.snapshot)
        self._live(frame)
        if step.ended is not None:
            self._end_event(step.ended)
        if step.alert is not None:
            self._alert(frame, step.alert)
        elif self.recorder.current is not None:
            self.recorder.moving(result.area)
        self._advance_verification(frame.time, frame, result)

    # ---------- events ----------
    def _alert(self, frame, alert) -> None:
        """Record the event on disk, then have it verified (or publish it at once)."""
        image = frame.snapshot()
        boxes = self.pipeline.scale_boxes(alert.boxes, image.shape[1])
        meta = self.recorder.record(image, boxes, alert, taken=time.time())
        if meta.get("stored", True):
            self.clips.start(meta["id"], frame.time)
        # One line per event on stdout, whatever the logging: what `make run` shows as it fires.
        print(f"EVENT {meta['id']} at {meta['time_iso']} area {alert.area:.3f} snapshot {meta['snapshot']}",
              flush=True)
        if self.pool is None:
            self.publisher.add(meta)
            return
        if self.verifying is not None:   # the previous event is still being judged
            self._judged(self.verifying[0], self.verifying[1].interrupt())
        self.verifying = (meta, Verification(self._submit, image, boxes, frame.time))

    def _submit(self, image, boxes):
        """Have the verifier judge one frame on its worker thread (the frame loop never waits)."""
        return self.pool.submit(self.verifier.verify, [image], boxes)

    def _candidate(self, frame, result) -> Candidate:
        """A newer frame of the event for the verifier to look at."""
        image = frame.snapshot()
        return Candidate(frame.index, frame.time, time.time(), image,
                         self.pipeline.scale_boxes(result.boxes, image.shape[1]), result.area)

    def _advance_verification(self, now: float, frame=None, result=None) -> None:
        if self.verifying is None:
            return
        meta, verification = self.verifying
        judgement = verification.advance(now, frame, result, self._candidate)
        if judgement is not None:
            self._judged(meta, judgement)

    def _judged(self, meta: dict, judgement) -> None:
        self.verifying = None
        self.recorder.judged(meta, judgement)
        self.publisher.add(meta)

    def _open(self) -> bool:
        """Open the source; a newly opened camera learns its background afresh."""
        if not self.capture.open():
            return False
        self.pipeline.relearn(time.time())
        return True

    def _end_event(self, ended=None) -> None:
        """An event ended (or the camera stopped): record its end and peak on disk, tell Slack,
        and let its clip run on for the post-roll."""
        closing = ended is None
        if closing:
            ended = self.pipeline.trigger.finish()
        meta = self.recorder.ended(ended.peak_area if ended is not None else None)
        if closing:
            self.clips.reset()           # the camera stopped: so does the clip
        else:
            self.clips.ended(self.frame_time)
        if meta is not None:
            self.publisher.changed(meta, "end")

    def _live(self, frame) -> None:
        """A frame for the live view, a few times a second, only while someone watches."""
        if not self.switches.watched or frame.time < self.next_live:
            return
        self.next_live = max(self.next_live + 1 / self.s.web.live_fps, frame.time)
        jpeg = live.encode(frame.snapshot(), self.s.web.live_width)
        self.link.call(live.publish, self.link.r, jpeg, frame.time)

    def watch_disarmed(self) -> None:
        """Disarmed, the camera is released, unless someone watches the live view and the owner
        allows it (`web.live_when_disarmed`): then it is opened for that alone (no detection, no
        events) and released when they leave."""
        self._advance_verification(time.time())       # an event from before the disarm gets its verdict
        if not (self.switches.watched and self.s.web.live_when_disarmed):
            if self.capture.is_open:
                self.capture.close()
            self.stop.wait(0.1)
            return
        if not self.capture.is_open and not self.capture.open():
            self.stop.wait(0.1)
            return
        frame = self.capture.read()
        if frame is not None:
            self._live(frame)

    def _held(self, event_id: str) -> dict | None:
        """The metadata dict the daemon holds for an event not yet published (being verified, or
        waiting for Redis): a change must go into that one, which is what gets published."""
        if self.verifying is not None and self.verifying[0]["id"] == event_id:
            return self.verifying[0]
        return next((m for kind, m in self.publisher.pending if kind == "event" and m["id"] == event_id), None)

    def _clip_path(self, event_id: str, ext: str):
        return event_files(self.s.data_dir, event_id)["clip" if ext == ".mp4" else "clip_gif"]

    def check_clips(self, results=None) -> None:
        """Take the encoder once found; record the clips finished since, and queue them for Slack."""
        if self.choosing is not None and self.choosing.done():
            future, self.choosing = self.choosing, None
            self.clips.encoder = future.result() if future.exception() is None else None
            if self.clips.encoder:
                log.info("Event clips: %s", self.clips.encoder)
        for result in self.clips.poll(self.frame_time) if results is None else results:
            meta = self.recorder.clipped(result, self._held(result.event_id))
            if meta is not None:
                self.publisher.changed(meta, "clip")

    # ---------- the loop ----------
    def _quiet(self, when: float) -> str | None:
        """The quiet-hours window open at `when`, in the schedule as last read from Redis."""
        windows = schedule.in_force(self.switches.schedule, self.s.schedule)["quiet"]
        return schedule.open_window(windows, datetime.fromtimestamp(when))

    def check_alarms(self, now: float) -> None:
        """Tell the owner when the camera goes blind, loses its source or its disk (and when each
        is over): debounced, once each way (app/alarms.py)."""
        if not self.board.restore():
            return
        if self.board.alarms[self.alarm("camera_view")].raised_since is not None and not self.view_restored:
            self.view.blind = True           # blind before a restart: over only once it shows a scene
        self.view_restored = True
        armed = self.switches.armed
        grey = self.pipeline.detector.last
        # Judged only on frames just read while armed: disarming, or losing the source, is
        # neither "covered" nor "sees again" (an alarm is left as it is meanwhile).
        if self.s.alerts.covered and armed and self.capture.is_open and grey is not None and grey is not self.seen:
            self.seen = grey
            self.board.check(self.alarm("camera_view"), self.view.update(grey, now), now, lambda since: (
                f"pycam: {self.who} sees nothing since {clock(since)}: its picture went uniform at once "
                "(the lens covered, blinded by a light, or the lights out). It keeps watching."),
                lambda since, ended: f"pycam: {self.who} sees again (blind for {duration(ended - since)}).")
        if armed:
            # The source's own error names it only as its kind (never a URL): see Capture.error.
            self.board.check(self.alarm("camera_source"), self.capture.state == "reopening", now, lambda since: (
                f"pycam: {self.who} is lost since {clock(since)} ({redact(self.capture.error) or 'no frames'}); "
                "pycam keeps trying to open it again."),
                lambda since, ended: f"pycam: {self.who} is back (lost for {duration(ended - since)}).")
        refused = self.recorder.disk_error
        if refused or self.recorder.written:  # over only once an event was written again
            self.board.check(self.alarm("disk_writes"), bool(refused), now, lambda since: (
                f"pycam: {refused}. The camera keeps watching and alerting, without pictures."),
                lambda since, ended: "pycam: events are written to disk again.")
        low = self.disk_low
        self.board.check(self.alarm("disk_low"), bool(low), now, lambda since: f"pycam: {low}.",
                         lambda since, ended: "pycam: the data disk has room again.")

    def _scan_store(self, delay: float = 0.0) -> Scan:
        time.sleep(delay)
        return self.store.scan(recent_days=2)

    def recover(self) -> None:
        """Between two frames: install the store's scan once it is done (then finish the events a
        crash cut short, and apply retention at once); once Redis answers too, queue every recent
        event that reached the disk but not Redis. Nothing here waits."""
        if self.scanning is not None and self.scanning.done():
            future, self.scanning = self.scanning, None
            try:
                scan = future.result()
            except OSError as e:
                log.warning("Could not list the events folder (%s); trying again in %d s", e, SCAN_RETRY_S)
                self.scanning = in_thread(lambda: self._scan_store(SCAN_RETRY_S), "event-scan")
                return
            self.store.install(scan)
            finished = []
            # Several cameras on this Pi share the data dir: each checks its own events, and the
            # first one finishes those a crash cut short (whose camera no file says yet).
            own = self.s.camera.name
            for event_id in self.store.finish_incomplete(own) if own == self.s.camera_names[0] else ():
                log.info("Event %s was cut short by a crash; finished and published now", event_id)
                finished.append(self.store.load(event_id))
            mine = scan.recent if len(self.s.camera_names) == 1 else \
                [m for m in scan.recent if m.get("camera") in (None, own)]
            self.to_check = mine + [m for m in finished if m]
            self.next_retention = 0.0
        if self.to_check is not None and self.checking is None and self.recovered and self.link.ok \
                and time.monotonic() >= self.check_after:
            metas = self.to_check
            self.checking = in_thread(lambda: unpublished(self.link.r, metas), "event-check")
        if self.checking is not None and self.checking.done():
            future, self.checking = self.checking, None
            try:
                missing = future.result()
            except state.REDIS_DOWN:
                self.check_after = time.monotonic() + CONTROL_S * 20    # again once Redis is back
                return
            self.to_check = None
            self.publisher.recover(missing, busy={self.verifying[0]["id"]} if self.verifying else set())

    def run(self) -> None:
        log.info("Camera daemon starting (source %s)", "stream" if "://" in self.s.camera.source
                 else self.s.camera.source)
        self._write_pantilt_position()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now >= self.next_control:
                    self.next_control = now + CONTROL_S
                    self.poll_control()
                    self.publisher.flush()
                self.recover()
                self.check_clips()
                if now >= self.next_alarms:
                    self.next_alarms = now + ALARMS_S
                    self.check_alarms(time.time())
                if now >= self.next_beat:
                    self.next_beat = now + self.s.heartbeat_s
                    self.heartbeat()
                if now >= self.next_retention:
                    self.next_retention = now + RETENTION_S
                    deleted = self.store.enforce_retention()
                    if deleted:
                        log.info("Retention deleted %d old events", deleted)
                if not self.capture.is_open:
                    self._advance_verification(time.time())   # the event ended with the source
                if not self.switches.armed:
                    self.watch_disarmed()
                    continue
                if not self.capture.is_open and not self._open():
                    self.stop.wait(0.1)
                    continue
                self.step()
        finally:
            self._end_event()
            self.capture.close()
            self.check_clips(self.clips.wait(timeout=10))
            # An event still being verified stays on disk unpublished (verified: null); the next
            # start publishes and notifies it, erring on the side of telling the owner.
            self.publisher.flush()
            if self.pool:
                self.pool.shutdown(wait=False, cancel_futures=True)
            self.link.call(health.write_heartbeat, self.link.r, PROCESS, "stopped", None, self.s.heartbeat_ttl_s)
            log.info("Camera daemon stopped")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="store_true", help="arm the camera at start")
    ap.add_argument("--replay", action="store_true", help="process a file offline, as fast as possible")
    ap.add_argument("--source", help="camera source (overrides the configured one)")
    ap.add_argument("--camera", metavar="NAME", help="one of this Pi's cameras (setting `cameras`): its name, "
                                                     "and its .env.NAME over .env")
    ap.add_argument("--events-out", help="replay: one JSON line per alert")
    ap.add_argument("--frames-out", help="replay: per-frame CSV (frame, time, motion, area, reason)")
    ap.add_argument("--masks-out", help="replay: foreground masks as PNG at the input size")
    ap.add_argument("--clock-origin", type=float, metavar="SECONDS",
                    help="replay: epoch time of the first frame (default: now, as a live camera's clock)")
    return ap.parse_args(argv)


def build_verifier(settings):
    """The configured verification chain, or None when it is only 'none'."""
    if list(settings.verifier.kind) in ([], ["none"]):
        return None
    from app.camera.verifier import build_verifier as build
    return build(settings.verifier, settings.data_dir)


def main(argv=None) -> int:
    args = parse_args(argv)
    # The per-frame work is small: OpenCV's worker threads would cost more CPU than they save.
    cv2.setNumThreads(1)
    if args.camera is not None:
        if not config.CAMERA_NAME.fullmatch(args.camera):
            raise SystemExit(f"pycam: --camera {args.camera!r}: a camera name is 1 to 40 letters, digits, - or _")
        os.environ["PYCAM_CAMERA_NAME"] = args.camera
        # Its own .env.NAME wins over .env, which the launchers (systemd, scripts/pycam) exported.
        os.environ.update(config.camera_dotenv(args.camera))
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
            run_replay(settings, args.events_out, args.frames_out, args.masks_out, verifier,
                       clock_origin=args.clock_origin)
        except SourceError as e:
            raise SystemExit(f"pycam: {e}") from None
        return 0
    check_data_dir(settings.data_dir)
    # Two cameras on one Pi: a log file each.
    setup_logging(f"{PROCESS}@{args.camera}" if args.camera else PROCESS, settings.log_level, settings.logs_dir)
    try:
        verifier = build_verifier(settings)
    except config.ConfigError as e:
        raise SystemExit(f"pycam: {e}") from None
    stop = StopFlag().install()
    r = state.connect(settings.redis_url, PROCESS, socket_timeout=1.0, connect_timeout=0.5, retries=1)
    pantilt = None
    # One HAT per Pi: with several cameras it is the first one's.
    if settings.pantilt.enabled != "off" and settings.camera.name == settings.camera_names[0]:
        from app.camera.pantilt import open_pantilt
        pantilt = open_pantilt(settings.pantilt)
    CameraDaemon(settings, r, stop, pantilt=pantilt, verifier=verifier, arm=args.arm).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
