"""Event clips while the camera runs: frames dropped, the frame step's cost, the encoder's CPU per
clip-second, trigger to the first Slack message, and the event's end to its clip in the thread.

    .venv/bin/python -m bench.clips [--seconds 40]

The real camera daemon and the real notifier (a thread each, as in app/services.py) against their
own redis-server and the fake Slack Web API (tests/slack_fakes.py). The camera is the one part
faked: it delivers 1280x720 frames at 10 fps on a fixed schedule, as a Pi camera does, and a frame
the daemon is not ready for when the next one is due counts as dropped. A person-sized shape walks
through the scene every 12 s. The run is made twice, clips off and on, for the step's cost (the frame's work, without the wait
for it). "end_to_clip_in_thread_s" counts from the end of the motion, so it includes the post-roll.
Results are printed and written to bench/out/clips.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

import config
from app import keys, state
from app.camera.daemon import CameraDaemon
from app.camera.sources import Frame
from app.slack.notifier import Notifier
from app.utils import StopFlag
from tests.conftest import RedisServer
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack

SAMPLE = config.ROOT / "sample" / "one-by-one-person-detection.mp4"
OUT = Path(__file__).resolve().parent / "out" / "clips.json"
SIZE, FPS = (1280, 720), 10.0
# Someone crosses every 12 s (after 6 s of warm-up), for 5, 4 or 2 s in turn.
WALKS = [(6.0 + 12 * i, 6.0 + 12 * i + (5, 4, 2)[i % 3]) for i in range(100)]


class PacedCamera:
    """Frames due every 1/FPS s from the start; one not taken before the next is due is dropped."""

    def __init__(self, t0: float):
        cap = cv2.VideoCapture(str(SAMPLE))
        ok, first = cap.read()
        self.background = cv2.resize(first, SIZE) if ok else np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        self.t0, self.index, self.dropped, self.late = t0, -1, 0, []
        self.waited = 0.0                 # time the last read spent waiting for its frame

    def open(self, cfg):
        return self

    def read(self) -> Frame:
        now = time.monotonic() - self.t0
        due = (self.index + 1) / FPS
        if now > due + 1 / FPS:                       # missed slots: those frames were overwritten
            missed = int((now - due) * FPS)
            self.dropped += missed
            self.index += missed
            due = (self.index + 1) / FPS
        self.waited = max(0.0, due - now)
        if due > now:
            time.sleep(due - now)
        self.late.append(max(0.0, now - due))
        self.index += 1
        t = self.index / FPS
        img = self.background.copy()
        for start, end in WALKS:
            if start <= t < end:
                x = int((t - start) / (end - start) * (SIZE[0] - 160))
                cv2.rectangle(img, (x, 200), (x + 140, 640), (40, 30, 30), -1)
                cv2.circle(img, (x + 70, 160), 45, (60, 50, 50), -1)
        return Frame(self.index, time.time(), img, lambda: img)

    def close(self) -> None:
        pass


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def one_run(tmp: Path, seconds: float, clips_on: bool) -> dict:
    server = RedisServer(tmp / "redis")
    (tmp / "redis").mkdir()
    server.start()
    fake = FakeSlack().start()
    try:
        env = {"REDIS_URL": server.url, "PYCAM_DATA_DIR": str(tmp / "data"), "SLACK_BOT_TOKEN": TOKEN,
               "SLACK_CHANNEL_ID": CHANNEL, "SLACK_API_URL": fake.api_url, "PYCAM_CLIPS": str(clips_on).lower()}
        settings = config.load_settings(env=env, config_path=None)
        r = state.connect(server.url, "bench")
        r.set(keys.CAMERA_STATUS, "true")
        stop = StopFlag()
        t0 = time.monotonic()
        camera = PacedCamera(t0)
        daemon = CameraDaemon(settings, r, stop, open_source=camera.open)
        steps: list[float] = []
        clip_results = []
        step, clipped = daemon.step, daemon.recorder.clipped

        def timed_step():
            s = time.perf_counter()
            step()
            steps.append(time.perf_counter() - s - camera.waited)   # the work, not the wait for a frame

        def record_clip(result, meta=None):
            clip_results.append((result, time.time()))
            return clipped(result, meta)

        daemon.step, daemon.recorder.clipped = timed_step, record_clip
        notifier = Notifier(settings, state.connect(server.url, "bench-notifier"), stop=stop)
        threads = [threading.Thread(target=daemon.run), threading.Thread(target=notifier.run)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        time.sleep(settings.clips.post_s + 4)          # the last clip's post-roll and its upload
        stop.set()
        for t in threads:
            t.join(15)
        events = [json.loads(f["event"]) for _, f in r.xrange(keys.EVENTS)]
        posts = fake.accepted("chat.postMessage")
        first_post = {}
        for c in posts:
            for b in c.params.get("blocks") or []:
                if b.get("block_id", "").startswith("event:"):
                    first_post.setdefault(b["block_id"][6:], c.time)
        to_slack = [first_post[e["id"]] - e["time"] for e in events if e["id"] in first_post]
        uploads = {f["name"]: f["at"] for f in fake.shared}
        ends = {}
        for e in events:
            meta = json.loads(next((tmp / "data" / "events").glob(f"*/{e['id']}.json")).read_text())
            if meta.get("clip") and Path(meta["clip"]).name in uploads and meta.get("end_time"):
                ends[e["id"]] = uploads[Path(meta["clip"]).name] - meta["end_time"]
        clip_s = sum(res.seconds for res, _ in clip_results)
        cpu = sum(res.cpu_s for res, _ in clip_results)
        return {
            "clips": clips_on, "frames": camera.index + 1, "dropped": camera.dropped,
            "step_ms": {"p50": round(statistics.median(steps) * 1000, 2), "p99": round(pct(steps, 99) * 1000, 2),
                        "max": round(max(steps) * 1000, 2)},
            "events": len(events), "messages": len(posts),
            "trigger_to_first_message_s": {"p50": round(statistics.median(to_slack), 3) if to_slack else None,
                                           "p99": round(pct(to_slack, 99), 3), "n": len(to_slack)},
            "clips_written": [{"seconds": r.seconds, "frames": r.frames, "dropped": r.dropped,
                               "cpu_s": round(r.cpu_s, 3), "error": r.error} for r, _ in clip_results],
            "encoder": daemon.clips.encoder,
            "encoder_cpu_per_clip_second": round(cpu / clip_s, 4) if clip_s else None,
            "end_to_clip_in_thread_s": sorted(round(v, 2) for v in ends.values()),
        }
    finally:
        fake.close()
        server.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    runs = []
    for clips_on in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(Path(tmp), args.seconds, clips_on))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(runs, indent=1))
    for run in runs:
        print(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
