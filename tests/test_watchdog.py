"""The watchdog: a stopped process, Redis away, the Pi's power; each told once when it starts and
once when it ends. The Pi firmware's report is a file written here (there is no Pi)."""
import json
import time

from app import keys
from app.watch.daemon import Watchdog
from config import load_settings
from tests.conftest import RedisServer


def beat(r, name, when):
    """A heartbeat as the process writes it, at `when` (the test's clock)."""
    r.set(keys.heartbeat(name), json.dumps({"time": when, "pid": 1, "state": "ok", "detail": None}))


def texts(r):
    return [json.loads(f["job"])["text"] for _, f in r.xrange(keys.SLACK_OUTBOX)]


def test_a_stopped_process_and_the_pis_power_are_told_once_each_way(tmp_path, redis_url, r):
    settings = load_settings(env={"REDIS_URL": redis_url})
    firmware = tmp_path / "get_throttled"
    firmware.write_text("0x0\n")
    dog = Watchdog(settings, r, firmware=firmware)
    now = time.time()
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now)
    dog.check(now)
    assert texts(r) == []
    r.delete(keys.heartbeat("security_system"))            # the camera daemon died
    firmware.write_text("0x50005\n")                        # under-voltage and throttled now
    for t in (1, 2, 3):
        dog.check(now + t)
    told = texts(r)
    assert len(told) == 3 and "the camera daemon has stopped" in told[0]
    assert "under-volted" in told[1] and "throttled" in told[2]
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now + 4)                              # restarted by systemd
    firmware.write_text("0x50000\n")                        # only the "has happened" bits remain
    dog.check(now + 4)
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now + 70)
    dog.check(now + 70)                                     # power calm for a minute: over
    told = texts(r)[3:]
    assert len(told) == 3 and "camera daemon runs again" in told[0]
    assert any("power is fine again" in t for t in told) and any("full speed again" in t for t in told)


def test_redis_away_is_told_once_it_is_back_with_how_long(tmp_path):
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        from app import state
        settings = load_settings(env={"REDIS_URL": server.url})
        r = state.connect(server.url, "test", socket_timeout=0.5, connect_timeout=0.5, retries=1)
        dog = Watchdog(settings, r, firmware=tmp_path / "absent")
        dog.check(time.time())
        server.stop()
        t0 = time.time()
        for t in (0, 95):
            try:
                dog.check(t0 + t)
            except state.REDIS_DOWN:
                dog.away_since = dog.away_since or t0 + t
        server.start()
        dog.check(t0 + 125)
        assert [t for t in texts(r) if "Redis" in t] == [texts(r)[0]]
        assert "Redis was unreachable for 2 min" in texts(r)[0]
    finally:
        server.stop()


def test_after_the_services_were_down_the_watchdog_says_for_how_long(tmp_path, redis_url, r):
    from app.watch.daemon import LAST_SEEN
    settings = load_settings(env={"REDIS_URL": redis_url})
    now = time.time()
    r.set(LAST_SEEN, now - 600)                             # its last check, ten minutes ago
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now)
    Watchdog(settings, r, firmware=tmp_path / "absent").check(now)
    assert texts(r) == [texts(r)[0]] and "were down for 10 min" in texts(r)[0]
    again = Watchdog(settings, r, firmware=tmp_path / "absent")             # a plain restart: nothing to tell
    again.check(now + 5)
    assert len(texts(r)) == 1
