"""The S3 uploader against moto's S3 server on loopback, the real Redis and real files."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import keys, state
from app.storage import ledger, plan
from app.storage.s3 import S3Store, make_client
from app.storage.daemon import Service
from app.storage.uploader import Uploader
from config import load_settings
from tests.s3_fakes import (ISOLATED_AWS_ENV, TEST_CREDENTIALS, MotoS3, add_event, add_training,
                            event_id, free_port, jpeg_bytes)

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "pycam-test"
PREFIX = "home"


@pytest.fixture(scope="module")
def moto():
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for name, value in {**TEST_CREDENTIALS, **ISOLATED_AWS_ENV}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(moto):
    """An empty moto with the test bucket."""
    if moto.server is None:
        moto.start()
    moto.reset()
    moto.client().create_bucket(Bucket=BUCKET)
    return moto


def make_settings(tmp_path, redis_url, endpoint, **env):
    base = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "S3_BUCKET": BUCKET,
            "S3_PREFIX": PREFIX, "S3_ENDPOINT_URL": endpoint, "PYCAM_CAMERA_NAME": "door"}
    return load_settings(env={**base, **env}, config_path=None)


def make_uploader(settings, bucket=BUCKET):
    store = S3Store(make_client(settings.s3.endpoint_url, "us-east-1"), bucket, settings.s3.endpoint_url)
    return Uploader(settings, store)


def tkey(label, eid):
    return plan.training_key(PREFIX, "door", label, eid)


def ekey(eid):
    return plan.event_key(PREFIX, "door", eid)


MANIFEST = f"{PREFIX}/door/training/labels.json"


def confirmed(settings) -> dict:
    """The ledger as the uploader left it on disk (snapshot and journal)."""
    return ledger.read(settings.data_dir, {"endpoint": settings.s3.endpoint_url, "bucket": BUCKET})[0]


def test_a_pass_sends_labelled_images_the_manifest_and_event_snapshots(s3, tmp_path, redis_url):
    settings = make_settings(tmp_path, redis_url, s3.url, S3_UPLOAD_EVENTS="true")
    data = settings.data_dir
    labels = {event_id(1): "occupied", event_id(2): "unoccupied"}
    add_training(data, labels)
    add_event(data, event_id(3))
    up = make_uploader(settings)

    assert up.run_pass() == 3
    objects = s3.objects(BUCKET)
    assert set(objects) == {tkey("occupied", event_id(1)), tkey("unoccupied", event_id(2)),
                            ekey(event_id(3)), MANIFEST}
    assert objects[tkey("occupied", event_id(1))] == (data / "training" / f"{event_id(1)}.jpg").read_bytes()
    assert json.loads(objects[MANIFEST])[event_id(2)]["label"] == "unoccupied"
    ledger = confirmed(settings)
    assert set(ledger["training"]) == set(labels) and set(ledger["events"]) == {event_id(3)}
    # Nothing is sent twice; without delete_after_upload local files stay.
    assert make_uploader(settings).run_pass() == 0
    assert (data / "training" / f"{event_id(1)}.jpg").exists()


def test_files_still_being_written_are_not_sent(s3, tmp_path, redis_url):
    settings = make_settings(tmp_path, redis_url, s3.url, S3_UPLOAD_EVENTS="true")
    data = settings.data_dir
    add_training(data, {event_id(1): "occupied"})
    # An image the Slack app has copied but not yet labelled, a temp file mid-write, and an event
    # whose metadata json (written last) is not there yet.
    (data / "training" / f"{event_id(2)}.jpg").write_bytes(jpeg_bytes(2))
    (data / "training" / f".{event_id(4)}.jpg.x1y2.tmp").write_bytes(b"\xff\xd8half")
    add_event(data, event_id(3), complete=False)
    up = make_uploader(settings)

    up.run_pass()
    assert set(s3.objects(BUCKET)) == {tkey("occupied", event_id(1)), MANIFEST}

    add_training(data, {event_id(2): "unoccupied"})
    add_event(data, event_id(3))
    up.run_pass()
    assert set(s3.objects(BUCKET)) == {tkey("occupied", event_id(1)), tkey("unoccupied", event_id(2)),
                                       ekey(event_id(3)), MANIFEST}


def test_an_outage_mid_batch_loses_nothing_duplicates_nothing_deletes_nothing_early(s3, tmp_path, redis_url, r):
    settings = make_settings(tmp_path, redis_url, s3.url, S3_DELETE_AFTER_UPLOAD="true")
    data = settings.data_dir
    labels = {event_id(i): ("occupied" if i % 2 else "unoccupied") for i in range(12)}
    add_training(data, labels)
    up = make_uploader(settings)
    service = Service(settings, r, up, stop=None)
    puts = []

    def outage_after_five_puts(**kwargs):
        puts.append(1)
        if len(puts) == 5:
            s3.stop()   # S3 goes away between this put and its confirming HeadObject

    up.store.client.meta.events.register("after-call.s3.PutObject", outage_after_five_puts)
    assert service.do_pass() is False
    status = state.get_json(r, keys.S3_STATUS)
    assert status["ok"] is False and "cannot reach 127.0.0.1" in status["error"]
    assert status["uploaded"] == 4 and status["pending"] == 8 + 1   # 8 images and the manifest
    assert state.get_json(r, keys.heartbeat("s3_upload"))["state"] == "error"
    # The fifth object reached S3 but was never confirmed: nothing was deleted locally.
    assert len(list((data / "training").glob("*.jpg"))) == 12
    assert len(confirmed(settings)["training"]) == 4

    # S3 comes back; a new process (fresh Uploader from the ledger on disk) catches up.
    s3.start()
    up2 = make_uploader(settings)
    service2 = Service(settings, r, up2, stop=None)
    assert service2.do_pass() is True
    objects = s3.objects(BUCKET)
    assert set(objects) == {tkey(label, eid) for eid, label in labels.items()} | {MANIFEST}
    for eid, label in labels.items():
        assert objects[tkey(label, eid)] == jpeg_bytes(int(eid[-6:], 16))
    assert list((data / "training").glob("*.jpg")) == []
    status = state.get_json(r, keys.S3_STATUS)
    assert status["ok"] is True and status["pending"] == 0 and status["uploaded"] == 12


@pytest.mark.parametrize("delete_after_upload", ["false", "true"])
def test_a_relabelled_sample_ends_up_only_under_its_new_label(s3, tmp_path, redis_url, delete_after_upload):
    settings = make_settings(tmp_path, redis_url, s3.url, S3_DELETE_AFTER_UPLOAD=delete_after_upload)
    data = settings.data_dir
    add_training(data, {event_id(1): "occupied", event_id(2): "occupied"})
    up = make_uploader(settings)
    up.run_pass()

    add_training(data, {event_id(1): "unoccupied"})   # the owner clicks again
    up.run_pass()
    objects = s3.objects(BUCKET)
    assert set(objects) == {tkey("unoccupied", event_id(1)), tkey("occupied", event_id(2)), MANIFEST}
    assert objects[tkey("unoccupied", event_id(1))] == jpeg_bytes(1)
    assert json.loads(objects[MANIFEST])[event_id(1)]["label"] == "unoccupied"


def test_retention_deletes_only_confirmed_training_images(s3, tmp_path, redis_url):
    settings = make_settings(tmp_path, redis_url, s3.url, S3_DELETE_AFTER_UPLOAD="true", S3_UPLOAD_EVENTS="true")
    data = settings.data_dir
    add_training(data, {event_id(1): "occupied", event_id(2): "unoccupied"})
    unlabelled = data / "training" / f"{event_id(5)}.jpg"
    unlabelled.write_bytes(jpeg_bytes(5))
    add_event(data, event_id(3))
    up = make_uploader(settings)
    up.run_pass()

    assert not (data / "training" / f"{event_id(1)}.jpg").exists()
    assert not (data / "training" / f"{event_id(2)}.jpg").exists()
    assert unlabelled.exists()                                   # never uploaded: kept
    assert (data / "training" / "labels.json").exists()          # the Slack app's manifest: kept
    assert (data / "events" / "2026-11-24" / f"{event_id(3)}.jpg").exists()   # the daemon's retention owns events


def test_wrong_credentials_give_one_clear_error(s3, tmp_path, redis_url, r, monkeypatch, caplog):
    key, secret = s3.require_credentials()
    settings = make_settings(tmp_path, redis_url, s3.url)
    add_training(settings.data_dir, {event_id(1): "occupied"})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    service = Service(settings, r, make_uploader(settings), stop=None)
    with caplog.at_level(logging.ERROR, logger="s3_upload"):
        for _ in range(3):
            assert service.do_pass() is False
    errors = [rec for rec in caplog.records if rec.name == "s3_upload" and rec.levelno >= logging.ERROR]
    assert len(errors) == 1                               # logged once, not once per retry
    message = errors[0].getMessage()
    assert "credentials" in message and "Traceback" not in caplog.text
    assert "AKIAWRONG" not in message                      # no key echoed
    status = state.get_json(r, keys.S3_STATUS)
    assert status["ok"] is False and "credentials" in status["error"]

    # The right key id with a wrong secret: the signature check fails.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    service = Service(settings, r, make_uploader(settings), stop=None)
    assert service.do_pass() is False
    assert "SignatureDoesNotMatch" in state.get_json(r, keys.S3_STATUS)["error"]

    # The same setup with the right keys works: moto really checked them.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    service = Service(settings, r, make_uploader(settings), stop=None)
    assert service.do_pass() is True
    s3.reset()
    s3.client().create_bucket(Bucket=BUCKET)


@pytest.mark.parametrize("case, expected", [
    ("missing bucket", "bucket 'no-such-bucket' does not exist"),
    ("unreachable endpoint", "cannot reach 127.0.0.1"),
    ("no credentials", "no AWS credentials found"),
])
def test_bad_config_gives_a_clear_status(s3, tmp_path, redis_url, r, monkeypatch, case, expected):
    endpoint = f"http://127.0.0.1:{free_port()}" if case == "unreachable endpoint" else s3.url
    settings = make_settings(tmp_path, redis_url, endpoint)
    if case == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    add_training(settings.data_dir, {event_id(1): "occupied"})
    bucket = "no-such-bucket" if case == "missing bucket" else BUCKET
    service = Service(settings, r, make_uploader(settings, bucket), stop=None)
    assert service.do_pass() is False
    status = state.get_json(r, keys.S3_STATUS)
    assert status["ok"] is False and expected in status["error"]
    assert status["pending"] == 0 and status["uploaded"] == 0
    assert (settings.data_dir / "training" / f"{event_id(1)}.jpg").exists()


# The real process -------------------------------------------------------------------------------

def process_env(tmp_path, redis_url, endpoint, **extra):
    cfg = tmp_path / "pycam.yaml"
    cfg.write_text("heartbeat_s: 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "PYCAM_", "AWS_"))}
    env.update(TEST_CREDENTIALS, **ISOLATED_AWS_ENV, PYCAM_CONFIG=str(cfg), REDIS_URL=redis_url,
               PYCAM_DATA_DIR=str(tmp_path / "data"), PYCAM_CAMERA_NAME="door", S3_PREFIX=PREFIX,
               S3_BUCKET=BUCKET, S3_ENDPOINT_URL=endpoint)
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def start(env):
    return subprocess.Popen([sys.executable, "app/s3_upload.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def stop_within_2s(proc):
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.wait(5)
    assert time.monotonic() - t0 < 2.0
    return proc.stderr.read()


def test_the_process_uploads_event_snapshots_from_the_stream(s3, tmp_path, redis_url, r):
    env = process_env(tmp_path, redis_url, s3.url, S3_UPLOAD_EVENTS="true", S3_UPLOAD_INTERVAL="3600")
    data = tmp_path / "data"
    add_event(data, event_id(1))        # recorded while the uploader was down: the catch-up scan sends it
    proc = start(env)
    try:
        wait_for(lambda: (state.get_json(r, keys.S3_STATUS) or {}).get("uploaded") == 1)
        beat = state.get_json(r, keys.heartbeat("s3_upload"))
        assert beat["state"] == "running" and beat["detail"]["last_error"] is None

        # A new event: its stream entry makes it go up long before the next (hourly) pass.
        meta = add_event(data, event_id(2))
        r.xadd(keys.EVENTS, {"event": json.dumps(meta)})
        r.xadd(keys.EVENTS, {"event": "not json"})   # ignored, with a warning
        wait_for(lambda: ekey(event_id(2)) in s3.objects(BUCKET))
        assert s3.objects(BUCKET)[ekey(event_id(2))] == (data / "events" / "2026-11-24" / f"{event_id(2)}.jpg").read_bytes()
    finally:
        err = stop_within_2s(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_the_process_rides_out_an_s3_outage_and_catches_up(s3, tmp_path, redis_url, r):
    env = process_env(tmp_path, redis_url, s3.url, S3_UPLOAD_EVENTS="true", S3_UPLOAD_INTERVAL="3600")
    data = tmp_path / "data"
    proc = start(env)
    try:
        wait_for(lambda: (state.get_json(r, keys.heartbeat("s3_upload")) or {}).get("state") == "running")
        s3.stop()
        meta = add_event(data, event_id(1))
        r.xadd(keys.EVENTS, {"event": json.dumps(meta)})
        add_training(data, {event_id(2): "occupied"})
        status = wait_for(lambda: (s := state.get_json(r, keys.S3_STATUS)) and not s["ok"] and s)
        assert "cannot reach 127.0.0.1" in status["error"]
        assert state.get_json(r, keys.heartbeat("s3_upload"))["state"] == "error"
        assert proc.poll() is None

        s3.start()   # in-memory moto lost nothing: the bucket is still there
        wait_for(lambda: (state.get_json(r, keys.S3_STATUS) or {}).get("ok"), timeout=15)
        assert set(s3.objects(BUCKET)) == {ekey(event_id(1)), tkey("occupied", event_id(2)), MANIFEST}
    finally:
        err = stop_within_2s(proc)
    assert err.count("S3 upload failed") == 1 and "S3 uploads work again" in err
    assert "Traceback" not in err


def test_without_a_bucket_the_process_idles_with_a_disabled_heartbeat(tmp_path, redis_url, r):
    proc = start(process_env(tmp_path, redis_url, None, S3_BUCKET=None))
    try:
        beat = wait_for(lambda: state.get_json(r, keys.heartbeat("s3_upload")))
        assert beat["state"] == "disabled"
        # Written just after the heartbeat (the same beat): wait for it rather than race it.
        assert wait_for(lambda: state.get_json(r, keys.S3_STATUS))["enabled"] is False
        time.sleep(0.3)
        assert proc.poll() is None          # idling, not crash-looping
    finally:
        err = stop_within_2s(proc)
    assert proc.returncode == 0
    assert err.count("uploads are off") == 1


def test_once_exits_1_with_one_clear_line_when_s3_is_unreachable(tmp_path, redis_url):
    env = process_env(tmp_path, redis_url, f"http://127.0.0.1:{free_port()}")
    add_training(tmp_path / "data", {event_id(1): "occupied"})
    done = subprocess.run([sys.executable, "app/s3_upload.py", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "cannot reach 127.0.0.1" in errors[0]
    assert "Traceback" not in done.stderr


def test_once_uploads_and_exits_0(s3, tmp_path, redis_url):
    env = process_env(tmp_path, redis_url, s3.url)
    add_training(tmp_path / "data", {event_id(1): "occupied"})
    done = subprocess.run([sys.executable, "app/s3_upload.py", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(s3.objects(BUCKET)) == {tkey("occupied", event_id(1)), MANIFEST}
