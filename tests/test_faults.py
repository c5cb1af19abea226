"""Faults the camera must ride out: a full disk, Redis away at start, a crash mid-write.
Real parts: a tmpfs of 1 MB for the full card (skipped where mounting is not allowed), a real
redis-server, the real daemon process on a real clip."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from app import keys
from config import EventsConfig
from app.storage.events import EventStore, event_files, new_event_id
from tests.conftest import ROOT, RedisServer, wait_for
from tests.test_camera_daemon import recovered, stop


def daemon(redis_url, data_dir, clip, config_dir, *extra, loop="true"):
    cfg = Path(config_dir) / "pycam.yaml"
    cfg.write_text(f"camera:\n  loop: {loop}\npantilt:\n  enabled: 'off'\nheartbeat_s: 1\n"
                   "trigger:\n  cooldown_s: 1\n")
    env = dict(os.environ, REDIS_URL=redis_url, PYCAM_DATA_DIR=str(data_dir), PYCAM_SOURCE=clip,
               PYCAM_CONFIG=str(cfg))
    return subprocess.Popen([sys.executable, "app/security_system.py", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB filesystem (tmpfs), unmounted afterwards."""
    where = tmp_path / "card"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a 1 MB tmpfs needs root (CI runs as root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(path: Path) -> None:
    """Write `path` until the filesystem has not one byte left."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (65536, 1024, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass


def jobs(r):
    return [json.loads(f["job"]) for _, f in r.xrange(keys.SLACK_OUTBOX)]


def test_the_events_folder_never_grows_past_its_cap(tmp_path):
    store = EventStore(tmp_path, EventsConfig(max_total_mb=0.25))
    for i in range(12):
        store.save({"id": new_event_id(1_700_000_000 + i)}, b"x" * 60_000, b"y" * 20_000)
        on_disk = sum(f.stat().st_size for f in (tmp_path / "events").rglob("*") if f.is_file())
        assert on_disk <= 0.25e6
    assert len(list((tmp_path / "events").rglob("*.json"))) == 3


def test_a_full_card_never_stops_the_camera_and_it_says_so(small_disk, tmp_path, redis_url, short_clip):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.set(keys.CAMERA_STATUS, "true")
    filler = small_disk / "filler"
    fill(filler)                                      # the card is full before the first event
    proc = daemon(redis_url, small_disk, short_clip, tmp_path)
    try:
        alert = wait_for(lambda: [j for j in jobs(r) if j["type"] == "alert"], timeout=30)[0]
        assert alert["snapshot"] is None                                    # alerted all the same, as text
        wait_for(lambda: any("cannot write events" in j.get("text", "") for j in jobs(r)), timeout=10)
        assert any("the data disk is nearly full" in j.get("text", "") for j in jobs(r))   # 1 MB < 200 MB free
        beat = json.loads(r.get(keys.heartbeat("security_system")))
        assert "cannot write events" in beat["detail"]["disk"]
        assert proc.poll() is None                                          # still running
        filler.unlink()                                                     # space comes back
        wait_for(lambda: any(j.get("text", "").endswith("written to disk again.") for j in jobs(r)), timeout=40)
        stored = wait_for(lambda: [j for j in jobs(r) if j["type"] == "alert" and j["snapshot"]], timeout=40)
        assert (small_disk / stored[0]["snapshot"]).is_file()
    finally:
        stop(proc)


def test_redis_down_at_start_with_arm_still_records_and_publishes_later(tmp_path, short_clip):
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    data = tmp_path / "data"
    proc = daemon(server.url, data, short_clip, tmp_path, "--arm", loop="false")
    try:
        wait_for(lambda: list(data.glob("events/*/*.json")), timeout=30)    # recorded with no Redis
        server.start()
        check = redis.Redis.from_url(server.url, decode_responses=True)
        wait_for(lambda: check.xrange(keys.EVENTS), timeout=15)
        assert check.get(keys.CAMERA_STATUS) == "true"
        assert [j["type"] for j in jobs(check)].count("alert") == 1
    finally:
        stop(proc)
        server.stop()


def test_an_event_cut_short_by_a_crash_is_finished_and_published_once(tmp_path, redis_url):
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag
    import config
    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    event_id = new_event_id()
    files = event_files(settings.data_dir, event_id)
    files["snapshot"].parent.mkdir(parents=True)
    files["snapshot"].write_bytes(b"jpeg")                 # images written, then kill -9: no metadata
    files["clean"].write_bytes(b"jpeg")
    stray = files["snapshot"].parent / f".{event_id}.json.abc.tmp"
    stray.write_bytes(b"{")
    os.utime(stray, (time.time() - 120,) * 2)             # left by the crash, minutes ago
    writing = files["snapshot"].parent / ".20990101-000000-abcdef.jpg.def.tmp"
    writing.write_bytes(b"jp")                             # another writer's, being written now
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    for _ in range(2):                                     # two restarts: published once
        d = CameraDaemon(settings, state.connect(redis_url, "test"), StopFlag())
        d.poll_control()                                   # first contact with Redis
        recovered(d)
        d.publisher.flush()
    assert not stray.exists() and writing.exists()
    assert [json.loads(f["event"])["id"] for _, f in r.xrange(keys.EVENTS)] == [event_id]
    assert json.loads(files["meta"].read_text())["snapshot"] == str(files["snapshot"].relative_to(settings.data_dir))


def test_a_password_in_the_camera_url_reaches_no_log_redis_value_or_reply(tmp_path, redis_url):
    from socket import socket
    from app.slack import status
    import config
    with socket() as s:                                   # a port nobody answers on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = "Zq7-unlikely-passw0rd"
    source = f"http://admin:{secret}@127.0.0.1:{port}/video.mjpg"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.set(keys.CAMERA_STATUS, "true")
    proc = daemon(redis_url, tmp_path / "data", source, tmp_path, loop="false")
    try:
        wait_for(lambda: (json.loads(r.get(keys.heartbeat("security_system")) or "{}").get("detail") or {})
                 .get("error"), timeout=20)
        reply = status.status_text(r, config.load_settings(env={"REDIS_URL": redis_url,
                                                                 "PYCAM_DATA_DIR": str(tmp_path / "data")}))
    finally:
        _took, out = stop(proc)
    assert "admin:***@" in out                            # the URL is still told, without its password
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "data" / "logs").glob("*"))
    values = [str(r.dump(k)) for k in r.keys("*")]
    for place in [out, logs, reply, *values]:
        assert secret not in place


@pytest.mark.parametrize("entry", ["app/security_system.py", "app/notifier.py", "app/s3_upload.py"])
def test_an_unusable_data_dir_stops_each_daemon_with_one_clear_line(tmp_path, redis_url, entry):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = dict(os.environ, REDIS_URL=redis_url, PYCAM_DATA_DIR=str(blocker / "data"))
    proc = subprocess.run([sys.executable, entry], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "the data dir" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_stream_that_stops_sending_is_given_up_within_seconds(tmp_path):
    """A camera that accepts the connection and then sends nothing: the source gives up after its
    read timeout instead of holding the frame loop (and letting the heartbeat expire)."""
    import socket
    import threading
    import config
    from app.camera.sources import STREAM_TIMEOUT_S, SourceError, open_source
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()[0]) for _ in range(4)], daemon=True).start()
    cfg = config.load_settings(env={"PYCAM_SOURCE": f"http://127.0.0.1:{listener.getsockname()[1]}/stream.mjpg"}).camera
    start = time.monotonic()
    with pytest.raises(SourceError):
        open_source(cfg).read()
    assert time.monotonic() - start < 3 * STREAM_TIMEOUT_S
    listener.close()


def test_a_picture_swap_the_full_card_refuses_keeps_the_event_as_it_was(small_disk):
    """The verifier passed a later frame, but the card is full: the saved event stays whole."""
    store = EventStore(small_disk, EventsConfig())
    meta = store.save({"id": new_event_id()}, b"s" * 1000, b"c" * 1000)
    fill(small_disk / "filler")
    with pytest.raises(OSError):
        store.save(meta, b"S" * 200_000, b"C" * 200_000)
    files = event_files(small_disk, meta["id"])
    assert files["snapshot"].read_bytes() == b"s" * 1000 and files["clean"].read_bytes() == b"c" * 1000
    assert store.load(meta["id"])["snapshot"] == meta["snapshot"]


def test_a_url_password_holding_slashes_or_at_signs_is_hidden_too():
    """People type passwords into camera URLs unencoded: 'pa/ss@word' must vanish whole."""
    from app.utils import redact
    text = redact("cannot open 'rtsp://admin:pa/ss@w0rd@cam.local:554/stream1' (timeout)")
    assert "pa/ss" not in text and "w0rd" not in text
    assert "rtsp://admin:***@cam.local:554/stream1" in text
