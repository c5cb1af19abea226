"""Running pycam on a Pi: the README's usage block, glances' AMPs, the systemd units.

The end-to-end test runs the README's start block verbatim in a copy of the repo (its own data
dir, a real redis-server, real gunicorn, real glances in web mode with a password), checks every
process and heartbeat, kills one process and watches glances report it missing, then runs the
README's stop block.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
import requests

from app import health, keys
from tests.conftest import ROOT, free_port

GLANCES_PASSWORD = "test-glances-pw"
# AMP section -> the heartbeat name of the process it watches.
AMPS = {"security_system": "security_system", "notifier": "notifier", "slack_socket": "slack_socket",
        "flask_app": "flask_app", "who_is_home": "who_is_home", "s3_upload": "s3_upload", "watchdog": "watchdog"}
# The process each heartbeat comes from in the standard layout (README's usage block).
RUNS_IN = {"security_system": "security_system", "flask_app": "flask_app", "notifier": "services",
           "slack_socket": "services", "who_is_home": "services", "s3_upload": "services", "watchdog": "services"}
SINGLE_INSTANCE = {"security_system", "notifier", "slack_socket", "who_is_home", "s3_upload", "watchdog"}
ENTRY_FILES = ["app/security_system.py", "app/notifier.py", "app/slack_socket.py", "app/who_is_home.py",
               "app/s3_upload.py", "app/services.py", "app/watchdog.py", "run_flask.py", "gunicorn.conf"]


# ------------------------------------------------------------------ helpers

def usage_blocks() -> list[str]:
    """The ```bash blocks of README.md's usage section: [start, stop]."""
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- section: usage (issue 6) -->", 1)[1].split("<!-- section:", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def copy_repo(dest: Path) -> Path:
    """The working tree without .venv, data, secrets or local config; .venv is a symlink."""
    ignore = shutil.ignore_patterns(".venv", "data", ".git", "__pycache__", ".pytest_cache", ".env",
                                    "pycam.yaml", "bench")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def deploy_env(repo: Path, redis_url: str, tmp: Path) -> dict[str, str]:
    """The environment a user's SSH session would have, pointed at loopback-only test services."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYCAM_", "SLACK_", "S3_", "AWS_", "GUNICORN_"))}
    env.update({
        "REDIS_URL": redis_url,
        "PYCAM_DATA_DIR": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "xdg"),          # glances' password file lives under it
        "PYCAM_GLANCES_PORT": str(free_port()),
        "PYCAM_GLANCES_BIND": "127.0.0.1",
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{free_port()}",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_CHANNEL_ID": "C0TEST0001",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # closed: delivery fails, queued
        "PYCAM_STOP_TIMEOUT": "15",
    })
    return env


def run_block(block: str, repo: Path, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", block], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def pid_of(repo_data: Path, name: str) -> int | None:
    f = repo_data / "run" / f"{name}.pid"
    return int(f.read_text().strip()) if f.is_file() else None


def alive(pid: int | None) -> bool:
    """True for a running process (a zombie waiting to be reaped counts as gone)."""
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_leftovers(data: Path, repo: Path) -> None:
    """After a failed test: SIGKILL whatever the test's start block left running."""
    for f in (data / "run").glob("*.pid"):
        try:
            proc = psutil.Process(int(f.read_text().strip()))
            if str(repo) in " ".join(proc.cmdline()) or proc.cwd() == str(repo):
                for p in proc.children(recursive=True) + [proc]:
                    p.kill()
        except (psutil.Error, ValueError):
            pass


def glances_amps(port: int, auth) -> dict[str, dict]:
    """AMPs by section name. Fetching processcount first refreshes the process list: glances 4.5.8
    updates only `amps` for GET /api/4/amps, whose counts would otherwise be stale (its web UI
    fetches /api/4/all, which refreshes both)."""
    base = f"http://127.0.0.1:{port}/api/4"
    requests.get(f"{base}/processcount", auth=auth, timeout=5).raise_for_status()
    resp = requests.get(f"{base}/amps", auth=auth, timeout=5)
    resp.raise_for_status()
    return {a["name"].lower(): a for a in resp.json()}


def wait_for(predicate, timeout: float, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# ------------------------------------------------------------------ the usage block, end to end

@pytest.mark.timeout(180)
def test_readme_usage_block_runs_everything_and_glances_sees_a_dead_process(tmp_path, redis_url):
    missing = [f for f in ENTRY_FILES if not (ROOT / f).exists()]
    if missing:
        pytest.skip(f"entry points not written yet: {', '.join(missing)}")
    start_block, stop_block = usage_blocks()[:2]
    repo = copy_repo(tmp_path / "pycam")
    env = deploy_env(repo, redis_url, tmp_path)
    data = tmp_path / "data"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    # The one-time step from setup.md, non-interactive: the password arrives on stdin.
    subprocess.run(["scripts/pycam", "glances-password"], cwd=repo, env=env, input=GLANCES_PASSWORD + "\n",
                   text=True, check=True, timeout=30, capture_output=True)
    try:
        started_at = time.time()
        result = run_block(start_block, repo, env)
        assert result.returncode == 0, result.stdout + result.stderr

        # Every process runs under its PID file, with a fresh heartbeat from each service it runs.
        for name in health.PROCESSES:
            pid = pid_of(data, RUNS_IN[name])
            assert alive(pid), f"{name} is not running:\n{result.stdout}"
            beat = json.loads(r.get(keys.heartbeat(name)) or "{}")
            assert beat.get("time", 0) >= started_at - 1, f"no fresh heartbeat from {name}: {beat}"
            pids = {pid} | {c.pid for c in psutil.Process(pid).children()}  # gunicorn's workers beat
            assert beat["pid"] in pids, f"{name}'s heartbeat comes from another process"
            assert (data / "logs" / f"{RUNS_IN[name]}.out").is_file()
        assert alive(pid_of(data, "glances"))
        assert not any(pid_of(data, name) for name in ("notifier", "slack_socket", "who_is_home", "s3_upload", "watchdog"))

        # glances, in web mode with the password, counts each process through its AMP.
        port = int(env["PYCAM_GLANCES_PORT"])
        auth = ("glances", GLANCES_PASSWORD)
        amps = wait_for(lambda: _amps_or_none(port, auth), timeout=30)
        assert amps, (data / "logs" / "glances.out").read_text()[-2000:]
        assert requests.get(f"http://127.0.0.1:{port}/api/4/amps", timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/api/4/amps", auth=("glances", "wrong-password"),
                            timeout=5).status_code == 401
        for section in AMPS:
            assert amps[section]["count"] >= 1 and amps[section]["count"] >= amps[section]["countmin"], amps[section]

        # Kill one (a crash: SIGKILL, no clean exit) and glances reports it missing within seconds.
        # Another checkout's tests may run a process our regexes also match, so kill one that
        # glances counts exactly once.
        victim = next((s for s in ("s3_upload", "who_is_home", "notifier", "security_system")
                       if amps[s]["count"] == 1), None)
        assert victim, f"every AMP counts foreign processes too: {amps}"
        os.kill(pid_of(data, RUNS_IN[victim]), signal.SIGKILL)
        killed_at = time.monotonic()
        amp = wait_for(lambda: (a := glances_amps(port, auth)[victim])["count"] < a["countmin"] and a,
                       timeout=15)
        assert amp, f"glances still counts {victim}: {glances_amps(port, auth)[victim]}"
        assert amp["result"] == "No running process"
        print(f"glances reported {victim} missing {time.monotonic() - killed_at:.1f} s after the kill")

        # The stop block ends everything cleanly and says so.
        pids = {name: pid_of(data, name) for name in {*RUNS_IN.values(), "glances"}}
        result = run_block(stop_block, repo, env, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        for name, pid in pids.items():
            assert not alive(pid), f"{name} still runs after stop"
            if name != RUNS_IN[victim]:
                assert re.search(rf"^{name}\s+stopped", result.stdout, flags=re.M), result.stdout
        assert f"{RUNS_IN[victim]}" in result.stdout and "was not running" in result.stdout
        assert not list((data / "run").glob("*.pid"))
        # Stopped on SIGTERM, not killed: each daemon logged its own clean stop.
        assert "KILLED" not in result.stdout
    finally:
        kill_leftovers(data, repo)


def _amps_or_none(port, auth):
    try:
        amps = glances_amps(port, auth)
    except requests.RequestException:
        return None
    # The first refresh can come before every process is listed.
    return amps if all(amps.get(s, {}).get("count") for s in AMPS) else None


# ------------------------------------------------------------------ scripts/pycam edge cases

STUB_IGNORES_TERM = """\
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.1)
"""


@pytest.mark.timeout(60)
def test_start_reports_failures_and_stop_kills_what_ignores_sigterm(tmp_path, redis_url):
    """Stand-ins for two daemons (one crashes at start, one ignores SIGTERM); the others absent."""
    repo = copy_repo(tmp_path / "pycam")
    for f in ENTRY_FILES:
        (repo / f).unlink(missing_ok=True)
    (repo / "app" / "who_is_home.py").write_text(STUB_IGNORES_TERM)
    (repo / "app" / "s3_upload.py").write_text("raise SystemExit('pycam: a bad setting')\n")
    # .env reaches the processes' environment (boto3 reads AWS_* only there); the shell's wins.
    (repo / ".env").write_text("AWS_ACCESS_KEY_ID=from-dotenv\nSLACK_CHANNEL_ID=C0FROMDOTENV\n")
    env = deploy_env(repo, redis_url, tmp_path) | {"PYCAM_STOP_TIMEOUT": "1", "PYCAM_START_CHECK_S": "1",
                                                   "PYCAM_LAYOUT": "separate"}
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "who_is_home.out").write_bytes(b"x" * 1_100_000)  # months of output
    try:
        result = subprocess.run(["scripts/pycam", "start"], cwd=repo, env=env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 1
        # The big .out was moved aside at start, so it cannot grow for ever.
        assert (data / "logs" / "who_is_home.out.1").stat().st_size == 1_100_000
        assert (data / "logs" / "who_is_home.out").stat().st_size < 1000
        out = result.stdout
        assert re.search(r"^s3_upload\s+EXITED at once: see .*/s3_upload.out", out, flags=re.M), out
        assert "a bad setting" in (data / "logs" / "s3_upload.out").read_text()
        assert re.search(r"^notifier\s+NOT STARTED: app/notifier.py is missing", out, flags=re.M), out
        assert re.search(r"^flask_app\s+NOT STARTED: gunicorn.conf run_flask.py is missing", out, flags=re.M)
        pid = pid_of(data, "who_is_home")
        assert alive(pid)
        environ = psutil.Process(pid).environ()
        assert environ["AWS_ACCESS_KEY_ID"] == "from-dotenv"
        assert environ["SLACK_CHANNEL_ID"] == env["SLACK_CHANNEL_ID"]

        # A second start does not start a second copy.
        again = subprocess.run(["scripts/pycam", "start"], cwd=repo, env=env, capture_output=True,
                               text=True, timeout=30)
        assert f"who_is_home      already running (pid {pid})" in again.stdout

        result = subprocess.run(["scripts/pycam", "stop"], cwd=repo, env=env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 1
        assert re.search(rf"^who_is_home\s+KILLED: still running 1 s after SIGTERM \(pid {pid}\)",
                         result.stdout, flags=re.M), result.stdout
        assert wait_for(lambda: not alive(pid), timeout=5)
    finally:
        kill_leftovers(data, repo)


@pytest.mark.parametrize("layout, http, expected, extra", [
    ("standard", False, ["security_system", "services", "glances"], {}),
    ("standard", True, ["flask_app", "security_system", "services", "glances"], {}),
    ("compact", False, ["security_system", "services"], {}),
    ("separate", False, ["security_system", "notifier", "slack_socket", "who_is_home", "s3_upload", "watchdog",
                         "glances"], {}),
    ("standard", True, ["flask_app", "security_system@front", "security_system@garage", "services", "glances"],
     {"PYCAM_CAMERAS": "front,garage"}),
    ("standard", True, ["security_system", "notifier", "glances"], {"PYCAM_ROLE": "camera"}),
])
def test_each_layout_starts_its_own_processes(tmp_path, redis_url, layout, http, expected, extra):
    """gunicorn only in HTTP mode; one process for the services but in the separate layout; no
    glances in the compact one (a Zero 2 W); a camera daemon per camera; on a camera Pi, only its
    cameras and the notifier that sends their images."""
    env = deploy_env(ROOT, redis_url, tmp_path) | {"PYCAM_LAYOUT": layout, "PYCAM_ENV_FILE": "", "PYCAM_CONFIG": ""} | extra
    if not http:
        del env["SLACK_SIGNING_SECRET"]
    out = subprocess.run(["scripts/pycam", "processes"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.split() == expected, out.stderr
    # systemd enables the units of the same processes (and stops and disables the others).
    units = subprocess.run([str(ROOT / "deploy" / "install_systemd.sh"), "--units"], env=env, capture_output=True,
                           text=True, timeout=30)
    unit_of = {"flask_app": "pycam-flask-app", "security_system": "pycam-security-system", "services": "pycam-services",
               "glances": "pycam-glances", "notifier": "pycam-notifier", "slack_socket": "pycam-slack-socket",
               "who_is_home": "pycam-who-is-home", "s3_upload": "pycam-s3-upload", "watchdog": "pycam-watchdog",
               "security_system@front": "pycam-security-system@front", "security_system@garage": "pycam-security-system@garage"}
    assert sorted(units.stdout.split()) == sorted(f"{unit_of[p]}.service" for p in expected), units.stderr


def test_the_systemd_installer_refuses_a_bad_layout_setting_with_its_message(tmp_path, redis_url):
    env = deploy_env(ROOT, redis_url, tmp_path) | {"PYCAM_LAYOUT": "tiny", "PYCAM_ENV_FILE": "", "PYCAM_CONFIG": ""}
    out = subprocess.run([str(ROOT / "deploy" / "install_systemd.sh"), "--units"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "layout = 'tiny'" in out.stderr and not out.stdout.strip()


def test_stop_never_signals_a_reused_pid(tmp_path, redis_url):
    """A PID file left by a power cut may name an unrelated process after the reboot."""
    repo = copy_repo(tmp_path / "pycam")
    env = deploy_env(repo, redis_url, tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run = tmp_path / "data" / "run"
        run.mkdir(parents=True)
        (run / "notifier.pid").write_text(f"{bystander.pid}\n")
        result = subprocess.run(["scripts/pycam", "stop"], cwd=repo, env=env, capture_output=True,
                                text=True, timeout=30)
        assert re.search(r"^notifier\s+was not running", result.stdout, flags=re.M), result.stdout
        assert bystander.poll() is None
        assert not (run / "notifier.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


# ------------------------------------------------------------------ glances.conf

def glances_config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()  # what glances 4 itself uses (with % interpolation)
    parser.read(ROOT / "glances.conf")
    return parser


def test_glances_conf_has_one_amp_per_process():
    conf = glances_config()
    amps = {s.removeprefix("amp_"): conf[s] for s in conf.sections() if s.startswith("amp_")}
    assert set(AMPS) <= set(amps)
    # These names load glances' dedicated AMP modules instead of the process-count one.
    assert not {"nginx", "systemd", "systemv", "default"} & set(amps)
    for name, amp in amps.items():
        assert amp.getboolean("enable") and float(amp["refresh"]) <= 5, name
        # gunicorn runs only in HTTP mode: its absence is no alarm (its heartbeat says when it is down).
        assert float(amp["countmin"]) == (0 if name == "flask_app" else 1), name
        assert all("," not in v for v in amp.values()), f"glances splits {name}'s values on commas"
        if name in SINGLE_INSTANCE:
            assert float(amp["countmax"]) == 1, name
    assert conf["global"]["check_update"] == "false"
    assert conf["ip"]["public_disabled"] == "True"


OUR_COMMAND_LINES = {
    "security_system": ["python3 app/security_system.py", ".venv/bin/python app/security_system.py --arm",
                        "/opt/pycam/.venv/bin/python /opt/pycam/app/security_system.py",
                        "/usr/bin/python3.11 -u /home/pi/pycam/app/security_system.py"],
    "notifier": ["python3 app/notifier.py", "/opt/pycam/.venv/bin/python /opt/pycam/app/notifier.py"],
    "slack_socket": ["python3 app/slack_socket.py", "/opt/pycam/.venv/bin/python /opt/pycam/app/slack_socket.py"],
    "who_is_home": ["python3 app/who_is_home.py", "/opt/pycam/.venv/bin/python3 /opt/pycam/app/who_is_home.py"],
    "s3_upload": ["python3 app/s3_upload.py", "/opt/pycam/.venv/bin/python /opt/pycam/app/s3_upload.py"],
    "watchdog": ["python3 app/watchdog.py", "/opt/pycam/.venv/bin/python /opt/pycam/app/watchdog.py"],
    "flask_app": ["/opt/pycam/.venv/bin/python3 /opt/pycam/.venv/bin/gunicorn -c gunicorn.conf run_flask",
                  "/x/.venv/bin/python3 .venv/bin/gunicorn -c gunicorn.conf run_flask",
                  "gunicorn: master [pycam-flask]", "gunicorn: worker [pycam-flask]"],
    "redis": ["/usr/bin/redis-server 127.0.0.1:6379", "redis-server *:6379"],
}
# The standard layout's one process for these four services: each one's AMP counts it.
SERVICES_LINES = ["python3 app/services.py", "/opt/pycam/.venv/bin/python /opt/pycam/app/services.py",
                  ".venv/bin/python -u app/services.py"]
OTHER_COMMAND_LINES = [
    "python -m pytest tests/test_deploy.py", "python3 -m pytest app/security_system.py",
    ".venv/bin/python -m pytest -k app/notifier.py", "vim app/security_system.py",
    "tail -f data/logs/who_is_home.log", "grep -r app/s3_upload.py .", "less gunicorn.conf",
    "bash scripts/pycam start", "/bin/bash scripts/run_glances.sh",
    "python3 .venv/bin/glances -C /opt/pycam/glances.conf -w -p 61208", "redis-cli -p 6379 ping",
    "nano app/notifier.py", "python3 app/security_system_test.py", "python3 myapp/notifier.py.bak",
]


def test_glances_regexes_match_only_our_processes():
    conf = glances_config()
    regexes = {s.removeprefix("amp_"): conf[s]["regex"] for s in conf.sections() if s.startswith("amp_")}
    this_test = " ".join(psutil.Process().cmdline())
    for name, regex in regexes.items():
        for line in OUR_COMMAND_LINES[name]:
            assert re.search(regex, line), f"{name} misses {line!r}"
        for other in OUR_COMMAND_LINES:
            if other != name:
                assert not any(re.search(regex, line) for line in OUR_COMMAND_LINES[other]), (name, other)
        for line in SERVICES_LINES:
            assert bool(re.search(regex, line)) == (name in RUNS_IN and RUNS_IN[name] == "services"), (name, line)
        for line in OTHER_COMMAND_LINES + [this_test]:
            assert not re.search(regex, line), f"{name} also matches {line!r}"
        # glances also searches the bare process name.
        for proc_name in ("python3", "python", "gunicorn", "bash", "glances"):
            assert not re.search(regex, proc_name) or name == "redis", (name, proc_name)


# ------------------------------------------------------------------ glances password, health

def test_glances_password_file_is_the_one_glances_reads(tmp_path):
    from glances.password import GlancesPassword
    script = ROOT / "scripts" / "glances_password.py"
    ok = subprocess.run([sys.executable, str(script), "--dir", str(tmp_path / "g")], input="long-enough-pw\n",
                        text=True, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    path = tmp_path / "g" / "glances.pwd"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "long-enough-pw" not in path.read_text() + ok.stdout
    gp = GlancesPassword(username="glances")
    assert gp.check_password(path.read_text().strip(), gp.get_hash("long-enough-pw"))
    assert not gp.check_password(path.read_text().strip(), gp.get_hash("another-password"))

    short = subprocess.run([sys.executable, str(script), "--dir", str(tmp_path / "h")], input="short\n",
                           text=True, capture_output=True, timeout=30)
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert not (tmp_path / "h" / "glances.pwd").exists()


def test_health_reports_stale_and_missing_heartbeats(r, settings):
    from app import health
    now = time.time()
    health.write_heartbeat(r, "security_system", "armed", ttl=60)
    health.write_heartbeat(r, "flask_app", "ok", ttl=60)
    health.write_heartbeat(r, "watchdog", "ok", ttl=60)
    r.set(keys.heartbeat("notifier"), json.dumps({"time": now - 120, "pid": 1, "state": "ok"}))
    report = health.process_health(r, settings, now=now)
    assert report["security_system"]["ok"] and report["security_system"]["state"] == "armed"
    assert not report["notifier"]["ok"]
    # who_is_home and s3_upload are only expected when configured (no people, no bucket here).
    assert set(report) == {"security_system", "notifier", "flask_app", "watchdog"}
    assert health.stale_processes(r, settings, now=now) == ["notifier"]
    assert "STALE notifier" in health.format_report(report)


# ------------------------------------------------------------------ systemd

UNITS = ["pycam-security-system", "pycam-security-system@", "pycam-services", "pycam-notifier", "pycam-slack-socket", "pycam-flask-app",
         "pycam-who-is-home", "pycam-s3-upload", "pycam-watchdog", "pycam-glances"]


def rendered_units(dest: Path) -> dict[str, str]:
    subprocess.run([str(ROOT / "deploy" / "install_systemd.sh"), "--render", str(dest)], check=True, timeout=30)
    return {p.name: p.read_text() for p in dest.iterdir()}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (no systemd)")
def test_systemd_units_verify(tmp_path):
    units = rendered_units(tmp_path / "units")
    assert set(units) == {f"{u}.service" for u in UNITS} | {"pycam.target"}
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in (tmp_path / "units").iterdir())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_units_restart_run_as_pycam_and_leave_the_camera_reachable(tmp_path):
    units = rendered_units(tmp_path / "units")
    for name in UNITS:
        text = units[f"{name}.service"]
        assert str(ROOT) in text and "/opt/pycam" not in text
        for line in ("Restart=on-failure", "User=pycam", "PartOf=pycam.target", "WantedBy=pycam.target",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only"):
            assert line in text.splitlines(), (name, line)
        assert re.search(r"^After=.*network-online\.target.*redis-server\.service", text, flags=re.M)
        assert re.search(r"^ReadWritePaths=.*/var/lib/pycam/data", text, flags=re.M)
    # One of several cameras: the same unit, for the camera its instance names.
    assert "ExecStart=" + str(ROOT / ".venv/bin/python") + " " + str(ROOT / "app/security_system.py") + " --camera %i" \
        in units["pycam-security-system@.service"].splitlines()
    camera = units["pycam-security-system.service"].splitlines()
    # Each of these would put the camera's /dev nodes and /dev/i2c-1 behind a device allow-list.
    assert "PrivateDevices=yes" not in camera
    assert not [line for line in camera if line.startswith(("DeviceAllow=", "DevicePolicy=", "ProtectClock="))]
    assert "PrivateDevices=yes" in units["pycam-notifier.service"].splitlines()
    assert "WantedBy=multi-user.target" in units["pycam.target"]


@pytest.mark.timeout(90)
def test_the_demo_alerts_and_leaves_nothing_behind(tmp_path):
    """`make run`'s script: events print, and Ctrl-C removes its Redis and data folder; the owner's
    .env is not read (a bogus REDIS_URL there would be used otherwise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYCAM_", "SLACK_", "REDIS_"))}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(["scripts/demo.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("EVENT "):
                break
    finally:
        os.killpg(proc.pid, signal.SIGINT)                      # Ctrl-C in the terminal
        proc.wait(20)
    assert any(line.startswith("EVENT ") for line in seen), "".join(seen)[-2000:]
    assert list(tmp_path.iterdir()) == []                      # its folder (and Redis's) is gone
    def in_demo_dir(p):                                        # its Redis ran with --dir there
        try:
            return p.name() == "redis-server" and p.cwd().startswith(str(tmp_path))
        except (psutil.Error, OSError):
            return False
    assert not [p for p in psutil.process_iter() if in_demo_dir(p)]
