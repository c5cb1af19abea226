"""The notifier against real Redis and the real slack_sdk WebClient talking to a fake Slack on loopback."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from app import keys, outbox, state
from app.slack.delivery import data_path, response_url_allowed
from app.slack.notifier import Notifier
from config import load_settings
from tests.conftest import ROOT, process_env
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack, alert_job, make_event


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.close()


def env_for(tmp_path, redis_url, fake, **extra) -> dict:
    env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_CHANNEL_ID": CHANNEL, "SLACK_API_URL": fake.api_url, "PYCAM_CAMERA_NAME": "frontdoor"}
    env.update(extra)
    return env


@pytest.fixture
def settings(tmp_path, redis_url, fake):
    return load_settings(env=env_for(tmp_path, redis_url, fake), config_path=None)


@contextmanager
def running(settings, r, **kw):
    """A notifier delivering in a thread, with short test intervals; stopped on exit."""
    stop = threading.Event()
    kw = {"backoff_base": 0.05, "backoff_max": 0.2, "block_ms": 100, "http_timeout": 1, **kw}
    notifier = Notifier(settings, r, stop=stop, **kw)
    thread = threading.Thread(target=notifier.run, daemon=True)
    thread.start()
    try:
        yield notifier
    finally:
        stop.set()
        thread.join(5)
        assert not thread.is_alive()


def message_event_ids(calls) -> list[str]:
    """The events the accepted chat.postMessage calls showed, in order (a message of a burst shows
    several; a message that is no alert shows its text)."""
    ids = []
    for c in calls:
        shown = [b["block_id"][6:] for b in c.params.get("blocks") or [] if b.get("block_id", "").startswith("event:")]
        ids += shown or [c.params["text"]]
    return ids


_by_area: dict[str, str] = {}


def enqueue_alerts(settings, r, n, training=False, t0=None) -> list[str]:
    """n events on disk with their alert jobs queued; returns the event ids in queue order."""
    ids = []
    _by_area.clear()
    for i in range(n):
        meta = make_event(settings.data_dir, t=(t0 or time.time()) + i, area=0.01 * (i + 1))
        outbox.enqueue(r, alert_job(meta, training=training))
        ids.append(meta["id"])
        _by_area[f", {i + 1:.1f}% of the frame"] = meta["id"]
    return ids


def pending(r) -> int:
    return r.xpending(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP)["pending"]


# ------------------------------------------------------------------ alerts

def test_an_alert_posts_at_once_then_its_snapshot_goes_in_the_thread_and_into_the_message(settings, r, fake):
    meta = make_event(settings.data_dir)
    outbox.enqueue(r, alert_job(meta, training=True))
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("chat.update"))
    [message] = fake.accepted("chat.postMessage")
    assert message.params["channel"] == CHANNEL
    assert message.params["text"].startswith("Motion on frontdoor at ") and "5.0% of the frame" in message.params["text"]
    [actions] = [b for b in message.params["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("label_occupied", meta["id"]), ("label_unoccupied", meta["id"])]
    # The message comes first (the phone buzzes at once); the picture follows into its thread...
    [upload] = fake.accepted("upload")
    assert upload.body == (settings.data_dir / meta["snapshot"]).read_bytes()
    [complete] = fake.accepted("files.completeUploadExternal")
    ts = message_ts(fake)
    assert complete.params["channel_id"] == CHANNEL and complete.params["thread_ts"] == ts
    assert message.time <= complete.time
    # ...and the same message then shows it, buttons kept.
    shown = fake.message(ts)
    [image] = [b for b in shown["blocks"] if b["type"] == "image"]
    assert image["slack_file"]["id"] == fake.shared[0]["id"]
    assert [b for b in shown["blocks"] if b["type"] == "actions"] == [actions]
    assert r.exists(outbox.HOME.delivered(f"alert:{meta['id']}"))
    assert pending(r) == 0


def message_ts(fake, i: int = 0) -> str:
    return fake.posted[i]["ts"]


def test_an_alert_outside_training_mode_has_no_buttons(settings, r, fake):
    enqueue_alerts(settings, r, 1, training=False)
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("chat.postMessage"))
    [message] = fake.accepted("chat.postMessage")
    assert not [b for b in message.params["blocks"] if b["type"] == "actions"]


def test_an_alert_whose_snapshot_was_deleted_still_posts_its_text(settings, r, fake):
    meta = make_event(settings.data_dir)
    (settings.data_dir / meta["snapshot"]).unlink()
    outbox.enqueue(r, alert_job(meta))
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("chat.postMessage"))
        assert fake.wait_for(lambda: pending(r) == 0)
    assert fake.attempts("files.getUploadURLExternal") == []
    assert "No snapshot" in json.dumps(fake.accepted("chat.postMessage")[0].params["blocks"])
    assert "No snapshot" in json.dumps(fake.message(message_ts(fake))["blocks"])


def test_429_retry_after_is_honoured(settings, r, fake):
    fake.fail_next("chat.postMessage", "429:1")
    enqueue_alerts(settings, r, 1)
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("chat.postMessage"), timeout=10)
    first, second = fake.attempts("chat.postMessage")
    assert first.status == 429 and second.ok
    assert second.time - first.time >= 1.0  # waited as long as Slack asked, not the 0.05 s backoff
    assert len(fake.accepted("files.completeUploadExternal")) == 1  # the upload was not repeated


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_alerts_pile_up_during_an_outage_then_all_arrive_once_in_order(settings, r, fake, mode):
    fake.outage(mode)
    with running(settings, r) as notifier:
        ids = enqueue_alerts(settings, r, 5)
        # retried all along (after a call that got no answer, by first asking Slack what it has)
        assert fake.wait_for(lambda: len(fake.calls) >= 2, timeout=10)
        assert fake.accepted("chat.postMessage") == []
        assert state.get_json(r, keys.heartbeat("notifier"))["state"] == "retrying"
        fake.outage(None)
        assert fake.wait_for(lambda: notifier.sent == 5, timeout=20)
        time.sleep(0.3)  # nothing more arrives
        assert notifier.sent == 5
    messages = fake.accepted("chat.postMessage")
    assert message_event_ids(messages) == ids  # once each, in order
    # Queued together, they share one message; after a post that got no answer (hang), Slack may
    # have shown it already, so that one keeps only the alert it had.
    assert len(messages) == (1 if mode == "500" else 2)
    assert len(fake.accepted("files.completeUploadExternal")) == 5
    assert pending(r) == 0


def test_the_same_job_queued_twice_is_sent_once(settings, r, fake):
    meta = make_event(settings.data_dir)
    outbox.enqueue(r, alert_job(meta))
    outbox.enqueue(r, alert_job(meta))  # e.g. the camera daemon re-queued it after its own restart
    outbox.enqueue(r, outbox.make_job("message", text="after"))
    with running(settings, r):
        assert fake.wait_for(lambda: len(fake.accepted("chat.postMessage")) == 2)
        time.sleep(0.2)
    assert [c.params["text"].split(" at ")[0] for c in fake.accepted("chat.postMessage")] == ["Motion on frontdoor", "after"]
    assert len(fake.accepted("files.completeUploadExternal")) == 1
    assert pending(r) == 0


def test_slack_refusing_the_token_keeps_the_alert_until_it_is_fixed(tmp_path, redis_url, settings, r, fake):
    bad = load_settings(env=env_for(tmp_path, redis_url, fake, SLACK_BOT_TOKEN="xoxb-revoked"), config_path=None)
    ids = enqueue_alerts(settings, r, 1)
    with running(bad, r, permanent_retry_s=0.2):
        assert fake.wait_for(lambda: len(fake.attempts("chat.postMessage")) >= 2)
        beat = state.get_json(r, keys.heartbeat("notifier"))
        assert beat["state"] == "error" and "invalid_auth" in beat["detail"]
    assert pending(r) == 1  # not dropped
    with running(settings, r):  # the owner fixed the token and restarted the notifier
        assert fake.wait_for(lambda: fake.accepted("chat.postMessage"))
    assert message_event_ids(fake.accepted("chat.postMessage")) == ids


def test_malformed_jobs_and_foreign_response_urls_are_dropped_and_the_queue_moves_on(settings, r, fake):
    r.xadd(keys.SLACK_OUTBOX, {"job": "{not json"})
    r.xadd(keys.SLACK_OUTBOX, {"job": json.dumps({"id": "x", "type": "shell", "cmd": "rm -rf /"})})
    outbox.enqueue(r, outbox.make_job("response", response_url="http://169.254.169.254/latest/meta-data", text="x"))
    outbox.enqueue(r, outbox.make_job("response", response_url="https://hooks.slack.com.evil.net/x", text="x"))
    outbox.enqueue(r, outbox.make_job("alert", event_id="../../etc/passwd", snapshot="/etc/passwd"))
    outbox.enqueue(r, outbox.make_job("message", text="still here"))
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("chat.postMessage"))
    assert [c.method for c in fake.calls] == ["chat.postMessage"]
    assert pending(r) == 0


def test_response_and_image_response_jobs(settings, r, fake):
    meta = make_event(settings.data_dir)
    outbox.enqueue(r, outbox.make_job("response", response_url=fake.response_url("a"), text="hi",
                                      replace_original=True, blocks=[{"type": "divider"}]))
    outbox.enqueue(r, outbox.make_job("image_response", response_url=fake.response_url("b"),
                                      snapshot=meta["snapshot"], text="Latest snapshot posted"))
    with running(settings, r):
        assert fake.wait_for(lambda: len(fake.accepted("response")) == 2)
    a, b = fake.accepted("response")
    assert a.path == "/response/a" and a.params == {"text": "hi", "replace_original": True,
                                                   "blocks": [{"type": "divider"}]}
    assert b.path == "/response/b" and b.params["text"] == "Latest snapshot posted"
    assert fake.accepted("upload")[0].body == (settings.data_dir / meta["snapshot"]).read_bytes()


def test_the_notifier_rides_out_a_redis_restart(settings, r, fake, redis_server):
    with running(settings, r):
        enqueue_alerts(settings, r, 1)
        assert fake.wait_for(lambda: len(fake.accepted("chat.postMessage")) == 1)
        redis_server.stop()
        time.sleep(0.5)
        redis_server.start()  # empty: no persistence in tests, so the group is gone too
        ids = enqueue_alerts(settings, r, 1)
        assert fake.wait_for(lambda: len(fake.accepted("chat.postMessage")) == 2, timeout=20)
    assert message_event_ids(fake.accepted("chat.postMessage")[1:]) == ids


# ------------------------------------------------------------------ the real process

def start_notifier(tmp_path, redis_url, fake) -> subprocess.Popen:
    env = process_env()
    env.update(env_for(tmp_path, redis_url, fake))
    # Its log also goes to <data dir>/logs/notifier.log; a pipe nobody reads could fill and block it.
    return subprocess.Popen([sys.executable, "app/notifier.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_within_2s(proc: subprocess.Popen) -> None:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(5)
    assert time.monotonic() - t0 < 2.5
    assert proc.returncode == 0


def a_second_notifier_delivers_each_once(tmp_path, redis_url, r, fake, ids) -> None:
    """Start a notifier again; each alert arrives exactly once (picture and message), in order."""
    second = start_notifier(tmp_path, redis_url, fake)
    try:
        assert fake.wait_for(lambda: set(message_event_ids(fake.accepted("chat.postMessage"))) >= set(ids)
                             and pending(r) == 0, timeout=20)
        time.sleep(0.5)    # nothing more arrives
    finally:
        stop_within_2s(second)
    assert message_event_ids(fake.accepted("chat.postMessage")) == ids
    assert len(fake.accepted("files.completeUploadExternal")) == len(ids)   # none repeated
    assert pending(r) == 0


def test_a_restart_mid_delivery_sends_nothing_twice(tmp_path, redis_url, settings, r, fake):
    fake.plan["files.completeUploadExternal"] = ["500"] * 1000  # the message goes out, its picture keeps failing
    ids = enqueue_alerts(settings, r, 2, training=True)
    first = start_notifier(tmp_path, redis_url, fake)
    try:
        assert fake.wait_for(lambda: len(fake.attempts("files.completeUploadExternal")) >= 2, timeout=15)
        assert len(fake.accepted("chat.postMessage")) == 1
    finally:
        stop_within_2s(first)
    fake.plan["files.completeUploadExternal"].clear()  # Slack recovers while the notifier is down
    a_second_notifier_delivers_each_once(tmp_path, redis_url, r, fake, ids)


def test_sigterm_stops_the_notifier_within_2s_while_slack_hangs(tmp_path, redis_url, settings, r, fake):
    fake.outage("hang")
    enqueue_alerts(settings, r, 1)
    proc = start_notifier(tmp_path, redis_url, fake)
    try:
        assert fake.wait_for(lambda: fake.attempts("chat.postMessage"), timeout=15)
    finally:
        stop_within_2s(proc)
    assert pending(r) == 1  # still queued for the next start


# ------------------------------------------------------------------ guards

def test_response_urls_are_limited_to_slack_or_the_local_fake():
    assert response_url_allowed("https://hooks.slack.com/commands/T1/2/abc", "https://slack.com/api/")
    for url in ["http://hooks.slack.com/x", "https://hooks.slack.com:8443/x", "https://evil@hooks.slack.com/x",
                "https://hooks.slack.com.evil.net/x", "http://127.0.0.1:8000/response/1", "file:///etc/passwd", None]:
        assert not response_url_allowed(url, "https://slack.com/api/"), url
    assert response_url_allowed("http://127.0.0.1:5555/response/1", "http://127.0.0.1:5555/api/")
    assert not response_url_allowed("http://127.0.0.1:6379/", "http://127.0.0.1:5555/api/")


def test_snapshot_paths_stay_inside_the_data_dir(tmp_path):
    assert data_path(tmp_path, "events/2026-11-24/x.jpg") == (tmp_path / "events/2026-11-24/x.jpg").resolve()
    for bad in ["/etc/passwd", "../outside.jpg", "events/../../x", "", None]:
        assert data_path(tmp_path, bad) is None


def test_a_job_failing_unexpectedly_is_set_aside_and_the_next_alerts_go_out(settings, r, fake):
    """Slack answers an upload with `ok` and nothing else (the client raises): after a few tries
    the job is set aside, listed, and queued again later; the jobs behind it are not held up, and
    its message, already posted, is not posted again."""
    from app.slack import status
    [first] = enqueue_alerts(settings, r, 1)
    outbox.enqueue(r, outbox.make_job("message", text="between"))
    second = make_event(settings.data_dir, area=0.02)["id"]
    outbox.enqueue(r, alert_job(story_meta(settings, second)))
    fake.fail_next("files.getUploadURLExternal", *["ok-but-empty"] * 3)
    with running(settings, r) as notifier:
        assert fake.wait_for(lambda: len(fake.accepted("chat.postMessage")) == 3 and pending(r) == 0)
        assert message_event_ids(fake.accepted("chat.postMessage")) == [first, "between", second]
        assert r.llen(keys.SLACK_PARKED) == 1
        assert "set aside after unexpected errors: 1" in status.status_text(r, settings)
        notifier._next_unpark = 0                      # later: queued again, and now it goes
        assert fake.wait_for(lambda: r.llen(keys.SLACK_PARKED) == 0 and pending(r) == 0 and
                             any(b["type"] == "image" for b in fake.message(message_ts(fake))["blocks"]))
    assert len(fake.accepted("chat.postMessage")) == 3
    assert len(fake.accepted("files.completeUploadExternal")) == 2


def story_meta(settings, event_id: str) -> dict:
    return json.loads(next((settings.data_dir / "events").glob(f"*/{event_id}.json")).read_text())


@pytest.mark.parametrize("step", ["files.completeUploadExternal", "chat.postMessage"])
def test_a_kill_while_slack_answers_never_shows_anything_twice(tmp_path, redis_url, settings, r, fake, step):
    """Slack did the work but the answer never reached the notifier, which is killed (-9): the
    next notifier asks Slack before doing that step again."""
    ids = enqueue_alerts(settings, r, 2)
    fake.fail_next(step, "lost")
    first = start_notifier(tmp_path, redis_url, fake)
    try:
        assert fake.wait_for(lambda: fake.accepted(step), timeout=15)
        time.sleep(0.3)
    finally:
        first.kill()
        first.wait(5)
    fake.outage(None)                      # lets the hung call go
    a_second_notifier_delivers_each_once(tmp_path, redis_url, r, fake, ids)
