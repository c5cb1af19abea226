"""Shared fixtures: a real redis-server on a free port, settings pointing at temp folders.

The suite is hermetic: no test (nor any daemon a test starts) reads the repo's own `.env` or
pycam.yaml, which an owner creates while setting up (PYCAM_ENV_FILE and PYCAM_CONFIG set empty).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import cv2
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
# Set before any test runs, so every subprocess inherits them too.
os.environ["PYCAM_ENV_FILE"] = ""
os.environ["PYCAM_CONFIG"] = ""

SHARED_DATA = ROOT.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "manifest.json").is_file(),
    reason="../shared/data (the labelled clips) is not beside this checkout")


def process_env(**extra: str) -> dict[str, str]:
    """The environment for a pycam process a test starts: no SLACK_ or PYCAM_ variable of this
    shell, never the repo's .env or pycam.yaml, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PYCAM_"))}
    env.update(PYCAM_ENV_FILE="", PYCAM_CONFIG="")
    env.update(extra)
    return env


def wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    """predicate()'s first truthy value within `timeout` seconds (AssertionError otherwise)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server child process that tests can stop and start again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server; `make test` does it)")
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the whole test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The URL of an empty Redis database (flushed before and after each test)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield redis_server.url
    try:
        client.flushdb()
    except redis.ConnectionError:
        pass


@pytest.fixture
def r(redis_url):
    """A decoded Redis client on the empty test database."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(tmp_path, redis_url):
    """Settings on the test Redis with every folder under tmp_path and no real secrets."""
    from config import load_settings
    env = {"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")}
    return load_settings(env=env, config_path=None)


@pytest.fixture
def clean_env(monkeypatch):
    """Remove pycam's variables from the environment so a test sees only what it sets."""
    from config import ENV_NAMES
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYCAM_CONFIG", "")       # never the repo's pycam.yaml
    monkeypatch.setenv("PYCAM_ENV_FILE", "")     # never the repo's .env
    return monkeypatch


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory):
    """Frames 30-130 of the sample as an image sequence: empty room, then a person walks in."""
    folder = tmp_path_factory.mktemp("clip")
    cap = cv2.VideoCapture(str(ROOT / "sample" / "one-by-one-person-detection.mp4"))
    for i in range(131):
        ok, frame = cap.read()
        assert ok
        if i >= 30:
            cv2.imwrite(str(folder / f"in{i - 30:06d}.jpg"), frame)
    return str(folder / "in%06d.jpg")
