"""The camera daemon end to end: a real redis-server, a real clip played as a live camera."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from tests.conftest import ROOT, RedisServer, wait_for
from app import keys



def start_daemon(redis_url, data_dir, clip, *extra, loop="false"):
    cfg = Path(data_dir) / "pycam.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"camera:\n  loop: {loop}\npantilt:\n  enabled: 'off'\nheartbeat_s: 1\n")
    env = dict(os.environ, REDIS_URL=redis_url, PYCAM_DATA_DIR=str(data_dir), PYCAM_SOURCE=clip,
               PYCAM_CONFIG=str(cfg))
    return subprocess.Popen([sys.executable, "app/security_system.py", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def alert_jobs(r) -> list[dict]:
    """The alerts queued for Slack (an event's end and clip follow as jobs of their own)."""
    jobs = [json.loads(f["job"]) for _, f in r.xrange(keys.SLACK_OUTBOX)]
    return [j for j in jobs if j["type"] == "alert"]


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=10)
    return time.monotonic() - t0, out


def test_event_recorded_published_and_queued_for_slack(redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "true")
    proc = start_daemon(redis_url, tmp_path / "data", short_clip)
    try:
        entries = wait_for(lambda: r.xrange(keys.EVENTS), timeout=30)
        meta = json.loads(entries[0][1]["event"])
        data = tmp_path / "data"
        # On disk before anyone is told: snapshot, clean frame, metadata.
        for name in ("snapshot", "clean"):
            img = cv2.imread(str(data / meta[name]))
            assert img is not None and img.shape[1] == 768
        assert json.loads((data / meta["snapshot"]).with_suffix(".json").read_text())["id"] == meta["id"]
        assert meta["boxes"] and 0 < meta["area"] < 1
        job = json.loads(r.xrange(keys.SLACK_OUTBOX)[0][1]["job"])
        assert job["type"] == "alert" and job["event_id"] == meta["id"] and job["snapshot"] == meta["snapshot"]
        assert json.loads(r.get(keys.LATEST_IMAGE))["event_id"] == meta["id"]
        beat = json.loads(r.get(keys.heartbeat("security_system")))
        assert beat["pid"] == proc.pid and r.ttl(keys.heartbeat("security_system")) > 0
    finally:
        took, out = stop(proc)
    assert took < 2.0, out
    assert "EVENT " + meta["id"] in out          # printed as it fires


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make test installs it)")
def test_the_event_clip_is_written_beside_it_and_queued_for_its_thread(redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "true")
    proc = start_daemon(redis_url, tmp_path / "data", short_clip)
    try:
        jobs = wait_for(lambda: [j for j in (json.loads(f["job"]) for _, f in r.xrange(keys.SLACK_OUTBOX))
                                 if j["type"] == "clip"], timeout=60)
    finally:
        stop(proc)
    [alert] = alert_jobs(r)
    [clip] = jobs
    assert clip["event_id"] == alert["event_id"] and clip["id"] == f"clip:{alert['event_id']}"
    data = tmp_path / "data"
    meta = json.loads((data / alert["snapshot"]).with_suffix(".json").read_text())
    assert meta["clip"] == clip["clip"] and (data / clip["clip"]).suffix == ".mp4"
    cap = cv2.VideoCapture(str(data / clip["clip"]))
    ok, picture = cap.read()
    assert ok and picture.shape[1] == 640
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS) == pytest.approx(meta["clip_s"], abs=0.2)
    # The clip starts before the trigger: its first picture is the scene without the person.
    empty = cv2.imread(str(short_clip % 0))
    assert abs(cv2.resize(empty, (640, picture.shape[0])).astype(int) - picture).mean() < 8


def test_no_slack_job_while_notifications_are_off(redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "true")
    r.set(keys.CAMERA_NOTIFICATIONS, "false")
    proc = start_daemon(redis_url, tmp_path / "data", short_clip)
    try:
        wait_for(lambda: r.xrange(keys.EVENTS), timeout=30)
        assert r.xlen(keys.SLACK_OUTBOX) == 0
    finally:
        stop(proc)


def test_disarmed_camera_records_nothing_and_arming_takes_effect_within_a_second(
        redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "false")
    proc = start_daemon(redis_url, tmp_path / "data", short_clip, loop="true")
    try:
        beat = lambda: json.loads(r.get(keys.heartbeat("security_system")) or "null")
        wait_for(lambda: (beat() or {}).get("state") == "disarmed", timeout=10)
        time.sleep(1.5)
        assert beat()["detail"]["frames"] == 0   # the camera is not read while disarmed
        r.set(keys.CAMERA_STATUS, "true")
        t0 = time.monotonic()
        wait_for(lambda: (beat() or {}).get("detail", {}).get("frames", 0) > 0, timeout=5)
        # heartbeat_s is 1, so the first frames show within ~1 s after the flag changes
        assert time.monotonic() - t0 < 2.5
        r.set(keys.CAMERA_STATUS, "false")
        wait_for(lambda: (beat() or {}).get("state") == "disarmed", timeout=3)
    finally:
        stop(proc)


def test_redis_restart_mid_run_loses_no_event(tmp_path, short_clip):
    """Redis goes away before the person walks in and comes back later: the event still arrives."""
    import config
    from app.camera.sources import open_source
    from app.camera.daemon import CameraDaemon
    from app import state
    from app.utils import StopFlag

    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        settings = config.load_settings(env={"REDIS_URL": server.url, "PYCAM_DATA_DIR": str(tmp_path / "data"),
                                             "PYCAM_SOURCE": short_clip})
        settings.camera.loop = False
        client = state.connect(server.url, "test", socket_timeout=1, connect_timeout=0.5, retries=1)
        client.set(keys.CAMERA_STATUS, "true")
        stop_flag = StopFlag()
        daemon = CameraDaemon(settings, client, stop_flag, open_source=open_source)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        wait_for(lambda: daemon.frames > 5, timeout=10)
        server.stop()                                   # Redis dies while the room is still empty
        events_dir = tmp_path / "data" / "events"
        wait_for(lambda: list(events_dir.glob("*/*.json")), timeout=30)   # recorded meanwhile
        wait_for(lambda: daemon.publisher.pending, timeout=5)     # ... and waiting for Redis (queued just after the files)
        server.start()                                   # Redis is back (empty: no persistence here)
        check = redis.Redis.from_url(server.url, decode_responses=True)
        entries = wait_for(lambda: check.xrange(keys.EVENTS), timeout=10)
        event_id = json.loads(entries[0][1]["event"])["id"]
        jobs = [json.loads(f["job"]) for _, f in check.xrange(keys.SLACK_OUTBOX)]
        assert [j["event_id"] for j in jobs if j["type"] == "alert"] == [event_id]
        # Redis came back empty: the camera did not disarm itself, and said so in Slack.
        assert check.get(keys.CAMERA_STATUS) == "true"
        assert any(j["type"] == "message" and "stays *armed*" in j["text"] for j in jobs)
        stop_flag.set()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        server.stop()


def test_restart_publishes_an_event_recorded_while_redis_was_down(tmp_path, redis_url, r):
    """An event on disk that never reached Redis (crash) is published by the next start, once."""
    import config
    from app.storage.events import EventStore, new_event_id
    from app.camera.daemon import CameraDaemon
    from app import state
    from app.utils import StopFlag

    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    store = EventStore(settings.data_dir, settings.events)
    meta = store.save({"id": new_event_id(), "time": time.time(), "area": 0.1, "boxes": [], "verified": None},
                      b"jpg", b"jpg")
    for _ in range(2):   # two restarts: published once
        daemon = CameraDaemon(settings, state.connect(redis_url, "test"), StopFlag())
        daemon.poll_control()                      # first contact with Redis
        recovered(daemon)
        daemon.publisher.flush()
    assert [json.loads(f["event"])["id"] for _, f in r.xrange(keys.EVENTS)] == [meta["id"]]
    assert len(alert_jobs(r)) == 1


def recovered(daemon) -> None:
    """Run the daemon's between-frames recovery until the store is scanned and checked against Redis."""
    wait_for(lambda: (daemon.recover(), daemon.scanning is None and daemon.to_check is None
                      and daemon.checking is None)[1], timeout=10)


def first_event_verified_by(verifier, redis_url, r, tmp_path, clip) -> dict:
    """Run the daemon (in a thread, on the clip, armed) with this verifier until its first event is
    published; its metadata from the stream."""
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.camera.sources import open_source
    from app.utils import StopFlag
    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"),
                                         "PYCAM_SOURCE": clip})
    settings.camera.loop = False
    r.set(keys.CAMERA_STATUS, "true")
    stop_flag = StopFlag()
    daemon = CameraDaemon(settings, state.connect(redis_url, "test"), stop_flag, open_source=open_source,
                          verifier=verifier)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        entries = wait_for(lambda: r.xrange(keys.EVENTS), timeout=30)
    finally:
        stop_flag.set()
        thread.join(5)
    return json.loads(entries[0][1]["event"])


def test_verifier_refusal_records_the_event_but_does_not_notify(redis_url, r, tmp_path, short_clip):
    """An event the verifier refuses is on disk and in the stream (verified false), counted, not sent."""
    from app.camera.verifier import Verdict

    class Refuse:
        calls = 0

        def verify(self, frames, boxes):
            Refuse.calls += 1
            return Verdict(False, 0.1, "no person", "test", 0.0)

    meta = first_event_verified_by(Refuse(), redis_url, r, tmp_path, short_clip)
    assert meta["verified"] is False and meta["notified"] is False
    assert r.xlen(keys.SLACK_OUTBOX) == 0 and r.get(keys.UNVERIFIED_COUNT) == "1"
    assert Refuse.calls >= 2          # looked again at newer frames before giving up


def test_a_later_frame_the_verifier_passes_becomes_the_alert_picture(redis_url, r, tmp_path, short_clip):
    """Refused at the trigger (only a head in the door), passed half a second later: the owner is
    alerted once, with the frame that passed and its boxes, on disk and in the Slack job alike."""
    from app.camera.verifier import Verdict

    class SecondLook:
        boxes = []

        def verify(self, frames, boxes):
            SecondLook.boxes.append(boxes)
            passed = len(SecondLook.boxes) >= 2
            return Verdict(passed, 0.9 if passed else 0.1, "person" if passed else "no person", "test", 0.0)

    meta = first_event_verified_by(SecondLook(), redis_url, r, tmp_path, short_clip)
    assert meta["verified"] is True and meta["notified"] is True
    assert meta["boxes"] == SecondLook.boxes[1] != SecondLook.boxes[0]
    [job] = alert_jobs(r)
    assert job["boxes"] == meta["boxes"]
    on_disk = json.loads((tmp_path / "data" / meta["snapshot"]).with_suffix(".json").read_text())
    assert on_disk["verified"] is True and on_disk["boxes"] == meta["boxes"]


def test_a_verifier_that_crashes_never_stops_the_camera_and_the_event_is_notified(redis_url, r, tmp_path,
                                                                                 short_clip):
    class Broken:
        def verify(self, frames, boxes):
            raise RuntimeError("model error on an odd frame")

    meta = first_event_verified_by(Broken(), redis_url, r, tmp_path, short_clip)
    assert meta["verified"] is None and meta["notified"] is True     # told, unverified
    assert len(alert_jobs(r)) == 1


def test_the_camera_watches_while_its_event_store_is_scanned(tmp_path, redis_url, r, short_clip, monkeypatch):
    """Listing 50,000 stored events takes seconds (tens on a Pi): frames and alerts go on meanwhile,
    and the store's size and cap apply once the scan is in, the events of the meantime counted."""
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.storage.events import EventStore
    from app.utils import StopFlag

    gate = threading.Event()
    real_scan = EventStore.scan

    def slow_scan(self, recent_days=0):
        gate.wait(30)                          # the scan of a large store, held until the test says
        return real_scan(self, recent_days)

    monkeypatch.setattr(EventStore, "scan", slow_scan)
    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"),
                                         "PYCAM_SOURCE": short_clip})
    settings.camera.loop = False
    settings.clips.enabled = False             # a clip being encoded would be a file the count races with
    r.set(keys.CAMERA_STATUS, "true")
    stop_flag = StopFlag()
    daemon = CameraDaemon(settings, state.connect(redis_url, "test"), stop_flag)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: r.xrange(keys.EVENTS), timeout=30)         # alerted while the scan waits
        assert not daemon.store.ready and daemon.frames > 10
        gate.set()
        wait_for(lambda: daemon.store.ready, timeout=10)
        on_disk = sum(f.stat().st_size for f in (tmp_path / "data" / "events").rglob("*") if f.is_file())
        assert daemon.store.total == on_disk and len(daemon.store.index) >= 1
        published = [json.loads(f["event"])["id"] for _, f in r.xrange(keys.EVENTS)]
        assert len(published) == len(set(published)) and set(published) <= set(daemon.store.index)
    finally:
        gate.set()
        stop_flag.set()
        thread.join(10)


def test_with_redis_down_at_start_the_store_is_still_scanned_and_kept_under_its_cap(tmp_path):
    """A Pi that boots without Redis still keeps its card from filling: the scan and the size cap
    do not wait for Redis."""
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.storage.events import EventStore, new_event_id
    from app.utils import StopFlag
    from tests.conftest import free_port

    settings = config.load_settings(env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                                         "PYCAM_DATA_DIR": str(tmp_path / "data")})
    store = EventStore(settings.data_dir, settings.events)
    for age in (300, 200, 100):
        store.save({"id": new_event_id(time.time() - age)}, b"s" * 2000, b"c" * 2000)
    settings.events.max_total_mb = 0.005                        # room for one of them
    stop_flag = StopFlag()
    daemon = CameraDaemon(settings, state.connect(settings.redis_url, "test", socket_timeout=0.2,
                                                  connect_timeout=0.2, retries=1), stop_flag)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: daemon.store.ready and len(daemon.store.index) == 1, timeout=10)
        assert len(list((tmp_path / "data" / "events").rglob("*.json"))) == 1
    finally:
        stop_flag.set()
        thread.join(10)


class StillCamera:
    """A camera (the one part faked) showing one picture; counts how often it is opened."""
    opened = 0

    def __init__(self, picture):
        self.picture, self.i = picture, 0

    def open(self, cfg):
        StillCamera.opened += 1
        return self

    def read(self):
        from app.camera.sources import Frame
        time.sleep(0.05)
        self.i += 1
        return Frame(self.i, time.time(), self.picture, lambda: self.picture)

    def close(self):
        pass


@pytest.mark.parametrize("allowed", [False, True])
def test_a_disarmed_camera_opens_for_a_live_viewer_only_when_the_owner_allows_it(tmp_path, redis_url, r,
                                                                                 short_clip, allowed):
    import config
    import redis as redis_py
    from app import live, state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag

    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    settings.web.live_when_disarmed = allowed
    r.set(keys.CAMERA_STATUS, "false")
    StillCamera.opened = 0
    camera = StillCamera(cv2.imread(short_clip % 0))
    stop_flag = StopFlag()
    daemon = CameraDaemon(settings, state.connect(redis_url, "test"), stop_flag, open_source=camera.open)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        time.sleep(0.5)
        assert StillCamera.opened == 0                       # disarmed, nobody watching: not looking
        got = live.one_frame(r, redis_py.Redis.from_url(redis_url), wait_s=3)   # someone opens the live view
        assert (got is not None) == allowed
        assert daemon.capture.is_open == allowed
        if allowed:
            assert cv2.imdecode(np.frombuffer(got[1], np.uint8), cv2.IMREAD_COLOR).shape[1] == 640
            r.delete(keys.LIVE_VIEWER)                       # they leave: the camera is released
            wait_for(lambda: not daemon.capture.is_open, timeout=5)
    finally:
        stop_flag.set()
        thread.join(10)
