"""Several cameras on one Redis (issue 15): what a second camera daemon costs the first camera,
the notifier and the hub's Redis.

    .venv/bin/python -m bench.cameras [--seconds 90]

Two runs, each in a fresh child process of this one (so that memory one run freed cannot hide
the other's growth). Each run has its own redis-server, the fake Slack Web API
(tests/slack_fakes.py), the real notifier and bench/clips.py's PacedCamera: 1280x720 frames at
10 fps on a fixed schedule, a frame not taken in time is dropped, and a person-sized shape walks
through every 12 s.

  A  the camera daemon "front" alone;
  B  "front", then, WARMUP_S (17 s) after it, "garage" too: a second CameraDaemon thread on the
     same Redis and in the same data dir, as two cameras on one Pi run (PYCAM_CAMERAS=front,garage),
     with its own PacedCamera and settings (PYCAM_CAMERA_NAME=garage).
     Because it starts 12 + 5 s after front, its walks come 5 s after front's and the events
     interleave.

The notifier is the hub's, reading both cameras' pictures from the Pi's data dir ("files"
counts the snapshots and clips shared in Slack).

Clips stay on (the default). Both daemons are threads of one process, as in bench/clips.py, and
share one StopFlag. A run is front alone for WARMUP_S, then the measured window of --seconds (in
B, with garage), then the last clip's post-roll. For each camera, over the window:
- trigger to first Slack message: from the event's time (in the `events` stream) to the fake's
  chat.postMessage that carries the event, as bench/clips.py measures it;
- frames dropped, and the frame step's p50/p99 (its work, without the wait for the frame).
Hub memory, once the run is over: Redis `INFO memory` used_memory, DBSIZE, and MEMORY USAGE per
kind of key (`cameras`, each `camera:<name>:*`, the streams, per-event keys).
Process memory: the run's VmRSS (/proc/self/status) just before garage starts and at the end of
the window. B's growth minus A's (front's own growth over the same window) is what a second
camera costs as one more thread of the same process. It is an in-process estimate: a camera
daemon in a process of its own (app/security_system.py) costs that plus an interpreter and its
imports, of which "rss_mb.start" (a run's process before any daemon) gives a rough idea. Sharing
one process also means sharing one GIL, so B's frame step is, if anything, pessimistic. A run's
process sets cv2.setNumThreads(1), as the camera daemon's main() does.

Results are printed and written to bench/out/cameras.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2

import config
from app import keys, state
from app.camera.daemon import CameraDaemon
from app.slack.notifier import Notifier
from app.utils import StopFlag
from bench.clips import PacedCamera, pct
from tests.conftest import RedisServer
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack

OUT = Path(__file__).resolve().parent / "out" / "cameras.json"
ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 17.0   # front alone; garage then starts, its walks (6 s in, every 12 s) 5 s after front's


def rss_mb() -> float:
    """This process's resident memory (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


@dataclass
class Camera:
    """One camera daemon running as a thread, its paced camera, and its frame steps' times."""
    name: str
    paced: PacedCamera
    daemon: CameraDaemon
    thread: threading.Thread
    steps: list[float] = field(default_factory=list)
    marks: list[tuple[int, int, int]] = field(default_factory=list)   # (steps, dropped, frames) at window edges

    def mark(self) -> None:
        self.marks.append((len(self.steps), self.paced.dropped, self.paced.index + 1))


def camera_settings(name: str, names: list[str], data_dir: Path, redis_url: str, fake: FakeSlack) -> config.Settings:
    env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(data_dir), "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_CHANNEL_ID": CHANNEL, "SLACK_API_URL": fake.api_url, "PYCAM_CAMERA_NAME": name,
           "PYCAM_CAMERAS": ",".join(names)}
    return config.load_settings(env=env, config_path=None)


def start_camera(settings: config.Settings, stop: StopFlag) -> Camera:
    """A CameraDaemon on a paced camera, in a thread, its step timed (the work, not the wait)."""
    paced = PacedCamera(time.monotonic())
    daemon = CameraDaemon(settings, state.connect(settings.redis_url, f"bench-{settings.camera.name}"),
                          stop, open_source=paced.open)
    cam = Camera(settings.camera.name, paced, daemon, threading.Thread(target=daemon.run))
    step = daemon.step

    def timed_step():
        s = time.perf_counter()
        step()
        cam.steps.append(time.perf_counter() - s - paced.waited)

    daemon.step = timed_step
    cam.thread.start()
    return cam


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def first_posts(fake: FakeSlack) -> dict[str, float]:
    """Event id -> time of the first chat.postMessage carrying it."""
    first = {}
    for c in fake.accepted("chat.postMessage"):
        for b in c.params.get("blocks") or []:
            if b.get("block_id", "").startswith("event:"):
                first.setdefault(b["block_id"][6:], c.time)
    return first


def ms(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    return {"p50": round(statistics.median(values) * 1000, 1), "p99": round(pct(values, 99) * 1000, 1),
            "max": round(max(values) * 1000, 1), "n": len(values)}


def camera_figures(cam: Camera, events: list[dict], posts: dict[str, float], fake: FakeSlack,
                   window: tuple[float, float]) -> dict:
    """One camera's figures over the window (from its first mark to its last)."""
    (s0, d0, f0), (s1, d1, f1) = cam.marks[0], cam.marks[-1]
    mine = [e for e in events if e.get("camera") == cam.name and window[0] <= e["time"] < window[1]]
    latency = [posts[e["id"]] - e["time"] for e in mine if e["id"] in posts]
    ids = {e["id"] for e in mine}
    shared = sum(Path(f["name"]).stem in ids for f in fake.shared)     # <event id>.jpg and .mp4
    return {"frames": f1 - f0, "dropped": d1 - d0, "step_ms": ms(cam.steps[s0:s1]), "events": len(mine),
            "with_a_message": len(latency), "files_shared": shared,
            "trigger_to_first_message_ms": ms(latency)}


def kind(key: str) -> str:
    """A key's kind: its parts up to the first with a digit (an event or job id), so
    `slack:delivered:alert:20261130-120438-5a1a89` -> `slack:delivered:alert:*`; `cameras` and
    `camera:front:latest` stay as they are."""
    parts = key.split(":")
    n = next((i for i, p in enumerate(parts) if any(ch.isdigit() for ch in p)), len(parts))
    return key if n == len(parts) else ":".join(parts[:n] + ["*"])


def redis_figures(r) -> dict:
    """used_memory, DBSIZE, and the keys (and their MEMORY USAGE bytes) by kind."""
    by_kind: dict[str, dict] = defaultdict(lambda: {"keys": 0, "bytes": 0})
    for key in r.scan_iter(count=1000):
        k = by_kind[kind(key)]
        k["keys"] += 1
        k["bytes"] += r.memory_usage(key) or 0
    info = r.info("memory")
    return {"used_memory": info["used_memory"], "used_memory_dataset": info["used_memory_dataset"],
            "dbsize": r.dbsize(), "by_key": dict(sorted(by_kind.items()))}


def one_run(tmp: Path, seconds: float, names: list[str]) -> dict:
    """front (and garage from WARMUP_S on) with the notifier; figures over the window."""
    rss = {"start": rss_mb()}
    server = RedisServer(tmp / "redis")
    (tmp / "redis").mkdir()
    server.start()
    fake = FakeSlack().start()
    stop = StopFlag()
    try:
        r = state.connect(server.url, "bench")
        r.set(keys.CAMERA_STATUS, "true")
        hub = camera_settings(names[0], names, tmp / "data", server.url, fake)     # the notifier's too
        cams = [start_camera(hub, stop)]
        notifier = threading.Thread(target=Notifier(hub, state.connect(server.url, "bench-notifier"), stop=stop).run)
        notifier.start()
        sleep_until(cams[0].paced.t0 + WARMUP_S)
        rss["window_start"] = rss_mb()
        t_start = time.time()
        cams[0].mark()
        for name in names[1:]:
            cams.append(start_camera(camera_settings(name, names, tmp / "data", server.url, fake), stop))
            cams[-1].mark()
        sleep_until(cams[0].paced.t0 + WARMUP_S + seconds)
        for cam in cams:
            cam.mark()
        rss["window_end"] = rss_mb()
        t_end = time.time()
        time.sleep(hub.clips.post_s + 4)              # the last clip's post-roll and its upload
        stop.set()
        for t in [c.thread for c in cams] + [notifier]:
            t.join(15)
        events = [json.loads(f["event"]) for _, f in r.xrange(keys.EVENTS)]
        posts = first_posts(fake)
        return {"cameras": {c.name: camera_figures(c, events, posts, fake, (t_start, t_end)) for c in cams},
                "messages": len(fake.accepted("chat.postMessage")), "encoder": cams[0].daemon.clips.encoder,
                "rss_mb": rss, "redis": redis_figures(r)}
    finally:
        stop.set()
        fake.close()
        server.stop()


def run_child(seconds: float, names: list[str]) -> dict:
    """One run in a fresh process of its own; its result through a file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        subprocess.run([sys.executable, "-m", "bench.cameras", "--seconds", str(seconds),
                        "--child", ",".join(names), "--child-out", str(out)], cwd=ROOT, check=True)
        return json.loads(out.read_text())


def summary(a: dict, b: dict) -> dict:
    """The comparison: each camera's latency and drops alone and with two, and the memory costs."""
    grow = {run: r["rss_mb"]["window_end"] - r["rss_mb"]["window_start"] for run, r in (("A", a), ("B", b))}
    return {
        "cameras": {f"{name} ({run})": {"p50_ms": c["trigger_to_first_message_ms"]["p50"],
                                        "p99_ms": c["trigger_to_first_message_ms"]["p99"],
                                        "max_ms": c["trigger_to_first_message_ms"]["max"],
                                        "events": c["events"], "files_shared": c["files_shared"],
                                        "dropped": c["dropped"], "frames": c["frames"],
                                        "step_p50_ms": c["step_ms"]["p50"], "step_p99_ms": c["step_ms"]["p99"]}
                    for run, r in (("A", a), ("B", b)) for name, c in r["cameras"].items()},
        "redis_used_memory_delta_bytes": b["redis"]["used_memory"] - a["redis"]["used_memory"],
        "redis_dbsize": {"A": a["redis"]["dbsize"], "B": b["redis"]["dbsize"]},
        "redis_garage_own_keys_bytes": sum(v["bytes"] for k, v in b["redis"]["by_key"].items()
                                           if k.startswith("camera:garage:")),
        "redis_cameras_hash_bytes": {"A": a["redis"]["by_key"]["cameras"]["bytes"],
                                     "B": b["redis"]["by_key"]["cameras"]["bytes"]},
        "rss_growth_over_window_mb": {k: round(v, 1) for k, v in grow.items()},
        "second_camera_in_process_rss_mb": round(grow["B"] - grow["A"], 1),
        "process_rss_before_any_daemon_mb": b["rss_mb"]["start"],
    }


def print_table(s: dict) -> None:
    print(f"{'camera (run)':<14}{'events':>7}{'files':>6}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'frames':>8}{'dropped':>8}"
          f"{'step p50':>9}{'step p99':>9}")
    for name, c in s["cameras"].items():
        print(f"{name:<14}{c['events']:>7}{c['files_shared']:>6}{c['p50_ms']!s:>8}{c['p99_ms']!s:>8}{c['max_ms']!s:>8}{c['frames']:>8}"
              f"{c['dropped']:>8}{c['step_p50_ms']!s:>9}{c['step_p99_ms']!s:>9}")
    print(f"Redis used_memory B - A: {s['redis_used_memory_delta_bytes']} bytes; DBSIZE {s['redis_dbsize']}; "
          f"garage's own camera:garage:* keys {s['redis_garage_own_keys_bytes']} bytes; "
          f"`cameras` hash {s['redis_cameras_hash_bytes']} bytes")
    print(f"Process RSS growth over the window {s['rss_growth_over_window_mb']} MB: a second in-process camera "
          f"costs about {s['second_camera_in_process_rss_mb']} MB (a process before any daemon: "
          f"{s['process_rss_before_any_daemon_mb']} MB)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="the measured window of each run")
    ap.add_argument("--child", help=argparse.SUPPRESS)        # camera names: one run, in this process
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        cv2.setNumThreads(1)          # as the camera daemon's main() does
        with tempfile.TemporaryDirectory() as tmp:
            result = one_run(Path(tmp), args.seconds, args.child.split(","))
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    a = run_child(args.seconds, ["front"])
    b = run_child(args.seconds, ["front", "garage"])
    s = summary(a, b)
    out = OUT
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seconds": args.seconds, "warmup_s": WARMUP_S,
                               "summary": s, "A": a, "B": b}, indent=1))
    print(json.dumps({"A": a, "B": b}, indent=1))
    print_table(s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
