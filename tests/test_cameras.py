"""Two camera daemons, `front` and `garage`, on one real Redis, each with its own ACL user: their
events, alerts and status carry the right names, and a command for one camera leaves the other as
it was."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis

from app import keys, outbox
from app.slack import commands, status
from tests.conftest import ROOT, process_env, wait_for
from tests.test_redis_acl import camera, stop


def camera_url(redis_url: str, name: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", "camera-user", name, "--hub", "127.0.0.1"],
                          cwd=ROOT, env=process_env(REDIS_URL=redis_url), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return next(l for l in done.stdout.splitlines() if l.startswith("REDIS_URL=")).removeprefix("REDIS_URL=")


@pytest.fixture
def two_cameras(redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "true")
    procs = {name: camera(camera_url(redis_url, name), tmp_path / name / "data", short_clip, name=name, loop=True)
             for name in ("front", "garage")}
    yield procs
    for proc in procs.values():
        stop(proc)
    admin = redis.Redis.from_url(redis_url)
    for name in procs:
        admin.acl_deluser(f"camera-{name}")


def beats(r) -> dict:
    return {name: json.loads(value) for name, value in r.hgetall(keys.CAMERAS).items()}


def command(r, settings, name: str, text: str = "") -> str:
    return commands.HANDLERS[name](r, settings, commands.Command(name, text, "U0OWNER", "owner",
                                                                 "https://hooks.slack.com/commands/T/1/x"))["text"]


def test_two_cameras_on_one_redis_keep_their_names_and_obey_their_own_commands(two_cameras, r, settings, tmp_path):
    # Each camera's events, alerts and latest snapshot carry its name.
    def cameras_seen():
        named = {json.loads(f["event"])["camera"] for _, f in r.xrange(keys.EVENTS)}
        return named if named == {"front", "garage"} else None
    wait_for(cameras_seen, timeout=60)
    alerts = [j for j in (json.loads(f["job"]) for _, f in r.xrange(keys.SLACK_OUTBOX)) if j["type"] == "alert"]
    assert {json.loads(r.hget(f"story:{a['event_id']}", "f:camera")) for a in alerts} == {"front", "garage"}
    assert json.loads(r.get(keys.camera("garage", "latest")))["camera"] == "garage"
    wait_for(lambda: set(beats(r)) == {"front", "garage"} and all(b["armed"] for b in beats(r).values()), timeout=10)
    text = status.status_text(r, settings)
    assert "Cameras: front armed" in text and "garage armed" in text

    # /pycam_off garage disarms the garage alone; the home stays armed, the front camera too.
    answer = command(r, settings, "off", "garage")
    assert answer.startswith("Camera garage is *disarmed*")
    wait_for(lambda: beats(r)["garage"]["state"] == "disarmed", timeout=10)
    assert beats(r)["front"]["armed"] is True and r.get(keys.CAMERA_STATUS) == "true"
    assert "garage disarmed" in status.status_text(r, settings)

    # /pycam_latest garage sends the garage's own snapshot (read where the garage camera writes: two
    # cameras on one Pi); a name nobody has is refused.
    settings.data_dir = tmp_path / "garage" / "data"
    command(r, settings, "latest", "garage")
    [job] = [j for j in (json.loads(f["job"]) for _, f in r.xrange(keys.SLACK_OUTBOX)) if j["type"] == "image_response"]
    assert job["snapshot"] == json.loads(r.get(keys.camera("garage", "latest")))["path"]
    assert "No camera is called 'attic'" in command(r, settings, "off", "attic")

    # A command for the whole home applies to every camera again.
    command(r, settings, "on")
    wait_for(lambda: beats(r)["garage"]["armed"] is True, timeout=10)
    assert not r.exists(keys.camera("garage", "armed"))


def test_rotate_one_camera_or_all(two_cameras, r, settings):
    wait_for(lambda: set(beats(r)) == {"front", "garage"}, timeout=30)
    for name in ("front", "garage"):        # as if both had a HAT
        r.set(keys.camera(name, "position"), json.dumps({"pan": 0, "tilt": 0, "present": True, "time": 1}))
    assert command(r, settings, "rotate", "front 30 20").startswith("Moving the camera to pan 30, tilt 20")
    assert json.loads(r.get(keys.camera("front", "pantilt"))) == {"pan": 30, "tilt": 20}
    assert not r.exists(keys.camera("garage", "pantilt"))
    r.set(keys.PANTILT_POSITION, json.dumps({"pan": 0, "tilt": 0, "present": True, "time": 1}))
    command(r, settings, "rotate", "-10 5")
    assert all(json.loads(r.get(keys.camera(n, "pantilt"))) == {"pan": -10, "tilt": 5} for n in ("front", "garage"))
    assert command(r, settings, "rotate", "attic 1 2").startswith("Usage: `/rotate [CAMERA] PAN TILT`")
