"""Two camera daemons, `front` and `garage`, on one real Redis, each with its own ACL user: their
events, alerts and status carry the right names, and a command for one camera leaves the other as
it was."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis

from app import keys
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


def test_redis_losing_its_data_restores_the_home_and_each_cameras_own_state(redis_url, r, tmp_path):
    """Home armed, the garage camera disarmed on its own; Redis restarts empty. Each camera puts
    back what it knew: the home stays armed (the garage's own "off" does not disarm the front
    camera), the garage stays off."""
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag

    def daemon(name):
        settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / name),
                                             "PYCAM_CAMERA_NAME": name, "PYCAM_CLIPS": "false"}, config_path=None)
        return CameraDaemon(settings, state.connect(redis_url, name), StopFlag())

    garage, front = daemon("garage"), daemon("front")      # the garage polls first: the race that mattered
    r.set(keys.CAMERA_STATUS, "true")
    r.set(keys.camera("garage", "armed"), "false")
    for d in (garage, front):
        d.poll_control()
    assert (garage.switches.armed, front.switches.armed) == (False, True)
    r.flushdb()                                            # Redis came back without its data
    for d in (garage, front):
        d.poll_control()
    assert r.get(keys.CAMERA_STATUS) == "true" and r.get(keys.camera("garage", "armed")) == "false"
    assert (garage.switches.armed, front.switches.armed) == (False, True)
    for d in (garage, front):
        d.pool and d.pool.shutdown()


def test_each_cameras_health_alarms_are_its_own(redis_url, tmp_path):
    """Two cameras' "lost" or "covered" alarms must not clear each other, and say which camera."""
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag
    boards = {}
    for name in ("front", "garage", "pycam"):
        settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / name),
                                             "PYCAM_CAMERA_NAME": name, "PYCAM_CLIPS": "false"}, config_path=None)
        d = CameraDaemon(settings, state.connect(redis_url, name), StopFlag())
        boards[name] = (set(d.board.alarms), d.who)
    assert boards["front"][0].isdisjoint(boards["garage"][0])
    assert "camera_source@front" in boards["front"][0] and boards["front"][1] == "camera front"
    assert "camera_source" in boards["pycam"][0] and boards["pycam"][1] == "the camera"   # one camera: as before
    with pytest.raises(config.ConfigError):
        config.load_settings(env={"PYCAM_CAMERA_NAME": "front\n"}, config_path=None)


def test_a_camera_taken_away_is_forgotten(redis_url, r):
    from app import cameras
    cameras.beat(r, "front", "running", True)
    cameras.beat(r, "attic", "running", True)
    cameras.set_armed(r, "attic", False)
    r.hset(keys.ALARMS, "camera_source@attic", json.dumps({"since": 1, "text": "lost"}))
    done = subprocess.run([sys.executable, "-m", "app.cli", "camera-forget", "attic"], cwd=ROOT,
                          env=process_env(REDIS_URL=redis_url), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "forgotten" in done.stdout
    assert set(cameras.known(r)) == {"front"} and not r.exists(keys.camera("attic", "armed"))
    assert not r.hexists(keys.ALARMS, "camera_source@attic")
