"""Costs that must stay flat as the event store grows: retention, saving an event, /pycam_status,
the S3 ledger.

    .venv/bin/python -m bench.store [--counts 1000,10000,50000]

For each count it fills a fresh data dir with that many events (three small files each, spread
over days as the camera writes them), then times: the scan a camera daemon runs on a thread at
start, and the pause it causes in the frame loop (installing its result between two frames); a
retention pass; saving one more event at the size cap (room made first); the /pycam_status reply
against a real redis-server; recording one S3 confirmation in a ledger of that many entries (and,
for comparison, the whole-file rewrite it replaced); and the events listing an upload pass makes
(every S3_UPLOAD_INTERVAL, 5 minutes by default).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from app import health, state, utils
from app.slack import status
from app.storage.events import EventStore, complete_ids, event_files, new_event_id
from app.storage.ledger import Ledger
from config import load_settings
from tests.conftest import RedisServer


def fill(data_dir: Path, count: int) -> None:
    """`count` events, 10 a minute back from now, written the way the store writes them."""
    now = time.time()
    for i in range(count):
        event_id = new_event_id(now - (count - i) * 6)
        files = event_files(data_dir, event_id)
        files["snapshot"].parent.mkdir(parents=True, exist_ok=True)
        files["snapshot"].write_bytes(b"s" * 2000)
        files["clean"].write_bytes(b"c" * 2000)
        files["meta"].write_text(json.dumps({"id": event_id}))


def timed(fn, repeat: int = 5) -> float:
    """Median milliseconds of `fn()`."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs)


def measure(count: int, redis_url: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        fill(data, count)
        settings = load_settings(env={"PYCAM_DATA_DIR": str(data), "REDIS_URL": redis_url})
        settings.events.max_total_mb = count * 4100 / 1e6          # exactly full: each save evicts one
        store = EventStore(data, settings.events)
        store.scanning = True                       # as the camera daemon: scanned on a thread
        t0 = time.perf_counter()
        scan = store.scan(recent_days=2)
        scan_ms = (time.perf_counter() - t0) * 1000
        store.save({"id": new_event_id()}, b"s" * 2000, b"c" * 2000)   # an event during the scan
        t0 = time.perf_counter()
        store.install(scan)
        store.finish_incomplete("bench")
        install_ms = (time.perf_counter() - t0) * 1000
        retention_ms = timed(store.enforce_retention)
        save_ms = timed(lambda: store.save({"id": new_event_id()}, b"s" * 2000, b"c" * 2000))
        r = state.connect(redis_url, "bench")
        r.flushdb()
        health.write_heartbeat(r, "security_system", "running", {"events_mb": round(store.total / 1e6, 1)})
        status_ms = timed(lambda: status.status_text(r, settings))
        target = {"endpoint": None, "bucket": "bench"}
        book = Ledger(data, target)
        entry = {"key": "pycam/cam/events/x.jpg", "size": 2000, "sha256": "a" * 64, "md5": "b" * 32, "time": 1.0}
        for event_id in store.index:
            book.entries["events"][event_id] = entry
        book.fold()
        ids = iter([new_event_id() + f"{i}" for i in range(10)])
        ledger_ms = timed(lambda: (book.record("events", next(ids), entry), book.sync()))
        rewrite_ms = timed(lambda: utils.atomic_write_json(data / "rewrite.json", book.entries))
        listing_ms = timed(lambda: complete_ids(data), repeat=3)
        return {"events": count, "start_scan_ms": round(scan_ms, 1), "install_ms": round(install_ms, 2),
                "retention_pass_ms": round(retention_ms, 2), "save_at_cap_ms": round(save_ms, 2),
                "status_ms": round(status_ms, 2), "ledger_ms": round(ledger_ms, 2),
                "rewrite_ms": round(rewrite_ms, 1), "listing_ms": round(listing_ms, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1000,10000,50000")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            rows = [measure(int(c), server.url) for c in args.counts.split(",")]
        finally:
            server.stop()
    print("| events | start-up scan (thread) | its pause in the frame loop | retention pass | save at the cap "
          "| /pycam_status | S3 ledger, one confirmation | (whole rewrite, before) | upload pass's listing |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['events']} | {row['start_scan_ms']} ms | {row['install_ms']} ms | {row['retention_pass_ms']} ms "
              f"| {row['save_at_cap_ms']} ms | {row['status_ms']} ms | {row['ledger_ms']} ms | {row['rewrite_ms']} ms "
              f"| {row['listing_ms']} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
