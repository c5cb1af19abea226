"""A camera Pi on the hub's Redis (role: camera): its images stay on it and its own notifier sends
them, under its ACL user; what the hub queues about its events (a label, /pycam_latest) goes to
that Pi's outbox; and its Redis link cut and restored loses none of its events."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest
import redis

from app import keys, outbox
from app.slack import commands, status
from app.slack.buttons import LabelClick, label_event
from app.storage import labels
from tests.conftest import ROOT, process_env, wait_for
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack
from tests.test_cameras import camera_url
from tests.test_redis_acl import camera, stop


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.close()


@pytest.fixture
def front_url(redis_url):
    url = camera_url(redis_url, "front")
    yield url
    redis.Redis.from_url(redis_url).acl_deluser("camera-front")


def notifier(url: str, data, fake, log) -> subprocess.Popen:
    """The notifier as a camera Pi runs it, beside its camera daemon."""
    env = process_env(REDIS_URL=url, PYCAM_DATA_DIR=str(data), PYCAM_ROLE="camera", PYCAM_CAMERA_NAME="front",
                      SLACK_BOT_TOKEN=TOKEN, SLACK_CHANNEL_ID=CHANNEL, SLACK_API_URL=fake.api_url)
    return subprocess.Popen([sys.executable, "app/notifier.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def refused(r) -> list[dict]:
    """What Redis refused a camera user (but redis-py's CLIENT SETINFO, which Redis 7.2+ refuses harmlessly)."""
    return [e for e in r.acl_log() if "setinfo" not in str(e.get("object", "")).lower()]


def jobs(r, stream: str) -> list[dict]:
    return [json.loads(f["job"]) for _, f in r.xrange(stream)]


def test_a_camera_pi_sends_its_own_images_and_the_hub_queues_there_what_shows_them(
        front_url, r, settings, tmp_path, short_clip, fake):
    r.set(keys.CAMERA_STATUS, "true")
    r.set(keys.TRAINING_MODE, "true")
    r.acl_log_reset()
    pi = tmp_path / "pi" / "data"
    log = open(tmp_path / "notifier.out", "w")
    cam = camera(front_url, pi, short_clip, PYCAM_ROLE="camera")
    sender = notifier(front_url, pi, fake, log)
    try:
        # The alert, its snapshot and its clip reach Slack from the camera Pi.
        assert fake.wait_for(lambda: fake.posted, timeout=40)
        ts = fake.posted[0]["ts"]
        assert fake.wait_for(lambda: any(f["name"].endswith((".mp4", ".gif")) for f in fake.in_thread(ts)),
                             timeout=40), fake.in_thread(ts)
        assert any(f["name"].endswith(".jpg") for f in fake.in_thread(ts))
        event_id = json.loads(r.xrange(keys.EVENTS)[0][1]["event"])["id"]
        own = outbox.box("front")
        assert {j["type"] for j in jobs(r, own.stream)} >= {"alert", "clip"}
        assert not [j for j in jobs(r, keys.SLACK_OUTBOX) if j["type"] in ("alert", "update", "clip")]
        assert r.exists(own.delivered(f"alert:{event_id}")) and not r.exists(outbox.HOME.delivered(f"alert:{event_id}"))

        # A label clicked on the hub, which has none of the files: the camera Pi keeps the labelled
        # copy, and the message says who tagged it.
        hub = settings                                       # the hub's own data dir, empty
        assert not (hub.data_dir / "events").exists()
        assert label_event(r, hub, LabelClick(event_id, "occupied", "U0OWNER", "owner", fake.response_url()))
        assert fake.wait_for(lambda: "Tagged *occupied* by <@U0OWNER>" in json.dumps(fake.message(ts)["blocks"]), timeout=15)
        assert labels.read_entries(pi)[event_id]["label"] == "occupied"
        assert not (hub.data_dir / "training").exists()

        # /pycam_latest front on the hub: the camera Pi uploads its snapshot and answers.
        answer = commands.cmd_latest(r, hub, commands.Command("latest", "front", "U0OWNER", "owner",
                                                              fake.response_url("latest")))["text"]
        assert answer.startswith("Posting the latest snapshot"), answer
        assert fake.wait_for(lambda: [c for c in fake.accepted("response") if c.path.endswith("/latest")], timeout=15)
        [job] = [j for j in jobs(r, own.stream) if j["type"] == "image_response"]
        assert r.exists(own.delivered(job["id"]))

        # `scripts/pycam status` on the camera Pi reports its own processes, under its own user.
        health = subprocess.run([sys.executable, "-m", "app.health"], cwd=ROOT, capture_output=True, text=True,
                                env=process_env(REDIS_URL=front_url, PYCAM_ROLE="camera", PYCAM_CAMERA_NAME="front",
                                                PYCAM_DATA_DIR=str(pi)), timeout=30)
        assert health.returncode == 0, health.stdout + health.stderr
        assert "ok    security_system@front" in health.stdout and "ok    notifier@front" in health.stdout

        # Its notifier stops: /pycam_status and /pycam_latest say that Pi's alerts wait there.
        stop(sender)
        r.delete(keys.heartbeat("notifier@front"))        # as once its heartbeat expired
        assert "front armed" in status.status_text(r, hub) and "notifier is *not running*" in status.status_text(r, hub)
        answer = commands.cmd_latest(r, hub, commands.Command("latest", "front", "U0OWNER", "owner",
                                                              fake.response_url("late")))["text"]
        assert "Pi is not sending now" in answer
    finally:
        stop(cam)
        if sender.poll() is None:
            stop(sender)
        log.close()
    assert refused(r) == []                                 # nothing the camera Pi did was refused


class Link:
    """A TCP relay between one camera and Redis that can be cut (connections dropped, new ones
    refused) and restored on the same port: a camera Pi's LAN link."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.up = True
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)     # wakes the accept (a close alone would not)
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()


def on_disk(data) -> set[str]:
    return {p.stem for p in (data / "events").glob("*/*.json")}


def published(r, name: str) -> set[str]:
    return {m["id"] for m in (json.loads(f["event"]) for _, f in r.xrange(keys.EVENTS)) if m["camera"] == name}


def test_one_cameras_link_cut_and_restored_loses_none_of_its_events(redis_url, r, tmp_path, short_clip):
    r.set(keys.CAMERA_STATUS, "true")
    urls = {name: camera_url(redis_url, name) for name in ("front", "garage")}
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    link = Link(port)
    garage_url = urls["garage"].replace(f":{port}/", f":{link.port}/")
    data = {name: tmp_path / name / "data" for name in urls}
    r.acl_log_reset()
    # front on the hub's Pi; garage a camera Pi (its alerts on its own outbox), behind the link.
    procs = {"front": camera(urls["front"], data["front"], short_clip, name="front", loop=True),
             "garage": camera(garage_url, data["garage"], short_clip, name="garage", loop=True, PYCAM_ROLE="camera")}
    try:
        wait_for(lambda: published(r, "garage") and published(r, "front"), timeout=60)
        link.cut()
        before = len(published(r, "front"))
        cut_at = on_disk(data["garage"])
        # The garage camera goes on recording while it cannot reach Redis; the front one goes on publishing.
        wait_for(lambda: len(on_disk(data["garage"]) - cut_at) >= 2, timeout=60)
        assert not (published(r, "garage") & (on_disk(data["garage"]) - cut_at))
        wait_for(lambda: len(published(r, "front")) > before, timeout=30)
        link.restore()
        # Back: every event the garage recorded is published once, with its alert.
        wait_for(lambda: on_disk(data["garage"]) <= published(r, "garage"), timeout=60)
        recorded = on_disk(data["garage"])
    finally:
        for p in procs.values():
            stop(p)
        admin = redis.Redis.from_url(redis_url)
        for name in urls:
            admin.acl_deluser(f"camera-{name}")
    wait_for(lambda: recorded <= published(r, "garage"), timeout=5)
    ids = [m["id"] for m in (json.loads(f["event"]) for _, f in r.xrange(keys.EVENTS)) if m["camera"] == "garage"]
    assert len(ids) == len(set(ids))                                     # each once
    alerts = {j["event_id"] for j in jobs(r, outbox.box("garage").stream) if j["type"] == "alert"}
    assert recorded <= alerts
    assert refused(r) == []

