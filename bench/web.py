"""The web page: the events page with 10,000 stored events, live view latency, and what the
camera daemon's CPU costs with and without a viewer.

    .venv/bin/python -m bench.web [--events 10000] [--seconds 20]

1. Events page: 10,000 events on disk and in the `events` stream (its maxlen), then the real Flask
   app (create_app, as gunicorn serves it) renders the first page, an older page, a day and a
   rare verdict (held, 1 in 100), each 20 times through Flask's test client.
2. Live: the real camera daemon (app/security_system.py, armed, on the sample clip at its 10 fps)
   and the real gunicorn (the README's line); /live.mjpg read for --seconds: frames a second, and
   latency = when a frame arrived here - when the camera read it (its X-Taken header).
3. The camera daemon's CPU over --seconds with nobody watching, then while the stream is read.
Results are printed and written to bench/out/web.json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

import config
from app import keys, state
from app.flask_app import create_app
from app.storage import events
from app.utils import atomic_write_bytes, atomic_write_json
from app.web import auth
from tests.conftest import RedisServer, free_port, process_env

ROOT = config.ROOT
OUT = Path(__file__).resolve().parent / "out" / "web.json"
PASSWORD = "bench password 123"
SAMPLE = ROOT / "sample" / "one-by-one-person-detection.mp4"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def store_events(data: Path, r, count: int) -> None:
    """`count` events a minute apart, ending now: files on disk, metadata in the stream."""
    jpeg = (ROOT / "imgs" / "web-login.png").read_bytes()[:2000]   # bytes only: never decoded here
    t0 = time.time() - count * 60
    with r.pipeline(transaction=False) as p:
        for i in range(count):
            t = t0 + i * 60
            event_id = events.new_event_id(t)
            files = events.event_files(data, event_id)
            meta = {"id": event_id, "camera": "bench", "time": t, "start_time": t, "end_time": t + 8,
                    "area": 0.05, "boxes": [], "verified": False if i % 100 == 0 else True,
                    "notified": i % 100 != 0, "snapshot": str(files["snapshot"].relative_to(data))}
            atomic_write_bytes(files["snapshot"], jpeg)
            atomic_write_json(files["meta"], meta)
            p.xadd(keys.EVENTS, {"event": json.dumps(meta)}, id=f"{int(t * 1000)}-0")
            if i % 500 == 0:
                p.execute()
        p.execute()


def events_page(tmp: Path, url: str, count: int) -> dict:
    data = tmp / "data"
    settings = config.load_settings(env={"REDIS_URL": url, "PYCAM_DATA_DIR": str(data), "PYCAM_WEB": "1"},
                                    config_path=None)
    r = state.connect(url, "bench")
    store_events(data, r, count)
    auth.set_password(data, PASSWORD)
    client = create_app(settings, redis_client=r).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf" value="')[1].split('"')[0]
    client.post("/login", data={"password": PASSWORD, "csrf": token})
    first = client.get("/events").get_data(as_text=True)
    older = first.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
    day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 3 * 86400))
    timings = {}
    for name, path in (("first page", "/events"), ("older page", older), ("one day", f"/events?day={day}"),
                       ("verdict held (1 in 100)", "/events?verdict=held")):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - start)
            assert answer.status_code == 200
        timings[name] = {"median_ms": round(statistics.median(times) * 1000, 1),
                         "max_ms": round(max(times) * 1000, 1)}
    return {"events": count, "page_size": settings.web.page_size, "render": timings}


def cpu_of(proc: psutil.Process, seconds: float) -> float:
    """The process's CPU over `seconds`, as % of one core."""
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return round(100 * ((after.user - before.user) + (after.system - before.system)) / seconds, 1)


def live(tmp: Path, url: str, seconds: float) -> dict:
    data = tmp / "live-data"
    env = process_env(REDIS_URL=url, PYCAM_DATA_DIR=str(data), PYCAM_WEB="1", PYCAM_SOURCE=str(SAMPLE),
                      PYCAM_CLIPS="false")
    subprocess.run([sys.executable, "-m", "app.cli", "web-password"], cwd=ROOT, env=env, check=True,
                   input=f"{PASSWORD}\n{PASSWORD}\n", text=True, capture_output=True)
    port = free_port()
    gunicorn = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf", "run_flask",
                                 "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    camera = subprocess.Popen([sys.executable, "app/security_system.py", "--arm"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        time.sleep(5)                                      # the camera settles (its background)
        idle = cpu_of(psutil.Process(camera.pid), seconds)
        s = requests.Session()
        token = s.get(base + "/login").text.split('name="csrf" value="')[1].split('"')[0]
        s.post(base + "/login", data={"password": PASSWORD, "csrf": token})
        latencies, sizes = [], []
        watched = {}
        with s.get(base + "/live.mjpg", stream=True, timeout=10) as stream:
            import threading
            cpu_thread = threading.Thread(target=lambda: watched.update(cpu=cpu_of(psutil.Process(camera.pid),
                                                                                   seconds)))
            started = time.monotonic()
            buffer = b""
            cpu_thread.start()
            for chunk in stream.iter_content(chunk_size=4096):
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, rest = buffer.split(b"\r\n\r\n", 1)
                    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n") if b": " in line)
                    length = int(fields.get(b"Content-Length", 0))
                    if len(rest) < length + 2:
                        break
                    latencies.append(time.time() - float(fields[b"X-Taken"]))
                    sizes.append(length)
                    buffer = rest[length + 2:]
                if time.monotonic() - started > seconds:
                    break
            cpu_thread.join()
        return {"frames_per_s": round(len(latencies) / seconds, 1),
                "latency_s": {"median": round(statistics.median(latencies), 3), "p99": round(pct(latencies, 99), 3),
                              "max": round(max(latencies), 3)},
                "frame_kb": round(statistics.median(sizes) / 1000, 1),
                "camera_cpu_percent": {"nobody watching": idle, "watched": watched.get("cpu")}}
    finally:
        for proc in (gunicorn, camera):
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = RedisServer(tmp / "redis")
        (tmp / "redis").mkdir()
        server.start()
        try:
            result = {"events_page": events_page(tmp, server.url, args.events),
                      "live": live(tmp, server.url, args.seconds)}
        finally:
            server.stop()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYCAM_ENV_FILE", "")
    raise SystemExit(main())
