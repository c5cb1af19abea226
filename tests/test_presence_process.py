"""who_is_home end to end: real providers, a real redis-server, and a clock the test advances."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from app import keys, outbox, state
from app.presence.providers import build_providers
from app.presence.daemon import WhoIsHome
from config import PresenceConfig
from tests.conftest import RedisServer
from tests.presence_fakes import PASSWORD, FakeRouter

ROOT = Path(__file__).resolve().parent.parent
ALICE, BOB = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"
PEOPLE = [{"name": "Alice", "devices": [ALICE]}, {"name": "Bob", "devices": [BOB]}]


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


class Phones:
    """The devices a `command` provider (`cat` of this file) reports."""

    def __init__(self, path: Path):
        self.path = path
        self.set()

    def set(self, *macs: str) -> None:
        self.path.write_text("".join(m + "\n" for m in macs))


@pytest.fixture
def phones(tmp_path):
    return Phones(tmp_path / "phones.txt")


@pytest.fixture
def router():
    fake = FakeRouter().start()
    yield fake
    fake.stop()


def command_provider(phones: Phones) -> dict:
    return {"type": "command", "argv": ["cat", str(phones.path)], "timeout_s": 5}


def router_provider(fake: FakeRouter) -> dict:
    return {"type": "router", "devices_url": fake.url + "/api/devices", "list_path": "data.devices",
            "timeout_s": 1, "login": {"url": fake.url + "/login", "username": "admin",
                                      "password_env": "ROUTER_PASSWORD"}}


def make(r, providers: list[dict], clock: Clock, consider_home_s: float = 600) -> WhoIsHome:
    cfg = PresenceConfig.model_validate({"poll_s": 30, "consider_home_s": consider_home_s,
                                         "people": PEOPLE, "providers": providers})
    return WhoIsHome(r, cfg, build_providers(cfg, {"ROUTER_PASSWORD": PASSWORD}), now=clock)


def messages(r) -> list[str]:
    return [outbox.parse(fields)["text"] for _id, fields in r.xrange(keys.SLACK_OUTBOX)]


def polls(app: WhoIsHome, clock: Clock, seconds: float, every: float = 30) -> None:
    """Advance the clock `seconds` in poll steps, polling after each."""
    for _ in range(int(seconds // every)):
        clock.advance(every)
        app.poll_once()


@pytest.fixture
def auto_on(r):
    state.init_flags(r)
    state.set_flag(r, keys.AUTO_DETECT_STATUS, True)
    return r


def test_everyone_leaving_arms_after_consider_home(auto_on, phones):
    r, clock = auto_on, Clock()
    app = make(r, [command_provider(phones)], clock)
    phones.set(ALICE, BOB)
    result = app.poll_once()
    assert result["home"] == ["Alice", "Bob"] and result["arrived"] == ["Alice", "Bob"]
    assert state.get_json(r, keys.HOME) == ["Alice", "Bob"]
    assert float(r.hget(keys.PRESENCE_LAST_SEEN, "Alice")) == clock.t
    left_at = clock.t
    phones.set()
    polls(app, clock, 570)
    assert state.get_json(r, keys.HOME) == ["Alice", "Bob"]
    assert state.get_flag(r, keys.CAMERA_STATUS) is False and messages(r) == []
    clock.advance(30)
    result = app.poll_once()
    assert clock.t - left_at == 600 and result["left"] == ["Alice", "Bob"]
    assert state.get_json(r, keys.HOME) == []
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    assert messages(r) == ["Armed: nobody home"]
    # Coming back disarms at once.
    phones.set(BOB)
    clock.advance(30)
    app.poll_once()
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
    assert messages(r) == ["Armed: nobody home", "Disarmed: Bob arrived"]


def test_a_phone_asleep_for_less_than_consider_home_changes_nothing(auto_on, phones):
    r, clock = auto_on, Clock()
    app = make(r, [command_provider(phones)], clock)
    phones.set(ALICE)
    app.poll_once()
    phones.set()
    polls(app, clock, 540)  # nine minutes asleep
    phones.set(ALICE)
    polls(app, clock, 30)
    phones.set()
    polls(app, clock, 540)
    assert state.get_json(r, keys.HOME) == ["Alice"]
    assert state.get_flag(r, keys.CAMERA_STATUS) is False and messages(r) == []


def test_a_failing_router_is_no_data_and_changes_nothing(auto_on, router):
    r, clock = auto_on, Clock()
    app = make(r, [router_provider(router)], clock)
    router.set_devices(ALICE)
    app.poll_once()
    router.fail_next = [500] * 100
    polls(app, clock, 1200)  # twice consider_home without an answer
    assert state.get_json(r, keys.HOME) == ["Alice"]
    assert state.get_flag(r, keys.CAMERA_STATUS) is False and messages(r) == []
    status = state.get_json(r, keys.PRESENCE_STATUS)
    assert status["providers"]["router"]["error"] == "devices request: HTTP 500"
    assert status["no_data"] == ["Alice", "Bob"]
    app.heartbeat()
    beat = state.get_json(r, keys.heartbeat("who_is_home"))
    assert beat["state"] == "degraded"
    assert beat["detail"]["providers"] == {"router": "devices request: HTTP 500"}
    assert PASSWORD not in json.dumps(beat) + json.dumps(status)
    # The router answers again without Alice: she is away only after consider_home of answers.
    router.fail_next = []
    router.set_devices()
    polls(app, clock, 570)
    assert state.get_json(r, keys.HOME) == ["Alice"]
    polls(app, clock, 30)
    assert state.get_json(r, keys.HOME) == [] and messages(r) == ["Armed: nobody home"]


def slack_command(r, armed: bool, clock: Clock) -> None:
    """What the Slack app does on /pycam_on or /pycam_off."""
    with r.pipeline() as pipe:
        state.set_flag(pipe, keys.CAMERA_STATUS, armed)
        state.set_json(pipe, keys.MANUAL_OVERRIDE,
                       {"state": armed, "home": state.get_json(r, keys.HOME, []), "time": clock.t})
        pipe.execute()


def test_a_manual_command_holds_until_the_next_arrival(auto_on, phones):
    r, clock = auto_on, Clock()
    app = make(r, [command_provider(phones)], clock, consider_home_s=60)
    phones.set(ALICE)
    app.poll_once()
    # Alice, at home, wants the camera on tonight.
    slack_command(r, True, clock)
    polls(app, clock, 300)
    assert state.get_flag(r, keys.CAMERA_STATUS) is True and messages(r) == []
    # Bob comes home: the override ends, and the automatic rule disarms.
    phones.set(ALICE, BOB)
    polls(app, clock, 30)
    assert r.get(keys.MANUAL_OVERRIDE) is None
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
    assert messages(r) == ["Disarmed: Bob arrived"]
    # Everyone leaves and it arms; /pycam_off from the office holds while nobody is home...
    phones.set()
    polls(app, clock, 60)
    assert messages(r)[-1] == "Armed: nobody home"
    slack_command(r, False, clock)
    polls(app, clock, 600)
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
    assert messages(r) == ["Disarmed: Bob arrived", "Armed: nobody home"]
    # ...until someone arrives (no message: it is already off), and the next departure arms again.
    phones.set(BOB)
    polls(app, clock, 30)
    assert r.get(keys.MANUAL_OVERRIDE) is None
    phones.set()
    polls(app, clock, 60)
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    assert messages(r) == ["Disarmed: Bob arrived", "Armed: nobody home", "Armed: nobody home"]


def test_with_auto_off_home_is_kept_but_the_camera_is_left_alone(r, phones):
    state.init_flags(r)
    clock = Clock()
    app = make(r, [command_provider(phones)], clock, consider_home_s=0)
    phones.set(ALICE)
    app.poll_once()
    phones.set()
    polls(app, clock, 30)
    assert state.get_json(r, keys.HOME) == []
    assert state.get_flag(r, keys.CAMERA_STATUS) is False and messages(r) == []


def test_the_loop_rides_out_a_redis_restart(tmp_path, phones):
    server = RedisServer(tmp_path)
    server.start()
    stop = threading.Event()
    try:
        r = state.connect(server.url, "test", socket_timeout=1)
        app = make(r, [command_provider(phones)], Clock(), consider_home_s=0)
        loop = threading.Thread(target=app.run, args=(stop,), kwargs={"heartbeat_s": 0.1, "poll_s": 0.1},
                                daemon=True)
        phones.set(ALICE)
        loop.start()
        wait_for(lambda: state.get_json(r, keys.HOME) == ["Alice"])
        server.stop()
        time.sleep(1.5)  # longer than the client's own retries: the loop sees Redis down
        server.start()  # an empty Redis: home and the heartbeat are written again
        wait_for(lambda: state.get_json(r, keys.HOME) == ["Alice"] and r.exists(keys.heartbeat("who_is_home")),
                 timeout=10)
        state.set_flag(r, keys.AUTO_DETECT_STATUS, True)
        phones.set()
        wait_for(lambda: state.get_flag(r, keys.CAMERA_STATUS) is True)
        stop.set()
        loop.join(3)
        assert not loop.is_alive()
    finally:
        stop.set()
        server.stop()


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- the real process ---------------------------------------------------------------------------------

def process_env(tmp_path, redis_url, providers: list[dict], password: str = PASSWORD) -> dict:
    cfg = tmp_path / "pycam.yaml"
    cfg.write_text(json.dumps({"presence": {"poll_s": 5, "people": PEOPLE, "providers": providers}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYCAM_", "REDIS_"))}
    env.update(PYCAM_CONFIG=str(cfg), REDIS_URL=redis_url, PYCAM_DATA_DIR=str(tmp_path / "data"),
               ROUTER_PASSWORD=password)
    return env


def test_once_prints_one_poll(tmp_path, redis_url, r, router, phones):
    router.set_devices(ALICE, "aa:bb:cc:dd:ee:77")
    phones.set(BOB)
    env = process_env(tmp_path, redis_url, [router_provider(router), command_provider(phones)])
    out = subprocess.run([sys.executable, "app/who_is_home.py", "--once"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["home"] == ["Alice", "Bob"] and result["no_data"] == []
    assert result["providers"]["router"]["ok"] is True
    assert result["providers"]["router"]["devices"] == [ALICE, "aa:bb:cc:dd:ee:77"]  # to find your MAC
    assert result["decision"]["reason"] == "auto_detect_status is off"
    assert state.get_json(r, keys.HOME) == ["Alice", "Bob"]


def test_once_with_a_wrong_password_reports_it_without_the_password(tmp_path, redis_url, router):
    env = process_env(tmp_path, redis_url, [router_provider(router)], password="Wr0ng-pass")
    out = subprocess.run([sys.executable, "app/who_is_home.py", "--once"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["providers"]["router"]["error"] == "login refused: HTTP 401 (check ROUTER_PASSWORD)"
    assert "Wr0ng-pass" not in out.stdout + out.stderr


def test_the_daemon_beats_and_stops_on_sigterm(tmp_path, redis_url, r, phones):
    phones.set(ALICE)
    env = process_env(tmp_path, redis_url, [command_provider(phones)])
    proc = subprocess.Popen([sys.executable, "app/who_is_home.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (state.get_json(r, keys.heartbeat("who_is_home")) or {}).get("detail", {}).get("home"),
                 timeout=15)
        beat = state.get_json(r, keys.heartbeat("who_is_home"))
        assert beat["state"] == "running" and beat["detail"]["providers"] == {"command": "ok"}
        assert state.get_json(r, keys.HOME) == ["Alice"]
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert proc.wait(5) == 0
        assert time.monotonic() - t0 < 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "data" / "logs" / "who_is_home.log").read_text()
    assert "Alice arrived (…:ee:01)" in log and ALICE not in log


def test_sigterm_during_a_slow_poll_stops_within_two_seconds(tmp_path, redis_url, r):
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "slow.py"
    script.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    env = process_env(tmp_path, redis_url, [{"type": "command", "argv": [sys.executable, str(script)],
                                             "timeout_s": 60}])
    proc = subprocess.Popen([sys.executable, "app/who_is_home.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=15)
        beat = state.get_json(r, keys.heartbeat("who_is_home"))
        assert beat["detail"]["providers"] == {"command": "not polled yet"}
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert proc.wait(5) == 0
        assert time.monotonic() - t0 < 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    child = int(pid_file.read_text())
    wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2])
