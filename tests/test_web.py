"""The web page's routes through Flask's test client, with real Redis: who gets in, what a click
changes, which files can be read, the live frame, and what stays closed."""
from __future__ import annotations

import json
import re
import time

import cv2
import numpy as np
import pytest

from app import keys, live, state
from app.flask_app import create_app
from app.web import auth
from config import load_settings
from tests.slack_fakes import SECRET, command_body, make_event, signed_headers

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path, redis_url):
    env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "PYCAM_WEB": "1",
           "SLACK_SIGNING_SECRET": SECRET}
    return load_settings(env=env, config_path=None)


@pytest.fixture
def client(settings, r):
    auth.set_password(settings.data_dir, PASSWORD)
    return create_app(settings, redis_client=r).test_client()


def csrf_of(client, path="/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def log_in(client, password=PASSWORD):
    return client.post("/login", data={"password": password, "csrf": csrf_of(client)})


def test_every_page_needs_a_login_and_the_password_is_stored_hashed(client, settings):
    assert client.get("/events").status_code == 302
    assert client.get("/live.mjpg").status_code == 401
    stored = (settings.data_dir / "web" / "password").read_text()
    assert PASSWORD not in stored and stored.startswith("scrypt$")
    assert (settings.data_dir / "web" / "password").stat().st_mode & 0o077 == 0
    answer = log_in(client)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/events")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/events").status_code == 200


def test_a_wrong_password_is_refused_and_repeated_tries_are_slowed(client):
    for _ in range(5):
        assert log_in(client, "guess").status_code == 401
    answer = log_in(client)                       # even the right one, for a while
    assert answer.status_code == 429 and "Too many" in answer.get_data(as_text=True)
    assert client.get("/events").status_code == 302


def test_without_a_password_nobody_gets_in(settings, r):
    client = create_app(settings, redis_client=r).test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "pycam web-password" in page and 'type="password"' not in page
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/login", data={"password": "", "csrf": token}).status_code == 401
    assert client.get("/events").status_code == 302


def test_a_post_without_its_csrf_token_changes_nothing(client, r):
    r.set(keys.CAMERA_STATUS, "true")
    log_in(client)
    assert client.post("/switch", data={"name": "off"}).status_code == 403
    assert client.post("/switch", data={"name": "off", "csrf": "forged"}).status_code == 403
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    assert client.post("/login", data={"password": PASSWORD}).status_code == 403   # login too


def test_the_switches_do_what_the_slack_commands_do(client, r):
    r.set(keys.CAMERA_STATUS, "true")
    log_in(client)
    token = csrf_of(client, "/events")
    answer = client.post("/switch", data={"name": "off", "csrf": token, "next": "/live"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/live"
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
    assert json.loads(r.get(keys.MANUAL_OVERRIDE))["state"] is False     # holds, as a /pycam_off does
    assert "pycam is disarmed." in client.get("/events").get_data(as_text=True)   # the reply Slack gets
    client.post("/switch", data={"name": "training_on", "csrf": token})
    assert state.get_flag(r, keys.TRAINING_MODE) is True
    assert client.post("/switch", data={"name": "rm -rf", "csrf": token}).status_code == 400
    far = client.post("/switch", data={"name": "on", "csrf": token, "next": "//evil.example/x"})
    assert far.headers["Location"] == "/events"


def test_events_page_newest_first_with_filters_and_paging(client, settings, r):
    t0 = time.time() - 3600
    metas = [make_event(settings.data_dir, r, t=t0 + i) for i in range(12)]
    held = dict(metas[1], verified=False, notified=False)      # the verifier held this one back
    r.xadd(keys.EVENTS, {"event": json.dumps(held)})
    log_in(client)
    settings.web.page_size = 10
    first = client.get("/events").get_data(as_text=True)
    shown = re.findall(r'id="event-([0-9a-f-]+)"', first)
    assert shown == [metas[1]["id"]] + [m["id"] for m in reversed(metas)][:9]
    assert "<b>pycam</b>" in first                          # which camera saw it
    older = re.search(r'id="older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = re.findall(r'id="event-([0-9a-f-]+)"', client.get(older).get_data(as_text=True))
    assert second == [metas[2]["id"], metas[1]["id"], metas[0]["id"]]
    held_only = re.findall(r'id="event-([0-9a-f-]+)"', client.get("/events?verdict=held").get_data(as_text=True))
    assert held_only == [metas[1]["id"]]
    assert "No events." in client.get("/events?day=2001-01-01").get_data(as_text=True)
    for bad in ("/events?day=yesterday", "/events?verdict=all", "/events?before=1;2"):
        assert client.get(bad).status_code == 400


def test_files_come_only_from_event_ids(client, settings, r):
    meta = make_event(settings.data_dir, r)
    clip = settings.data_dir / meta["snapshot"].replace(".jpg", ".mp4")
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    log_in(client)
    snap = client.get(f"/events/{meta['id']}/snapshot.jpg")
    assert snap.status_code == 200 and snap.data == (settings.data_dir / meta["snapshot"]).read_bytes()
    part = client.get(f"/events/{meta['id']}/clip.mp4", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100 and part.mimetype == "video/mp4"
    assert part.headers["Cache-Control"] == "private, no-store"      # no proxy or browser keeps it
    page = client.get(f"/events/{meta['id']}").get_data(as_text=True)
    assert f"/events/{meta['id']}/clip.mp4" in page
    for bad in ("/events/..%2F..%2Fetc%2Fpasswd/snapshot.jpg", "/events/20261130-000000-zzzzzz",
                "/events/../config.py", f"/events/{meta['id']}/clean.jpg", "/data/", "/events/"):
        assert client.get(bad).status_code in (404, 405), bad


def test_the_live_stream_asks_the_camera_and_passes_its_frames_on(client, r, redis_url):
    import threading

    import redis as redis_py
    log_in(client)
    assert not r.exists(keys.LIVE_VIEWER)
    picture = live.encode(np.full((720, 1280, 3), 120, np.uint8), 640)

    def camera():                                  # the camera daemon's part, once someone watches
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if r.exists(keys.LIVE_VIEWER):
                live.publish(r, picture, time.time())
            time.sleep(0.1)
    threading.Thread(target=camera, daemon=True).start()
    answer = client.get("/live.mjpg", buffered=False)
    assert answer.status_code == 200 and answer.mimetype == "multipart/x-mixed-replace"
    chunk = next(answer.response)
    answer.close()
    assert chunk.startswith(b"--frame") and chunk.endswith(picture + b"\r\n")
    assert 0 < r.ttl(keys.LIVE_VIEWER) <= live.VIEWER_TTL_S
    frame = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (360, 640, 3)
    # Frames are published, never stored: nothing of them stays in Redis (nor its append-only file).
    raw = redis_py.Redis.from_url(redis_url)
    assert all(raw.type(k) != b"string" or b"\xff\xd8" not in raw.get(k) for k in raw.keys())


def test_a_stream_that_never_started_gives_its_place_back(client):
    log_in(client)
    for _ in range(5):                             # HEAD never starts the body; the server closes it
        answer = client.head("/live.mjpg")
        assert answer.status_code == 200
        answer.close()
    answer = client.get("/live.mjpg", buffered=False)
    assert answer.status_code == 200
    answer.close()


def test_slack_still_reaches_its_endpoints_without_a_login(client):
    body = command_body("/pycam_status")
    assert client.post("/slack/commands", data=body, headers=signed_headers(body)).status_code == 200
    assert client.post("/slack/commands", data=body, headers=signed_headers(body, secret="forged")).status_code == 401


def test_the_page_is_off_unless_enabled(tmp_path, redis_url, r):
    settings = load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"),
                                  "SLACK_SIGNING_SECRET": SECRET}, config_path=None)
    client = create_app(settings, redis_client=r).test_client()
    assert client.get("/login").status_code == 404 and client.get("/events").status_code == 404


def test_passwords_hash_and_check():
    stored = auth.hash_password("s3cret-enough")
    assert auth.check_password("s3cret-enough", stored)
    assert not auth.check_password("s3cret-enougH", stored)
    for broken in (None, "", "md5$x", "scrypt$1$2$3$zz$yy", stored.replace("scrypt", "bcrypt")):
        assert not auth.check_password("s3cret-enough", broken)


def test_logging_out_or_a_new_password_ends_the_session(client, settings, r):
    log_in(client)
    with client.session_transaction() as session:
        stolen = dict(session)
    client.post("/logout", data={"csrf": csrf_of(client, "/events")})
    with client.session_transaction() as session:     # the cookie copied before logging out
        session.update(stolen)
    assert client.get("/events").status_code == 302
    log_in(client)
    auth.set_password(settings.data_dir, "a brand new password")
    assert client.get("/events").status_code == 302


def test_the_page_is_for_the_home_network_only(client):
    assert client.get("/login", environ_base={"REMOTE_ADDR": "192.168.1.20"}).status_code == 200
    assert client.get("/login", environ_base={"REMOTE_ADDR": "8.8.8.8"}).status_code == 403
    # A proxy or tunnel would make every caller look local: refused.
    assert client.get("/login", headers={"X-Forwarded-For": "8.8.8.8"}).status_code == 403
    page = client.get("/login")
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"


def test_a_switch_goes_back_only_to_a_page_of_this_site(client, r):
    log_in(client)
    token = csrf_of(client, "/events")
    for bad in ("//evil.example/x", "/\t/evil.example", "https://evil.example/", "/\\evil.example", "/x\r\nSet-Cookie: a"):
        answer = client.post("/switch", data={"name": "training_on", "csrf": token, "next": bad})
        assert answer.status_code == 302 and answer.headers["Location"] == "/events", bad


def test_odd_input_gets_400_not_a_crash(client):
    log_in(client)
    for bad in ("/events?before=\u00b2", "/events?before=99999999999999999999999", "/events?day=0001-01-01",
                "/events?day=9999-12-31"):
        assert client.get(bad).status_code == 400, bad
    assert client.post("/switch", data={"name": "on", "csrf": "\u00e9"}).status_code == 403
