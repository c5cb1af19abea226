"""Benchmark who_is_home: the cost of one poll per provider, and how long arming takes.

    .venv/bin/python -m bench.presence [--polls 200] [--runs 8]

1. Poll cost (wall and CPU time, this process plus its children) of each provider:
   `router` against the fake router web API on loopback (logged in, steady state, 40 devices),
   `lan` (`ip -j neigh` and /proc/net/arp, with and without the UDP probe) inside a network
   namespace made here (root only; otherwise read-only in the current namespace, no probe),
   and `command` (`cat` of a file). The fake router runs in this process, but its CPU is not
   counted (thread CPU time of the polling thread only).
2. Time from the last device leaving to `camera_status` on, on the real loop (WhoIsHome.run with
   the real clock, a command provider and a real redis-server) with short settings; it should lie
   within consider_home ± one poll interval (the away clock starts at the last poll that saw the
   phone, which is up to one interval before it left, and arming waits for the next poll); from
   the last sighting it lies within consider_home + one poll interval.
Writes bench/out/presence.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from app import keys, state
from app.presence.providers import CommandProvider, LanProvider, RouterProvider
from app.presence.daemon import WhoIsHome
from config import CommandProviderConfig, LanProviderConfig, PresenceConfig, RouterProviderConfig
from tests.conftest import RedisServer
from tests.presence_fakes import PASSWORD, FakeRouter


def cost(poll, n: int) -> dict:
    """Mean wall and CPU milliseconds per call: CPU of this thread (not the fake router's threads)
    plus that of finished child processes (`cat`, `ip`)."""
    poll()  # warm up (login, imports)
    k0, c0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.thread_time(), time.perf_counter()
    for _ in range(n):
        poll()
    w1, c1, k1 = time.perf_counter(), time.thread_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    kids = (k1.ru_utime + k1.ru_stime) - (k0.ru_utime + k0.ru_stime)
    return {"wall_ms": round((w1 - w0) / n * 1000, 2), "cpu_ms": round((c1 - c0 + kids) / n * 1000, 2)}


def bench_router(n: int) -> dict:
    fake = FakeRouter().start()
    try:
        fake.set_devices(*[f"aa:bb:cc:dd:{i // 256:02x}:{i % 256:02x}" for i in range(40)])
        cfg = RouterProviderConfig.model_validate({
            "type": "router", "devices_url": fake.url + "/api/devices", "list_path": "data.devices",
            "login": {"url": fake.url + "/login", "username": "admin", "password_env": "ROUTER_PASSWORD"}})
        p = RouterProvider(cfg, {"ROUTER_PASSWORD": PASSWORD})
        out = cost(p.poll, n)
        fake.expire_sessions()
        out["relogin"] = cost(lambda: (fake.expire_sessions(), p.poll()), max(10, n // 10))
        out["logins"] = fake.logins
        return out
    finally:
        fake.stop()


def bench_command(n: int, tmp: Path) -> dict:
    f = tmp / "phones.txt"
    f.write_text("aa:bb:cc:dd:ee:01\naa:bb:cc:dd:ee:02\n")
    p = CommandProvider(CommandProviderConfig(type="command", argv=["cat", str(f)]))
    return cost(p.poll, n)


def bench_lan(n: int) -> dict:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        out = {"note": "not root: read-only in this namespace, no probe"}
        for source in ("ip", "proc"):
            p = LanProvider(LanProviderConfig(type="lan", source=source, probe=False), set())
            out[source] = cost(p.poll, n)
        return out
    tag = f"pycamb{os.getpid()}"
    pi, phone = tag + "pi", tag + "ph"

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)
    try:
        for ns in (pi, phone):
            ip("netns", "add", ns)
        ip("-n", pi, "link", "add", "pi1", "type", "veth", "peer", "name", "ph1")
        ip("-n", pi, "link", "set", "ph1", "netns", phone)
        ip("-n", pi, "addr", "add", "10.200.1.1/24", "dev", "pi1")
        ip("-n", phone, "addr", "add", "10.200.1.2/24", "dev", "ph1")
        ip("-n", pi, "link", "set", "pi1", "up")
        ip("-n", phone, "link", "set", "ph1", "up")
        out = {"note": "inside a test network namespace, one phone at 10.200.1.2"}
        for label, provider in (("ip", {"source": "ip", "probe": False}),
                                ("proc", {"source": "proc", "probe": False}),
                                ("ip+probe (probe_wait_s 0)", {"source": "ip", "addresses": ["10.200.1.2"],
                                                               "probe_wait_s": 0})):
            cfg = json.dumps({"provider": {"type": "lan", **provider}, "watch": []})
            helper = subprocess.Popen(["ip", "netns", "exec", pi, sys.executable,
                                       str(ROOT / "tests" / "presence_fakes.py"), "lan", cfg],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            helper.stdin.write(f"send 10.200.1.2\npoll\nbench {n}\n")
            helper.stdin.close()
            lines = helper.stdout.read().splitlines()
            helper.wait(30)
            seen = json.loads(lines[1])["seen"]
            r = json.loads(lines[2])
            out[label] = {"wall_ms": round(r["wall"] * 1000, 2), "cpu_ms": round(r["cpu"] * 1000, 2),
                          "seen": len(seen)}
        out["note"] += "; the default probe_wait_s adds 1000 ms of waiting (no CPU) to each probed poll"
        return out
    finally:
        for ns in (pi, phone):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def bench_arming(runs: int, poll_s: float, consider_home_s: float, tmp: Path) -> dict:
    server = RedisServer(tmp)
    server.start()
    stop = threading.Event()
    try:
        r = state.connect(server.url, "bench")
        state.init_flags(r)
        state.set_flag(r, keys.AUTO_DETECT_STATUS, True)
        phones = tmp / "phones.txt"
        phones.write_text("aa:bb:cc:dd:ee:01\n")
        cfg = PresenceConfig.model_validate({
            "people": [{"name": "Alice", "devices": ["aa:bb:cc:dd:ee:01"]}],
            "providers": [{"type": "command", "argv": ["cat", str(phones)]}],
        }).model_copy(update={"poll_s": poll_s, "consider_home_s": consider_home_s})  # below the config minimum, on purpose
        app = WhoIsHome(r, cfg, [CommandProvider(cfg.providers[0])])
        loop = threading.Thread(target=app.run, args=(stop,), kwargs={"heartbeat_s": 1.0}, daemon=True)
        loop.start()
        delays, since_seen = [], []
        for _ in range(runs):
            phones.write_text("aa:bb:cc:dd:ee:01\n")
            while state.get_flag(r, keys.CAMERA_STATUS) or state.get_json(r, keys.HOME) != ["Alice"]:
                time.sleep(0.005)
            time.sleep(random.uniform(0, poll_s))  # leave at a random moment between polls
            phones.write_text("")
            left = time.monotonic()
            while not state.get_flag(r, keys.CAMERA_STATUS):
                time.sleep(0.002)
            delays.append(time.monotonic() - left)
            since_seen.append(time.time() - float(r.hget(keys.PRESENCE_LAST_SEEN, "Alice")))
        return {"poll_s": poll_s, "consider_home_s": consider_home_s, "runs": runs,
                "min_s": round(min(delays), 3), "mean_s": round(statistics.mean(delays), 3),
                "max_s": round(max(delays), 3),
                "from_last_sighting_min_s": round(min(since_seen), 3),
                "from_last_sighting_max_s": round(max(since_seen), 3),
                "within_bound": all(consider_home_s - poll_s - 0.05 <= d <= consider_home_s + poll_s + 0.05
                                    for d in delays)}
    finally:
        stop.set()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--poll-s", type=float, default=0.25)
    parser.add_argument("--consider-home-s", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {
            "router": bench_router(args.polls),
            "lan": bench_lan(args.polls),
            "command": bench_command(args.polls, tmp),
            "leave_to_armed": bench_arming(args.runs, args.poll_s, args.consider_home_s, tmp),
        }
    text = json.dumps(results, indent=1)
    print(text)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "presence.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
