"""Replay: the live detection and trigger code run over every frame of a file, as fast as possible,
with no Redis and no Slack. Used to tune the detector and by the benchmarks.

One JSON line per alert: trigger_frame (0-based, decode order), start_frame, end_frame,
trigger_time (seconds into the file), peak_area (fraction of the frame), area, boxes (input pixels) and, when a verifier
is configured, its verdict. The verifier runs by the live policy, the same code
(app/camera/verification.py): on the trigger frame, then, while a refused event keeps moving, on a
newer frame every 0.5 s for up to 10 s; an alert that passes late carries the frame it passed on as
trigger_frame. Only the verifier's speed differs: replay waits for each verdict. Alerts the
verifier refuses are not written: the output is what the owner would have been sent.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

import config
from app.camera.sources import EndOfStream, open_source
from app.camera.pipeline import Pipeline
from app.camera.verification import Candidate, Judgement, Verification, run_now


def run_replay(settings: config.Settings, events_out: str, frames_out: str | None = None,
               masks_out: str | None = None, verifier=None, clock_origin: float | None = None) -> list[dict]:
    """Replay settings.camera.source; write and return the alerts.

    Frame i is timed at clock_origin + i / fps (default origin: now), in epoch seconds as live.
    """
    source = open_source(settings.camera, realtime=False, loop=False, clock_origin=clock_origin)
    pipeline = Pipeline(settings)
    alerts: list[dict] = []
    open_alert: dict | None = None          # the alert whose event is still going on
    judging: tuple[dict, Verification] | None = None
    submit = run_now(verifier.verify) if verifier is not None else None
    frames_file = open(frames_out, "w", newline="") if frames_out else None
    writer = csv.writer(frames_file) if frames_file else None
    if writer:
        writer.writerow(["frame", "time", "motion", "area", "reason"])
    if masks_out:
        Path(masks_out).mkdir(parents=True, exist_ok=True)

    def candidate(frame, result) -> Candidate:
        image = frame.snapshot()
        return Candidate(frame.index, frame.time, frame.time, image,
                         pipeline.scale_boxes(result.boxes, image.shape[1]), result.area)

    try:
        while True:
            try:
                frame = source.read()
            except EndOfStream:
                break
            result, step = pipeline.step(frame.index, frame.time, frame.detect)
            if writer:
                writer.writerow([frame.index, f"{frame.time - source.origin:.3f}", int(result.motion),
                                 f"{result.area:.5f}", result.reason])
            if masks_out:
                h, w = frame.detect.shape[:2]
                out = (cv2.resize(result.mask, (w, h), interpolation=cv2.INTER_NEAREST)
                       if result.motion else np.zeros((h, w), np.uint8))
                cv2.imwrite(str(Path(masks_out) / f"{frame.index:06d}.png"), out)
            if step.ended is not None and open_alert is not None:
                open_alert["end_frame"] = step.ended.end_frame
                open_alert["peak_area"] = round(step.ended.peak_area, 5)
                open_alert = None
            if step.alert is not None:
                ev = step.alert
                image = frame.snapshot()
                boxes = pipeline.scale_boxes(ev.boxes, image.shape[1])
                open_alert = {"trigger_frame": ev.alert_frame, "start_frame": ev.start_frame,
                              "end_frame": ev.end_frame, "trigger_time": round(ev.alert_time - source.origin, 3),
                              "peak_area": round(ev.peak_area, 5), "area": round(ev.area, 5), "boxes": boxes}
                alerts.append(open_alert)
                if judging is not None:
                    _judged(judging[0], judging[1].interrupt(), source.origin)
                judging = (open_alert, Verification(submit, image, boxes, frame.time)) if submit else None
            elif open_alert is not None and result.motion:
                open_alert["end_frame"] = frame.index
                open_alert["peak_area"] = max(open_alert["peak_area"], round(result.area, 5))
            if judging is not None:
                alert, verification = judging
                judgement = verification.advance(frame.time, frame, result, candidate)
                if judgement is not None:
                    _judged(alert, judgement, source.origin)
                    judging = None
        if judging is not None:
            _judged(judging[0], judging[1].interrupt(), source.origin)
    finally:
        source.close()
        if frames_file:
            frames_file.close()
    sent = [a for a in alerts if a.get("verified", True)]
    with open(events_out, "w") as f:
        for alert in sent:
            f.write(json.dumps(alert) + "\n")
    return sent


def _judged(alert: dict, judgement: Judgement, origin: float) -> None:
    """Record a verifier's verdict on an alert; a pass on a later frame moves its trigger there."""
    verdict = judgement.verdict
    alert["verified"] = judgement.passed is not False   # no verdict at all: sent, as live
    if verdict is not None:
        alert["verifier"] = {"stage": verdict.stage, "score": round(float(verdict.score), 3),
                             "reason": verdict.reason}
    later = judgement.candidate
    if judgement.passed and later is not None:
        alert.update(trigger_frame=later.index, trigger_time=round(later.time - origin, 3), boxes=later.boxes,
                     area=round(later.area, 5))
