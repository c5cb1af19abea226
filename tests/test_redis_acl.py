"""A camera Pi's Redis user on the hub: made by `pycam camera-user`, enough for the real camera
daemon and nothing more; a wrong password is said plainly and the camera keeps recording."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from app import keys
from tests.conftest import ROOT, process_env, wait_for


@pytest.fixture
def camera_user(redis_url):
    """`pycam camera-user front` run on the hub; yields the REDIS_URL it printed for the camera Pi."""
    done = subprocess.run([sys.executable, "-m", "app.cli", "camera-user", "front", "--hub", "127.0.0.1"],
                          cwd=ROOT, env=process_env(REDIS_URL=redis_url), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    [line] = [l for l in done.stdout.splitlines() if l.startswith("REDIS_URL=")]
    yield line.removeprefix("REDIS_URL=")
    redis.Redis.from_url(redis_url).acl_deluser("camera-front")


def camera(url: str, data: Path, clip: str, name: str = "front", loop: bool = False, **env: str) -> subprocess.Popen:
    """The camera daemon as a camera Pi runs it: its own name, data dir and REDIS_URL."""
    data.parent.mkdir(parents=True, exist_ok=True)
    cfg = data.parent / "camera.yaml"
    cfg.write_text(f"camera:\n  name: {name}\n  loop: {str(loop).lower()}\npantilt:\n  enabled: 'off'\n"
                   "heartbeat_s: 1\n")
    env = process_env(REDIS_URL=url, PYCAM_DATA_DIR=str(data), PYCAM_SOURCE=clip, PYCAM_CONFIG=str(cfg), **env)
    return subprocess.Popen([sys.executable, "app/security_system.py", "--arm"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    return out


def test_the_camera_user_runs_the_camera_and_can_do_nothing_else(camera_user, r, tmp_path, short_clip):
    assert "camera-front:" in camera_user and "@127.0.0.1:" in camera_user
    proc = camera(camera_user, tmp_path / "data", short_clip)
    try:
        entries = wait_for(lambda: r.xrange(keys.EVENTS), timeout=40)
        wait_for(lambda: [f for _, f in r.xrange(keys.SLACK_OUTBOX) if json.loads(f["job"])["type"] == "alert"],
                 timeout=10)
        assert json.loads(entries[0][1]["event"])["camera"] == "front"
        assert r.exists(keys.heartbeat("security_system")) and r.get(keys.CAMERA_STATUS) == "true"
    finally:
        out = stop(proc)
    assert "refused" not in out and "NOPERM" not in out, out
    as_camera = redis.Redis.from_url(camera_user)
    r.set("slack:delivered:x", 1)
    for forbidden in (lambda: as_camera.flushall(), lambda: as_camera.config_get("*"),
                      lambda: as_camera.get("slack:delivered:x"), lambda: as_camera.set(keys.HOME, "[]"),
                      lambda: as_camera.keys("*"), lambda: as_camera.acl_list(),
                      # the home's jobs (slash commands' response URLs): not read, taken or deleted
                      lambda: as_camera.xrange(keys.SLACK_OUTBOX),
                      lambda: as_camera.xreadgroup("notifier", "thief", {keys.SLACK_OUTBOX: ">"}),
                      lambda: as_camera.delete(keys.EVENTS), lambda: as_camera.xrange("camera:garage:slack:outbox")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    assert r.exists("slack:delivered:x")


def test_a_wrong_password_is_said_plainly_and_the_camera_keeps_recording(camera_user, r, tmp_path, short_clip):
    wrong = camera_user.replace("camera-front:", "camera-front:not", 1)
    data = tmp_path / "data"
    proc = camera(wrong, data, short_clip)
    try:
        wait_for(lambda: list((data / "events").glob("*/*.json")), timeout=40)    # recorded on disk
    finally:
        out = stop(proc)
    assert "Redis refused the camera" in out and "REDIS_URL" in out
    assert out.count("Redis refused the camera") == 1                            # said once, not per frame
    assert not r.xrange(keys.EVENTS)
    assert "not" + camera_user.split(":")[2].split("@")[0] not in out            # never the password
