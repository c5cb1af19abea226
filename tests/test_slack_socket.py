"""Socket Mode end to end: slack_sdk's own SocketModeClient against a local fake of Slack's Socket
Mode (apps.connections.open on the fake Web API, a WebSocket server on loopback), the real Redis."""
import threading
import time

import pytest

from app import keys, state
from app.slack.socket import SocketApp
from config import load_settings
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack, make_event
from tests.socket_fakes import APP_TOKEN, FakeSocketMode


@pytest.fixture
def slack():
    socket_mode = FakeSocketMode()
    web = FakeSlack(socket_url=socket_mode.url).start()
    yield web, socket_mode
    socket_mode.close()
    web.close()


@pytest.fixture
def running(slack, tmp_path, redis_url, r):
    """The Socket Mode app in a thread (short ping), connected; stopped afterwards."""
    web, socket_mode = slack
    settings = load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"),
                                  "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": TOKEN,
                                  "SLACK_CHANNEL_ID": CHANNEL, "SLACK_API_URL": web.api_url,
                                  "SLACK_ALLOWED_USERS": "U0OWNER,U0ALICE"})
    stop = threading.Event()
    app = SocketApp(settings, state.connect(redis_url, "test"), stop, ping_interval=1)
    thread = threading.Thread(target=app.run, args=(0.2, 30), daemon=True)
    thread.start()
    assert socket_mode.wait_connected()
    yield settings, socket_mode
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def command(name, text="", user_id="U0OWNER"):
    return {"command": name, "text": text, "user_id": user_id, "user_name": "owner", "team_id": "T0TEAM",
            "channel_id": CHANNEL, "response_url": "", "trigger_id": "1.2.3"}


def test_a_command_acts_and_its_answer_comes_back_in_the_ack(running, r):
    _settings, socket_mode = running
    sent = time.monotonic()
    envelope = socket_mode.send("slash_commands", command("/pycam_on"))
    ack = socket_mode.ack_for(envelope)
    assert ack is not None and time.monotonic() - sent < 3
    assert "armed" in ack["payload"]["text"] and ack["payload"]["response_type"] == "ephemeral"
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    assert state.get_json(r, keys.heartbeat("slack_socket"))["state"] == "connected"


def test_a_user_not_on_the_allow_list_is_refused_and_nothing_changes(running, r):
    _settings, socket_mode = running
    ack = socket_mode.ack_for(socket_mode.send("slash_commands", command("/pycam_off", user_id="U0STRANGER")))
    assert "not allowed" in ack["payload"]["text"]
    assert r.get(keys.CAMERA_STATUS) is None


def test_a_label_click_is_acked_and_recorded(running, r):
    from app.storage import labels
    from tests.slack_fakes import click_body
    import json
    from urllib.parse import parse_qs
    settings, socket_mode = running
    meta = make_event(settings.data_dir, r)
    payload = json.loads(parse_qs(click_body(meta["id"], user_id="U0ALICE"))["payload"][0])
    ack = socket_mode.ack_for(socket_mode.send("interactive", payload))
    assert ack is not None and not ack.get("payload")
    for _ in range(50):
        if labels.read_manifest(settings.data_dir).labels:
            break
        time.sleep(0.05)
    assert labels.read_manifest(settings.data_dir).labels == {meta["id"]: "occupied"}


def test_a_dropped_connection_is_opened_again(running, r):
    _settings, socket_mode = running
    socket_mode.drop()
    assert socket_mode.wait_connected(count=2, timeout=15)
    ack = socket_mode.ack_for(socket_mode.send("slash_commands", command("/pycam_status")), timeout=5)
    assert ack is not None and "pycam status" in ack["payload"]["text"]
