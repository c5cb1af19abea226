"""Slack-side latency: slash commands under load, and trigger-to-Slack time for alerts.

    .venv/bin/python -m bench.slack_latency [--rounds 20] [--alerts 50]

Everything runs on loopback: a private redis-server, the fake Slack Web API from tests/slack_fakes.py,
gunicorn started with the project's own gunicorn.conf (`gunicorn -c gunicorn.conf run_flask`, only
the port overridden) and the real notifier process (`python3 app/notifier.py`).

1. Slash commands: bursts of 50 simultaneous signed requests (asyncio raw HTTP, so the client's own
   overhead stays out of the numbers), repeated --rounds times, for a cheap command (/pycam_on,
   /pycam_off) and for /pycam_status (which reads every key and walks the data folder).
2. Alerts: --alerts events written to disk, each alert job queued with `time` = its trigger time,
   spaced like real alerts; latency = when the fake Slack received chat.postMessage - trigger time.
   The snapshot is a real 1280x720 frame of the sample clip (upload included in the time).
Results are printed and written to bench/out/slack_latency.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import redis

from app import outbox
from tests.slack_fakes import (CHANNEL, SECRET, TOKEN, FakeSlack, alert_job, command_body,
                               make_event, signed_headers)

CONCURRENCY = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in the values' unit."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "max_ms": round(max(ms), 2)}


def sample_frame() -> bytes:
    """A real 1280x720 JPEG from the bundled clip (what an alert's snapshot looks like)."""
    import cv2
    cap = cv2.VideoCapture(str(ROOT / "sample" / "one-by-one-person-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 200)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        from tests.slack_fakes import jpeg_bytes
        return jpeg_bytes(1280, 720)
    frame = cv2.resize(frame, (1280, 720))
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


async def one_request(port: int, raw: bytes) -> float:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()  # gunicorn's sync workers close the connection after each response
    elapsed = time.perf_counter() - t0
    writer.close()
    if not data.startswith(b"HTTP/1.1 200") and not data.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")
    return elapsed


def build_request(port: int, command: str, text: str = "") -> bytes:
    body = command_body(command, text).encode()
    headers = signed_headers(body)
    head = [f"POST /slack/commands HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
            f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def bursts(port: int, commands: list[str], rounds: int) -> list[float]:
    latencies: list[float] = []
    for _ in range(rounds):
        # Signed before the clock starts: signing is Slack's cost, not ours.
        raws = [build_request(port, commands[i % len(commands)]) for i in range(CONCURRENCY)]
        latencies += await asyncio.gather(*(one_request(port, raw) for raw in raws))
    return latencies


def wait_http(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited at start; see its log in the data dir")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError as e:
            if getattr(e, "code", None) in (200, 503):
                return
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="bursts of 50 requests per command mix")
    ap.add_argument("--alerts", type=int, default=50)
    ap.add_argument("--alert-gap", type=float, default=0.2, help="seconds between alerts")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")

    work = Path(tempfile.mkdtemp(prefix="pycam-bench-"))
    data_dir = work / "data"
    procs: list[subprocess.Popen] = []
    fake = FakeSlack().start()
    try:
        rport = free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(work)], stdout=subprocess.DEVNULL))
        r = redis.Redis(port=rport, decode_responses=True)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PYCAM_"))}
        env.update({"REDIS_URL": f"redis://127.0.0.1:{rport}/0", "PYCAM_DATA_DIR": str(data_dir),
                    "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL_ID": CHANNEL,
                    "SLACK_API_URL": fake.api_url})
        # A realistic data folder for /pycam_status to walk: 200 stored events.
        snapshot = sample_frame()
        for i in range(200):
            make_event(data_dir, r if i == 199 else None, t=time.time() - 3600 + i, snapshot=snapshot)

        # ---- 1. slash commands under gunicorn with the project's config
        port = free_port()
        gunicorn = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf",
                                     "run_flask", "--bind", f"127.0.0.1:{port}"],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(gunicorn)
        wait_http(port, gunicorn)
        asyncio.run(bursts(port, ["/pycam_on"], 2))  # warm-up (imports, connections)
        results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                               "python": platform.python_version()}}
        one_at_a_time = [asyncio.run(one_request(port, build_request(port, "/pycam_on"))) for _ in range(200)]
        results["one request at a time (/pycam_on)"] = summary(one_at_a_time)
        for name, mix in [("flag commands (/pycam_on, /pycam_off)", ["/pycam_on", "/pycam_off"]),
                          ("/pycam_status", ["/pycam_status"])]:
            t0 = time.perf_counter()
            lat = asyncio.run(bursts(port, mix, args.rounds))
            wall = time.perf_counter() - t0
            results[name] = {**summary(lat), "requests_per_s": round(len(lat) / wall)}
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(15)

        # ---- 2. trigger -> fake Slack's chat.postMessage, with the real notifier process
        notifier = subprocess.Popen([sys.executable, "app/notifier.py"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(notifier)
        metas = [make_event(data_dir, snapshot=snapshot) for _ in range(args.alerts)]
        outbox.enqueue(r, outbox.make_job("message", text="warm-up"))
        if not fake.wait_for(lambda: fake.accepted("chat.postMessage"), timeout=20):
            raise SystemExit("the notifier did not deliver the warm-up message")
        triggers = {}
        for meta in metas:
            t = time.time()  # the trigger: the camera daemon queues the alert at once
            outbox.enqueue(r, alert_job(meta, training=True, t=t))  # buttons carry the event id
            triggers[meta["id"]] = t
            time.sleep(args.alert_gap)
        fake.wait_for(lambda: len(fake.accepted("chat.postMessage")) >= args.alerts + 1, timeout=60)
        alert_lat = []
        for call in fake.accepted("chat.postMessage")[1:]:
            blob = json.dumps(call.params.get("blocks"))
            event_id = next(e for e in triggers if e in blob)
            alert_lat.append(call.time - triggers[event_id])
        delivered = len(alert_lat)
        results["alert trigger -> chat.postMessage"] = {**summary(alert_lat), "snapshot_bytes": len(snapshot),
                                                        "delivered": delivered}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        fake.close()
        shutil.rmtree(work, ignore_errors=True)

    print(f"pycam Slack latency on {results['machine']['cores']} cores, Python {results['machine']['python']}")
    for name, res in results.items():
        if name != "machine":
            print(f"  {name:42s} " + ", ".join(f"{k} {v}" for k, v in res.items()))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "slack_latency.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
