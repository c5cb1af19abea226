"""The event recorder: the one writer of an event's files while the camera daemon runs.

An event is on disk before anyone is told: the annotated snapshot and the clean frame, then its
metadata (written last, so its presence means the event is complete). Later writes change only
the metadata (verdict, end, peak, whether it was notified, its clip), or replace the pictures with
the frame the verifier passed. Layout, atomic writes and retention: app/storage/events.py.

A full (or failing) disk never stops the camera: the oldest event is given up to make room, and
if the write still fails the event goes on without its pictures (`stored: false`; the owner is
still alerted, with text) and `disk_error` says why until a write succeeds again.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict

import cv2

from app.camera.verification import Judgement
from app.storage.events import EventStore, new_event_id

log = logging.getLogger("security_system")


def annotate(image, boxes, label: str):
    """A copy of `image` with the motion boxes and a time label drawn on it."""
    out = image.copy()
    for x, y, w, h in boxes:
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
    cv2.putText(out, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3)
    cv2.putText(out, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1)
    return out


class EventRecorder:
    """Writes events to disk through an EventStore; `current` is the alerted event still going on."""

    def __init__(self, store: EventStore, camera: str, jpeg_quality: int):
        self.store = store
        self.camera = camera
        self.quality = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self.current: dict | None = None
        # The last events' metadata, one dict each, shared by whoever changes them (the verifier's
        # verdict, the end, the clip): a change never overwrites another with a stale copy.
        self.recent: OrderedDict[str, dict] = OrderedDict()
        self.count = 0
        self.disk_error: str | None = None   # why the last write failed; None once writes succeed
        self.written = False                 # an event was written since start (the disk takes writes)

    def _jpegs(self, image, boxes, taken: float) -> tuple[bytes, bytes]:
        """The annotated snapshot (stamped with the time the frame was taken) and the clean frame."""
        label = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(taken))
        snap = cv2.imencode(".jpg", annotate(image, boxes, label), self.quality)[1].tobytes()
        clean = cv2.imencode(".jpg", image, self.quality)[1].tobytes()
        return snap, clean

    def record(self, image, boxes, alert, taken: float) -> dict:
        """A new event from its trigger frame (taken at wall time `taken`); returns its metadata."""
        event_id = new_event_id(taken)
        meta = {"id": event_id, "camera": self.camera, "time": taken,
                "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(taken)),
                "start_time": taken - (alert.alert_time - alert.start_time),
                "area": round(alert.area, 5), "peak_area": round(alert.peak_area, 5), "boxes": boxes,
                "frame_size": [image.shape[1], image.shape[0]], "verified": None, "notified": False}
        meta = self._save(meta, *self._jpegs(image, boxes, taken))
        self.count += 1
        self.current = meta
        self.recent[event_id] = meta
        while len(self.recent) > 8:
            self.recent.popitem(last=False)
        log.info("Event %s area %.3f boxes %s -> %s", event_id, alert.area, boxes, meta["snapshot"])
        return meta

    def moving(self, area: float) -> None:
        """The current event moved again: keep its peak (written when it ends)."""
        if self.current is not None:
            self.current["peak_area"] = max(self.current["peak_area"], round(area, 5))

    def judged(self, meta: dict, judgement: Judgement) -> None:
        """Record the verdict; a pass on a later frame makes that frame the event's pictures."""
        meta["verified"] = judgement.passed
        verdict = judgement.verdict
        if verdict is not None:
            meta["verifier"] = {"stage": verdict.stage, "score": round(float(verdict.score), 3),
                                "reason": verdict.reason}
        candidate = judgement.candidate
        if judgement.passed and candidate is not None and meta.get("stored", True):
            self._replace_pictures(meta, candidate)
        else:
            self._update(meta)
        if judgement.passed is False:
            log.info("Event %s not notified: %s", meta["id"], verdict.reason)

    def _replace_pictures(self, meta: dict, candidate) -> None:
        """The frame the verifier passed becomes the event's pictures; if the disk refuses, the
        trigger frame's stay and the verdict is recorded all the same."""
        try:
            meta.update(self.store.save(dict(meta, boxes=candidate.boxes),
                                        *self._jpegs(candidate.image, candidate.boxes, candidate.taken)))
        except OSError as e:
            self._failed(e)
            self._update(meta)

    def ended(self, peak_area: float | None) -> dict | None:
        """The current event ended: record its end and peak; returns its metadata."""
        meta, self.current = self.current, None
        if meta is not None:
            meta["end_time"] = time.time()
            if peak_area is not None:
                meta["peak_area"] = max(meta["peak_area"], round(peak_area, 5))
            self._update(meta)
        return meta

    def clipped(self, result, meta: dict | None = None) -> dict | None:
        """An event's clip is written (app/camera/clips.py): record it in `meta` (the dict the
        daemon still holds for the event, else the one on disk); returns the metadata, or None when
        there is no clip (it failed) or no event any more (retention took it meanwhile)."""
        if result.path is None:
            log.warning("No clip for event %s: %s", result.event_id, result.error)
            return None
        meta = meta or self.recent.get(result.event_id) or self.store.load(result.event_id)
        gone = not self.store.event_files(result.event_id)["meta"].exists()
        if meta is None or gone or not meta.get("stored", True):
            result.path.unlink(missing_ok=True)
            return None
        meta["clip"] = str(result.path.relative_to(self.store.data_dir))
        meta["clip_s"] = round(result.seconds, 1)
        self._update(meta)
        log.info("Clip of event %s: %.1f s (%d frames, %d dropped, encoder CPU %.2f s)", result.event_id,
                 result.seconds, result.frames, result.dropped, result.cpu_s)
        return meta

    def published(self, meta: dict) -> None:
        """The event reached Redis (and its alert was queued, when `notified`)."""
        self._update(meta)

    def _save(self, meta: dict, snapshot: bytes, clean: bytes) -> dict:
        """The store's save; on a refusal, make room by the oldest event and try once more."""
        for attempt in (1, 2):
            try:
                saved = self.store.save(meta, snapshot, clean)
                break
            except OSError as e:
                if attempt == 2 or not self.store.evict_oldest(keep=meta["id"]):
                    self._failed(e)
                    return dict(meta, snapshot=None, clean=None, stored=False)
        if self.disk_error:
            log.info("Events are written to disk again")
        self.disk_error = None
        self.written = True
        return saved

    def _update(self, meta: dict) -> None:
        if not meta.get("stored", True):
            return
        try:
            self.store.update(meta)
        except OSError as e:
            self._failed(e)

    def _failed(self, e: OSError) -> None:
        why = f"cannot write events: {e.strerror or e}"
        if why != self.disk_error:
            log.error("%s; the camera keeps watching and alerting without pictures", why)
        self.disk_error = why
