"""The Slack app once under real gunicorn, started the README's way with the project's gunicorn.conf."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app import keys, state
from tests.conftest import ROOT, free_port, process_env
from tests.slack_fakes import CHANNEL, SECRET, TOKEN, command_body, signed_headers

GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture
def gunicorn(tmp_path, redis_url):
    port = free_port()
    env = process_env()
    env.update({"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data"), "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL_ID": CHANNEL, "PYCAM_LOG_LEVEL": "INFO"})
    # The README's line verbatim, plus a free port (command-line options override gunicorn.conf).
    proc = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf", "run_flask", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
        try:
            requests.get(url + "/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url, tmp_path / "data"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_gunicorn_serves_signed_commands_health_and_a_heartbeat(gunicorn, r):
    url, data_dir = gunicorn
    body = command_body("/pycam_on")
    resp = requests.post(url + "/slack/commands", data=body, headers=signed_headers(body), timeout=5)
    assert resp.status_code == 200 and "armed" in resp.json()["text"]
    assert state.get_flag(r, keys.CAMERA_STATUS) is True

    unsigned = command_body("/pycam_off")
    resp = requests.post(url + "/slack/commands", data=unsigned,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert resp.status_code == 401
    assert state.get_flag(r, keys.CAMERA_STATUS) is True

    # Each worker starts the flask_app heartbeat thread in post_worker_init.
    deadline = time.monotonic() + 10
    while state.get_json(r, keys.heartbeat("flask_app")) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state.get_json(r, keys.heartbeat("flask_app"))["state"] == "ok"
    health = requests.get(url + "/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"ok": False, "redis": True, "stale": ["security_system", "notifier", "watchdog"]}
    assert (data_dir / "logs" / "flask_app.log").is_file()


def test_gunicorn_stops_at_start_without_the_signing_secret(tmp_path, redis_url):
    env = process_env()
    env.update({"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    proc = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf", "run_flask", "--bind", f"127.0.0.1:{free_port()}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "SLACK_SIGNING_SECRET is not set" in proc.stderr


def test_slow_clients_do_not_starve_slack_and_oversized_chunked_bodies_get_413(gunicorn, r):
    import socket
    url, _data_dir = gunicorn
    host, port = url.removeprefix("http://").split(":")
    dribblers = []
    for _ in range(4):                                   # each promises 1000 bytes and sends a few
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 1000\r\n\r\ncommand=")
        dribblers.append(s)
    try:
        body = command_body("/pycam_on")
        start = time.monotonic()
        resp = requests.post(url + "/slack/commands", data=body, headers=signed_headers(body), timeout=5)
        assert resp.status_code == 200 and time.monotonic() - start < 5
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /slack/commands HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
            for _ in range(5):                           # 5 x 8 KB: over the 16 KB limit
                s.sendall(b"2000\r\n" + b"a" * 0x2000 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 413")
    finally:
        for s in dribblers:
            s.close()


def test_with_socket_mode_and_no_signing_secret_gunicorn_serves_health_only(tmp_path, redis_url):
    """The default install (Socket Mode) has no signing secret: the app still starts for /healthz,
    and nothing comes in over HTTP."""
    port = free_port()
    env = process_env(REDIS_URL=redis_url, PYCAM_DATA_DIR=str(tmp_path / "data"), SLACK_APP_TOKEN="xapp-1-test")
    proc = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf", "run_flask", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                health = requests.get(url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                time.sleep(0.1)
        assert health.status_code in (200, 503)
        body = command_body("/pycam_on")
        assert requests.post(url + "/slack/commands", data=body, headers=signed_headers(body),
                             timeout=5).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
