"""How soon a covered lens and a lost camera reach the outbox (then the notifier, bench.slack_latency).

    .venv/bin/python -m bench.tamper [--runs 3]

The real camera daemon, armed, against its own redis-server, on a camera that shows the sample
clip at 20 fps, is covered (uniform frames) for 6 s, shows the scene again, then is lost. Times
from the first covered frame, and from the loss, to the alarm's message on the outbox, with the
default settings (alerts.covered_s 3 s, alerts.source_lost_s 10 s).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import config
from app import keys, state
from app.camera.daemon import CameraDaemon
from app.utils import StopFlag
from tests.conftest import RedisServer
from tests.test_tamper import ScriptedCamera

SAMPLE = str(config.ROOT / "sample" / "one-by-one-person-detection.mp4")


def one_run(tmp: Path) -> tuple[float, float]:
    server = RedisServer(tmp / "redis")
    (tmp / "redis").mkdir()
    server.start()
    try:
        settings = config.load_settings(env={"REDIS_URL": server.url, "PYCAM_DATA_DIR": str(tmp / "data")})
        r = state.connect(server.url, "bench")
        r.set(keys.CAMERA_STATUS, "true")
        t0 = time.monotonic()
        covered_at, lost_at = 3.0, 12.0
        camera = ScriptedCamera(SAMPLE, [(covered_at, "scene"), (9, "covered"), (lost_at, "scene"),
                                         (30, "lost"), (1e9, "scene")], t0)
        stop = StopFlag()
        daemon = CameraDaemon(settings, r, stop, open_source=camera.open)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        seen: dict[str, float] = {}
        try:
            while len(seen) < 2 and time.monotonic() - t0 < 40:
                for _, f in r.xrange(keys.SLACK_OUTBOX):
                    text = json.loads(f["job"]).get("text", "")
                    for key in ("sees nothing", "camera is lost"):
                        if key in text and key not in seen:
                            seen[key] = time.monotonic() - t0
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(10)
        return seen["sees nothing"] - covered_at, seen["camera is lost"] - lost_at
    finally:
        server.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(Path(tmp)))
    covered, lost = zip(*runs)
    print(f"covered lens -> outbox: median {statistics.median(covered):.1f} s, worst {max(covered):.1f} s "
          f"(alerts.covered_s 3 s)")
    print(f"camera lost -> outbox: median {statistics.median(lost):.1f} s, worst {max(lost):.1f} s "
          f"(alerts.source_lost_s 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
