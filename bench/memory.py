"""Memory and CPU of the whole of pycam running together: what a Pi (a Zero 2 W: ~400 MB) must hold.

Runs README's usage block (`scripts/pycam start`) in a copy of the repo against its own
redis-server, with the camera daemon on the bundled sample clip (played live, in a loop), Slack
in Socket Mode (or HTTP mode with --http) pointed at a closed loopback port (alerts stay queued,
the Socket Mode connection is retried) and no S3 bucket. It measures each process (gunicorn's
workers included) while disarmed, then while armed, and stops everything.

    .venv/bin/python -m bench.memory [--layout standard|compact|separate] [--http] [--seconds 30]

RSS counts shared pages (libraries, gunicorn's forked workers) once per process; PSS splits them
between the processes sharing them, so the PSS total is what the processes cost together.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = {"standard": 200, "compact": 150, "separate": 200}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc] + proc.children(recursive=True)


def sample(groups: dict[str, list[psutil.Process]], seconds: float) -> dict[str, dict]:
    """Per group: RSS and PSS (MB) at the end, CPU % of one core averaged over `seconds`."""
    def cpu(procs):
        return sum(sum(p.cpu_times()[:2]) for p in procs)
    before = {name: cpu(procs) for name, procs in groups.items()}
    time.sleep(seconds)
    out = {}
    for name, procs in groups.items():
        mem = [p.memory_full_info() for p in procs]
        out[name] = {"processes": len(procs),
                     "rss_mb": round(sum(m.rss for m in mem) / 2**20, 1),
                     "pss_mb": round(sum(getattr(m, "pss", m.rss) for m in mem) / 2**20, 1),
                     "cpu_percent": round(100 * (cpu(procs) - before[name]) / seconds, 1)}
    return out


def totals(rows: dict[str, dict], skip: tuple[str, ...] = ()) -> dict:
    keep = [v for k, v in rows.items() if k not in skip]
    return {k: round(sum(v[k] for v in keep), 1) for k in ("rss_mb", "pss_mb", "cpu_percent")}


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"  {'process':<16} {'procs':>5} {'RSS MB':>8} {'PSS MB':>8} {'CPU %':>7}")
    for name, v in rows.items():
        print(f"  {name:<16} {v['processes']:>5} {v['rss_mb']:>8.1f} {v['pss_mb']:>8.1f} {v['cpu_percent']:>7.1f}")
    for label, skip in (("total", ()), ("total without glances", ("glances",))):
        t = totals(rows, skip)
        print(f"  {label:<22} {t['rss_mb']:>8.1f} {t['pss_mb']:>8.1f} {t['cpu_percent']:>7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each measurement")
    parser.add_argument("--json", type=Path, help="default: bench/out/memory-<layout>.json")
    parser.add_argument("--gunicorn-args", default="", help="extra gunicorn options, e.g. '--workers 2'")
    parser.add_argument("--layout", choices=sorted(TARGET_MB), default="standard")
    parser.add_argument("--http", action="store_true", help="Slack in over HTTP (gunicorn) instead of Socket Mode")
    args = parser.parse_args()
    target = TARGET_MB[args.layout]
    args.json = args.json or ROOT / "bench" / "out" / f"memory-{args.layout}{'-http' if args.http else ''}.json"

    work = Path(tempfile.mkdtemp(prefix="pycam-bench-"))
    repo = work / "pycam"
    shutil.copytree(ROOT, repo, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", "data", ".git", "__pycache__", ".pytest_cache", ".env", "pycam.yaml", "bench"))
    (repo / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    redis_proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                                   "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                                  stdout=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYCAM_", "SLACK_", "S3_", "AWS_"))}
    env.update({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "PYCAM_DATA_DIR": str(work / "data"),
                "PYCAM_SOURCE": str(ROOT / "sample" / "one-by-one-person-detection.mp4"),
                "PYCAM_ENV_FILE": "", "PYCAM_CONFIG": "",
                "XDG_CONFIG_HOME": str(work / "xdg"), "PYCAM_GLANCES_PORT": str(free_port()),
                "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{free_port()} {args.gunicorn_args}".strip(),
                "PYCAM_LAYOUT": args.layout, "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_CHANNEL_ID": "C0BENCH001", "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"})
    env.update({"SLACK_SIGNING_SECRET": "bench-secret"} if args.http else {"SLACK_APP_TOKEN": "xapp-bench"})
    r = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        subprocess.run(["scripts/pycam", "start"], cwd=repo, env=env, check=True, timeout=60)
        subprocess.run(["scripts/pycam", "status", "--wait", "30"], cwd=repo, env=env, timeout=60)
        pids = {f.stem: int(f.read_text()) for f in sorted((work / "data" / "run").glob("*.pid"))}
        groups = {n: tree(pid) for n, pid in pids.items()}
        groups["redis-server"] = [psutil.Process(redis_proc.pid)]

        time.sleep(10)  # past imports and first allocations
        disarmed = sample(groups, args.seconds)
        r.set("camera_status", "true")
        time.sleep(10)  # background learning, the first events
        armed = sample(groups, args.seconds)
        events = r.xlen("events")
    finally:
        subprocess.run(["scripts/pycam", "stop"], cwd=repo, env=env, timeout=60)
        redis_proc.terminate()
        redis_proc.wait(10)

    machine = f"{platform.machine()}, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GB RAM, " \
              f"Python {platform.python_version()}"
    print(f"pycam memory and CPU, every process together, {args.layout} layout, Slack in over "
          f"{'HTTP' if args.http else 'Socket Mode'} ({machine}); CPU % is of one core, "
          f"averaged over {args.seconds:.0f} s" + (f"; gunicorn {args.gunicorn_args}" if args.gunicorn_args else ""))
    print_table("Disarmed (idle):", disarmed)
    print_table(f"Armed, camera daemon on the sample clip at its 10 fps ({events} events recorded):", armed)
    pss = totals(armed)["pss_mb"]
    print(f"\nTotal PSS while armed: {pss:.0f} MB, target at most {target} MB: {'met' if pss <= target else 'MISSED'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "layout": args.layout, "http": args.http, "seconds": args.seconds, "disarmed": disarmed,
                                     "armed": armed, "events": events, "total_armed": totals(armed),
                                     "total_armed_without_glances": totals(armed, ("glances",))}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if pss <= target else 1


if __name__ == "__main__":
    sys.exit(main())
