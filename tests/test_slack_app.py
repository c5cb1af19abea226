"""The Slack app through Flask's test client: verification, every command, and button clicks.

Real Redis (conftest), real Flask app, real slack_sdk signing; the end-to-end click runs the real
notifier against the fake Slack Web API on loopback.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

import pytest

from app import health, keys, outbox, state
from app.storage import labels
from app.flask_app import MissingSecretError, create_app
from app.slack.notifier import Notifier
from config import load_settings
from tests.conftest import ROOT, free_port, process_env
from tests.slack_fakes import (CHANNEL, SECRET, TOKEN, FakeSlack, click_body, command_body, make_event,
                               signed_headers)


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.close()


def slack_env(tmp_path, redis_url, fake=None, **extra) -> dict:
    env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL_ID": CHANNEL,
           "SLACK_API_URL": fake.api_url if fake else "http://127.0.0.1:9/api/"}
    env.update(extra)
    return env


@pytest.fixture
def settings(tmp_path, redis_url, fake):
    return load_settings(env=slack_env(tmp_path, redis_url, fake), config_path=None)


@pytest.fixture
def client(settings, r):
    return create_app(settings, redis_client=r).test_client()


def post_command(client, command, text="", user_id="U0OWNER", response_url="", headers=None):
    body = command_body(command, text, user_id=user_id, response_url=response_url)
    return client.post("/slack/commands", data=body, headers=headers or signed_headers(body))


def post_click(client, event_id, headers=None, **kw):
    body = click_body(event_id, **kw)
    return client.post("/slack/interactive", data=body, headers=headers or signed_headers(body))


def outbox_jobs(r) -> list[dict]:
    return [outbox.parse(fields) for _id, fields in r.xrange(keys.SLACK_OUTBOX)]


# ------------------------------------------------------------------ start-up

def test_missing_signing_secret_stops_the_app(tmp_path, redis_url):
    env = slack_env(tmp_path, redis_url)
    del env["SLACK_SIGNING_SECRET"]
    with pytest.raises(MissingSecretError, match="SLACK_SIGNING_SECRET"):
        create_app(load_settings(env=env, config_path=None))


def test_run_flask_exits_with_a_clear_message_without_the_secret(tmp_path, redis_url):
    env = process_env()
    env.update({"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-c", "import run_flask"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "SLACK_SIGNING_SECRET is not set" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_is_off(client):
    assert client.application.debug is False


# ------------------------------------------------------------------ verification

def stored(r) -> list[str]:
    """The keys in Redis besides the signatures remembered against replays."""
    return [k for k in r.keys("*") if not k.startswith("slack:seen:")]


def test_unsigned_wrongly_signed_and_stale_requests_get_401_and_change_nothing(client, r):
    body = command_body("/pycam_on")
    refused = [
        {"Content-Type": "application/x-www-form-urlencoded"},                      # unsigned
        signed_headers(body, secret="not-the-secret"),                              # wrong secret
        signed_headers(body, timestamp=time.time() - 301),                          # replayed later
        signed_headers(body, timestamp=time.time() + 301),                          # from the future
        {**signed_headers(body), "X-Slack-Request-Timestamp": "yesterday"},         # junk timestamp
        signed_headers(command_body("/pycam_off")),                                 # signature of another body
    ]
    for headers in refused:
        resp = client.post("/slack/commands", data=body, headers=headers)
        assert resp.status_code == 401
        assert b"Traceback" not in resp.data
    unsigned_click = click_body("20261124-015300-a1b2c3")
    assert client.post("/slack/interactive", data=unsigned_click,
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    assert stored(r) == []


def test_a_signed_request_is_accepted(client, r):
    resp = post_command(client, "/pycam_on")
    assert resp.status_code == 200
    assert state.get_flag(r, keys.CAMERA_STATUS) is True


def test_oversized_bodies_get_413(client, r):
    body = command_body("/pycam_on", text="x" * 20000)
    resp = client.post("/slack/commands", data=body, headers=signed_headers(body))
    assert resp.status_code == 413
    assert stored(r) == []


def test_malformed_payloads_get_400_without_a_traceback(client, r):
    bad_commands = ["user_id=U0OWNER&text=on", "command=pycam_on&user_id=U0OWNER", "command=%2Fpycam_on"]
    for body in bad_commands:
        resp = client.post("/slack/commands", data=body, headers=signed_headers(body))
        assert resp.status_code == 400, body
    bad_clicks = ["payload=not-json", "payload=%5B1%2C2%5D", "nothing=here",
                  click_body("20261124-015300-a1b2c3", type="view_submission"),
                  click_body("20261124-015300-a1b2c3", action_id="delete_everything"),
                  click_body("20261124-015300-a1b2c3", actions=[])]
    for body in bad_clicks:
        resp = client.post("/slack/interactive", data=body, headers=signed_headers(body))
        assert resp.status_code == 400, body
        assert b"Traceback" not in resp.data and b"payload" not in resp.data
    assert stored(r) == []


def test_users_off_the_allow_list_are_refused_politely(tmp_path, redis_url, fake, r):
    settings = load_settings(env=slack_env(tmp_path, redis_url, fake, SLACK_ALLOWED_USERS="U0OWNER, U0PARTNER"),
                             config_path=None)
    client = create_app(settings, redis_client=r).test_client()
    resp = post_command(client, "/pycam_off", user_id="U0GUEST")
    assert resp.status_code == 200
    assert "not allowed" in resp.json["text"] and resp.json["response_type"] == "ephemeral"
    assert r.get(keys.CAMERA_STATUS) is None
    assert post_command(client, "/pycam_on", user_id="U0PARTNER").status_code == 200
    assert state.get_flag(r, keys.CAMERA_STATUS) is True


# ------------------------------------------------------------------ commands

def test_pycam_on_and_off_arm_and_record_a_manual_override(client, r):
    state.set_json(r, keys.HOME, ["alice"])
    resp = post_command(client, "/pycam_on")
    assert resp.json["response_type"] == "ephemeral" and "armed" in resp.json["text"]
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    manual = state.get_json(r, keys.MANUAL_OVERRIDE)
    assert manual["state"] is True and manual["home"] == ["alice"] and manual["time"] > time.time() - 5
    assert "Armed: *yes* (set by hand)" in post_command(client, "/pycam_status").json["text"]
    post_command(client, "/pycam", "off")  # the same command as a subcommand
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
    assert state.get_json(r, keys.MANUAL_OVERRIDE)["state"] is False


@pytest.mark.parametrize("command,text,key,value", [
    ("/notifications_off", "", keys.CAMERA_NOTIFICATIONS, False),
    ("/notifications_on", "", keys.CAMERA_NOTIFICATIONS, True),
    ("/auto_detect_on", "", keys.AUTO_DETECT_STATUS, True),
    ("/auto_detect_off", "", keys.AUTO_DETECT_STATUS, False),
    ("/training_on", "", keys.TRAINING_MODE, True),
    ("/training_off", "", keys.TRAINING_MODE, False),
    ("/pycam", "training on", keys.TRAINING_MODE, True),
    ("/pycam", "notifications_off", keys.CAMERA_NOTIFICATIONS, False),
])
def test_flag_commands(client, r, command, text, key, value):
    state.set_flag(r, key, not value)
    resp = post_command(client, command, text)
    assert resp.status_code == 200 and resp.json["response_type"] == "ephemeral"
    assert state.get_flag(r, key) is value


def test_status_reports_everything_the_owner_asks_about(client, r, settings):
    state.set_flag(r, keys.CAMERA_STATUS, True)
    state.set_flag(r, keys.TRAINING_MODE, True)
    state.set_json(r, keys.HOME, ["alice", "bob"])
    make_event(settings.data_dir, r)
    r.set(keys.UNVERIFIED_COUNT, 3)
    health.write_heartbeat(r, "security_system", "watching", {"events_mb": 412.3})
    state.set_json(r, keys.heartbeat("notifier"), {"time": time.time() - 120, "pid": 1, "state": "ok"})
    state.set_json(r, keys.S3_STATUS, {"ok": True, "error": None, "pending": 2, "uploaded": 40, "time": time.time()})
    state.set_json(r, keys.PRESENCE_STATUS, {"time": time.time() - 10, "home": ["alice", "bob"], "no_data": False,
                                             "providers": {"router": {"ok": True, "error": None, "seen": 3, "ms": 40},
                                                           "lan": {"ok": False, "error": "timeout"}}})
    text = post_command(client, "/pycam_status").json["text"]
    for expected in ["Armed: *yes*", "Notifications: on", "Auto mode: off", "Training mode: on",
                     "Home: alice, bob", "Last event: ", "s ago)", "held back: 3",
                     "security_system: watching", "notifier: ok, 2 min ago *STALE*",
                     "flask_app: *not running*", "S3: ok, 2 pending, 40 uploaded", "Disk: events 412 MB of 2000 MB",
                     "Presence: router: ok, lan: error (timeout) (polled 10 s ago)"]:
        assert expected in text, expected
    assert "who_is_home" not in text  # not configured, not running: not listed


def test_latest_queues_the_upload_and_answers_at_once(client, r, settings, fake):
    assert post_command(client, "/pycam_latest").json["text"] == "No snapshot yet."
    meta = make_event(settings.data_dir, r)
    resp = post_command(client, "/pycam_latest", response_url=fake.response_url("latest"))
    assert resp.status_code == 200 and "Posting the latest snapshot" in resp.json["text"]
    [job] = outbox_jobs(r)
    assert job["type"] == "image_response" and job["snapshot"] == meta["snapshot"]
    assert job["response_url"] == fake.response_url("latest")


def test_latest_never_reads_a_path_from_redis(client, r, settings):
    state.set_json(r, keys.LATEST_IMAGE, {"event_id": "../../etc", "path": "/etc/passwd", "time": 1})
    assert post_command(client, "/pycam_latest").json["text"] == "No snapshot yet."
    assert outbox_jobs(r) == []


def test_rotate_without_hardware_says_so_and_changes_nothing(client, r):
    for text in ["", "10 20"]:
        assert "No pan-tilt hardware" in post_command(client, "/rotate", text).json["text"]
    state.set_json(r, keys.PANTILT_POSITION, {"pan": 0, "tilt": 0, "present": False, "time": time.time()})
    assert "No pan-tilt hardware" in post_command(client, "/rotate", "10 20").json["text"]
    assert r.get(keys.PANTILT) is None


def test_rotate_sets_the_target_and_reports_the_position(client, r):
    state.set_json(r, keys.PANTILT_POSITION, {"pan": 5, "tilt": -5, "present": True, "time": time.time()})
    assert "pan 5, tilt -5" in post_command(client, "/rotate").json["text"]
    assert "Moving the camera to pan -90, tilt 45" in post_command(client, "/rotate", "-90 45").json["text"]
    assert state.get_json(r, keys.PANTILT) == {"pan": -90, "tilt": 45}
    post_command(client, "/pycam", "rotate 30 +10")
    assert state.get_json(r, keys.PANTILT) == {"pan": 30, "tilt": 10}


@pytest.mark.parametrize("text", ["91 0", "0 -91", "1000 0", "1.5 2", "a b", "10", "1 2 3",
                                  "__import__('os').system('touch /tmp/pwned') 1"])
def test_rotate_refuses_bad_input_with_usage(client, r, text):
    state.set_json(r, keys.PANTILT_POSITION, {"pan": 0, "tilt": 0, "present": True, "time": time.time()})
    resp = post_command(client, "/rotate", text)
    assert resp.status_code == 200 and resp.json["text"].startswith("Usage: `/rotate [CAMERA] PAN TILT`")
    assert r.get(keys.PANTILT) is None


@pytest.mark.parametrize("command,text", [("/pycam", ""), ("/pycam", "dance"), ("/pycam_dance", ""),
                                          ("/pycam", "help")])
def test_unknown_commands_answer_with_help(client, r, command, text):
    resp = post_command(client, command, text)
    assert resp.status_code == 200 and "*pycam commands*" in resp.json["text"]
    assert stored(r) == []


def test_commands_answer_politely_while_redis_is_down(settings):
    down = state.connect(f"redis://127.0.0.1:{free_port()}/0", "test")  # nobody listens there
    resp = post_command(create_app(settings, redis_client=down).test_client(), "/pycam_on")
    assert resp.status_code == 200 and "cannot reach its Redis" in resp.json["text"]


# ------------------------------------------------------------------ buttons

def test_the_original_eval_attack_is_refused_and_nothing_is_written(client, r, settings, tmp_path):
    marker = tmp_path / "pwned"
    for value in [f"__import__('os').system('touch {marker}')", "__import__('os').system('touch /tmp/pwned')"]:
        resp = post_click(client, value)
        assert resp.status_code == 400
    assert not marker.exists()
    assert not (settings.data_dir / "training").exists()
    assert stored(r) == []


@pytest.mark.parametrize("event_id", ["../../../etc/passwd", "20261124-015300-a1b2c3/../../x",
                                      "20261124-015300-A1B2C3", "/20261124-015300-a1b2c3", "", None, 42])
def test_path_traversal_and_malformed_event_ids_are_refused(client, r, settings, event_id):
    make_event(settings.data_dir)  # a real event exists, so only the id's validation stops these
    resp = post_click(client, event_id)
    assert resp.status_code == 400
    assert not (settings.data_dir / "training").exists()
    assert stored(r) == []


def test_a_click_on_an_event_that_is_not_stored_labels_nothing(client, r, settings, fake):
    resp = post_click(client, "20200101-000000-abcdef", response_url=fake.response_url())
    assert resp.status_code == 200
    assert not (settings.data_dir / "training" / "labels.json").exists()
    [job] = outbox_jobs(r)
    assert job["type"] == "response" and job["replace_original"] is False
    assert "no longer stored" in job["text"]


def test_a_click_labels_the_event_and_a_second_click_changes_it(client, r, settings, fake):
    meta = make_event(settings.data_dir, r)
    resp = post_click(client, meta["id"], response_url=fake.response_url(), user_id="U0ALICE", user_name="alice")
    assert resp.status_code == 200
    training = settings.data_dir / "training"
    clean = (settings.data_dir / meta["clean"]).read_bytes()
    assert (training / f"{meta['id']}.jpg").read_bytes() == clean
    entry = labels.read_entries(settings.data_dir)[meta["id"]]
    assert entry["label"] == "occupied" and entry["user_id"] == "U0ALICE" and entry["user_name"] == "alice"
    assert entry["event_time"] == meta["time"] and entry["camera"] == "pycam"
    [job] = outbox_jobs(r)
    assert job["type"] == "response" and job["replace_original"] is True
    assert job["text"].endswith("Tagged occupied by @alice")
    assert not any(b["type"] == "actions" and len(b["elements"]) == 2 for b in job["blocks"])  # buttons replaced

    post_click(client, meta["id"], action_id="label_unoccupied", response_url=fake.response_url(),
               user_id="U0BOB", user_name="bob")
    manifest = labels.read_entries(settings.data_dir)
    assert list(manifest) == [meta["id"]]
    assert manifest[meta["id"]]["label"] == "unoccupied" and manifest[meta["id"]]["user_id"] == "U0BOB"


def test_a_click_end_to_end_reaches_slack_through_the_notifier(client, r, settings, fake):
    meta = make_event(settings.data_dir, r)
    assert post_click(client, meta["id"], response_url=fake.response_url("click"), user_name="alice").status_code == 200
    stop = threading.Event()
    notifier = Notifier(settings, r, stop=stop, backoff_base=0.05, block_ms=100)
    thread = threading.Thread(target=notifier.run, daemon=True)
    thread.start()
    try:
        assert fake.wait_for(lambda: fake.accepted("response"), timeout=10)
    finally:
        stop.set()
        thread.join(5)
    [call] = fake.accepted("response")
    assert call.path == "/response/click"
    assert call.params["replace_original"] is True
    assert call.params["text"].endswith("Tagged occupied by @alice")
    assert any("Tagged *occupied* by <@U0OWNER>" in json.dumps(b) for b in call.params["blocks"])
    assert labels.read_entries(settings.data_dir)[meta["id"]]["label"] == "occupied"
    assert r.xpending(keys.SLACK_OUTBOX, keys.SLACK_OUTBOX_GROUP)["pending"] == 0


# ------------------------------------------------------------------ health

def test_healthz_lists_stale_processes(client, r):
    health.write_heartbeat(r, "security_system", "watching", None)
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"ok": False, "redis": True, "stale": ["notifier", "watchdog", "flask_app"]}
    for name in ("notifier", "watchdog", "flask_app"):
        health.write_heartbeat(r, name, "ok", None)
    assert client.get("/healthz").json == {"ok": True, "redis": True, "stale": []}


def test_healthz_is_503_when_redis_is_down(settings):
    down = state.connect(f"redis://127.0.0.1:{free_port()}/0", "test")
    resp = create_app(settings, redis_client=down).test_client().get("/healthz")
    assert resp.status_code == 503 and resp.json["redis"] is False


# ------------------------------------------------------------------ the manifest

def test_the_manifest_registers_every_command_and_the_interactivity_url():
    import yaml
    from app.slack import commands
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yml").read_text())
    slash = manifest["features"]["slash_commands"]
    reached = {commands.resolve(c["command"], "")[0] for c in slash if c["command"] != "/pycam"}
    assert reached == set(commands.HANDLERS) - {"help"}
    assert all(c["url"].startswith("https://") and c["url"].endswith("/slack/commands") for c in slash)
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/interactive")
    assert {"commands", "chat:write", "files:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])


def test_a_replayed_signed_request_is_refused(client, r):
    """Someone who captured a signed /pycam_off cannot send it again within Slack's 5 minutes."""
    body = command_body("/pycam_off")
    headers = signed_headers(body)
    assert client.post("/slack/commands", data=body, headers=headers).status_code == 200
    post_command(client, "/pycam_on")
    assert client.post("/slack/commands", data=body, headers=headers).status_code == 401
    assert state.get_flag(r, keys.CAMERA_STATUS) is True


def test_a_payload_nested_thousands_deep_is_a_400_not_a_500(client, r):
    body = urlencode({"payload": "[" * 2500 + "]" * 2500})
    resp = client.post("/slack/interactive", data=body, headers=signed_headers(body))
    assert resp.status_code == 400 and b"Traceback" not in resp.data
