"""Benchmark the S3 uploader against moto's S3 server (a separate process) on loopback.

    .venv/bin/python -m bench.s3_upload [--images 500] [--events 30]

1. Throughput: one pass over N labelled ~100 KB JPEGs (each put, then HeadObject to confirm,
   the ledger kept on disk): images/s, MB/s, and the uploader's CPU time (process_time of this
   process; moto runs in its own process so it is not counted).
2. Event latency: `python3 app/s3_upload.py` runs with s3.upload_events on; for each event the
   bench writes the files as the daemon does, adds the `events` stream entry, and measures the time
   from the XADD to the confirmation time the uploader records in its ledger.
3. Idle CPU of the running uploader (blocked on the stream) over a few seconds.
Numbers on loopback measure the uploader's own overhead; a real link adds its round trips.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import boto3
import cv2
import numpy as np
import redis

from app import keys, utils
from app.storage import ledger
from app.storage.s3 import S3Store, make_client
from app.storage.uploader import Uploader
from config import load_settings
from tests.conftest import wait_for
from tests.s3_fakes import ISOLATED_AWS_ENV, TEST_CREDENTIALS, add_event, event_id, free_port

BUCKET = "pycam-bench"


def wait_until(predicate, timeout=20.0, step=0.002):
    return wait_for(predicate, timeout, every=step)


def start_moto(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.session.Session().client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")

    def up():
        try:
            client.list_buckets()
            return True
        except Exception:
            return False
    wait_until(up, step=0.05)
    client.create_bucket(Bucket=BUCKET)
    return proc


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    wait_until(lambda: _ping(r), step=0.05)
    return proc


def _ping(r) -> bool:
    try:
        return r.ping()
    except redis.ConnectionError:
        return False


def jpeg(rng, w=640, h=480) -> bytes:
    """A ~110 KB JPEG: blocky colour plus noise compresses like a real camera frame."""
    base = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    img = cv2.add(base, rng.integers(0, 40, (h, w, 3), dtype=np.uint8))
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_throughput(data_dir: Path, env: dict, n: int) -> dict:
    rng = np.random.default_rng(0)
    training = data_dir / "training"
    manifest, total = {}, 0
    for i in range(n):
        eid = event_id(i)
        body = jpeg(rng)
        total += len(body)
        utils.atomic_write_bytes(training / f"{eid}.jpg", body)
        manifest[eid] = {"event_id": eid, "label": "occupied" if i % 3 else "unoccupied", "user_id": "U1",
                         "user_name": "owner", "labelled_at": time.time(), "event_time": time.time(), "camera": "bench"}
    utils.atomic_write_json(training / "labels.json", manifest)
    settings = load_settings(env=env, config_path=None)
    up = Uploader(settings, S3Store(make_client(settings.s3.endpoint_url, "us-east-1"), BUCKET,
                                    settings.s3.endpoint_url))
    cpu0, t0 = time.process_time(), time.perf_counter()
    sent = up.run_pass()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert sent == n, sent
    cpu1, t1 = time.process_time(), time.perf_counter()
    assert up.run_pass() == 0
    idle_wall, idle_cpu = time.perf_counter() - t1, time.process_time() - cpu1
    return {"images": n, "mean_kb": total / n / 1000, "wall_s": wall, "images_per_s": n / wall,
            "mb_per_s": total / 1e6 / wall, "cpu_s": cpu, "cpu_ms_per_image": cpu / n * 1000,
            "noop_pass_ms": idle_wall * 1000, "noop_pass_cpu_ms": idle_cpu * 1000}


def bench_events(data_dir: Path, env: dict, redis_url: str, n: int) -> dict:
    cfg = data_dir.parent / "bench.yaml"
    cfg.write_text("heartbeat_s: 5\n")
    proc_env = {**os.environ, **env, "PYCAM_CONFIG": str(cfg), "S3_UPLOAD_EVENTS": "true",
                "S3_UPLOAD_INTERVAL": "3600", "PYCAM_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "app/s3_upload.py"], cwd=ROOT, env=proc_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    target = {"endpoint": env.get("S3_ENDPOINT_URL"), "bucket": env.get("S3_BUCKET")}
    try:
        wait_until(lambda: r.get(keys.heartbeat("s3_upload")))
        time.sleep(1.0)   # let the first pass (training data of part 1) finish
        latencies = []
        for i in range(n):
            eid = event_id(10_000 + i, day="20261125")
            meta = add_event(data_dir, eid)
            t0 = time.time()
            r.xadd(keys.EVENTS, {"event": json.dumps(meta)})
            entry = wait_until(lambda: ledger.read(data_dir, target)[0]["events"].get(eid))
            latencies.append(entry["time"] - t0)
            time.sleep(0.2)   # events come one by one, not as a burst
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(5)
        idle_cpu_pct = (cpu_seconds(proc.pid) - cpu0) / 5 * 100
    finally:
        proc.send_signal(signal.SIGTERM)
        t0 = time.perf_counter()
        proc.wait(10)
        stop_s = time.perf_counter() - t0
    latencies.sort()
    return {"events": n, "median_ms": statistics.median(latencies) * 1000,
            "p90_ms": latencies[int(0.9 * (n - 1))] * 1000, "max_ms": latencies[-1] * 1000,
            "idle_cpu_percent": idle_cpu_pct, "sigterm_exit_s": stop_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--events", type=int, default=30)
    args = parser.parse_args()
    os.environ.update(TEST_CREDENTIALS, **ISOLATED_AWS_ENV)
    moto_port, redis_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="pycam-bench-") as tmp:
        tmp = Path(tmp)
        moto = start_moto(moto_port)
        rds = start_redis(redis_port, tmp)
        try:
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp / "data"), "S3_BUCKET": BUCKET,
                   "S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "PYCAM_CAMERA_NAME": "bench"}
            t = bench_throughput(tmp / "data", env, args.images)
            e = bench_events(tmp / "data", env, redis_url, args.events)
        finally:
            for proc in (moto, rds):
                proc.terminate()
                proc.wait(10)
    print(f"throughput: {t['images']} labelled JPEGs of {t['mean_kb']:.0f} KB in {t['wall_s']:.2f} s = "
          f"{t['images_per_s']:.0f} images/s, {t['mb_per_s']:.1f} MB/s; uploader CPU {t['cpu_s']:.2f} s "
          f"({t['cpu_ms_per_image']:.1f} ms/image); a pass with nothing to send: {t['noop_pass_ms']:.0f} ms "
          f"({t['noop_pass_cpu_ms']:.0f} ms CPU)")
    print(f"event -> snapshot confirmed in S3 ({e['events']} events, process running): median "
          f"{e['median_ms']:.0f} ms, p90 {e['p90_ms']:.0f} ms, max {e['max_ms']:.0f} ms")
    print(f"idle uploader CPU (blocked on the stream): {e['idle_cpu_percent']:.2f} %; "
          f"SIGTERM to exit: {e['sigterm_exit_s']:.2f} s")


if __name__ == "__main__":
    main()
