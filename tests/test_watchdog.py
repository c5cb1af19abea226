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
    dog.check(now)                                          # at start nobody has beaten yet: no alarm
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now + 29)
    dog.check(now + 30)                                     # ...and once they have, all is well
    assert texts(r) == []
    r.delete(keys.heartbeat("security_system"))            # the camera daemon died
    firmware.write_text("0x50005\n")                        # under-voltage and throttled now
    for t in (31, 32, 33):
        dog.check(now + t)
    told = texts(r)
    assert len(told) == 3 and "the camera daemon has stopped" in told[0]
    assert "under-volted" in told[1] and "throttled" in told[2]
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now + 34)                             # restarted by systemd
    firmware.write_text("0x50000\n")                        # only the "has happened" bits remain
    dog.check(now + 34)
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, now + 100)
    dog.check(now + 100)                                    # power calm for a minute: over
    told = texts(r)[3:]
    assert len(told) == 3 and "camera daemon runs again" in told[0]
    assert "power is fine again (under-volted for 3 s)" in told[1]      # 31 to 34: not the calm minute
    assert "full speed again (throttled for 3 s)" in told[2]


def test_redis_away_is_told_once_it_is_back_with_how_long(tmp_path):
    """Nothing can be queued while Redis is away: the owner hears of it once it is back."""
    import threading
    from app import state
    from app.utils import StopFlag
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    stop = StopFlag()
    try:
        settings = load_settings(env={"REDIS_URL": server.url})
        r = state.connect(server.url, "test", socket_timeout=0.3, connect_timeout=0.3, retries=1)
        dog = Watchdog(settings, r, firmware=tmp_path / "absent", check_s=0.1, away_min_s=1.0)
        thread = threading.Thread(target=dog.run, args=(stop,))
        thread.start()
        time.sleep(0.5)
        server.stop()
        time.sleep(2.5)                                     # away for 2-3 s
        server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("Redis" in t for t in texts(r)):
            time.sleep(0.1)
        about = [t for t in texts(r) if "Redis" in t]
        assert len(about) == 1 and any(f"Redis was unreachable for {n} s" in about[0] for n in (2, 3, 4)), about
        assert thread.is_alive()                            # the outage never ended the watchdog
    finally:
        stop.set()
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


def test_the_daily_digest_comes_once_at_its_time_with_events_by_verdict_and_problems(tmp_path, redis_url, r):
    from datetime import datetime
    from app import alarms
    f = tmp_path / "pycam.yaml"
    f.write_text("schedule:\n  digest: '08:00'\n")
    settings = load_settings(env={"REDIS_URL": redis_url}, config_path=f)
    morning = datetime(2026, 11, 30, 8, 0, 30).timestamp()
    r.xadd(keys.EVENTS, {"event": json.dumps({"id": "old", "notified": True})}, id=f"{int((morning - 2 * 86400) * 1000)}-0")
    kinds = [{"notified": True}, {"notified": True}, {"verified": False, "notified": False},
             {"quiet": "daily 22:00-07:00", "notified": False}]
    for i, extra in enumerate(kinds):                      # the last day, oldest first
        r.xadd(keys.EVENTS, {"event": json.dumps({"id": f"e{i}", **extra})},
               id=f"{int((morning - 3600 * (len(kinds) - i)) * 1000)}-0")
    alarms.raise_alarm(r, "camera_source", morning - 7200, "pycam: the camera is lost since 06:00:30")
    dog = Watchdog(settings, r, firmware=tmp_path / "absent")
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, morning - 60)
    dog.check(morning - 60)                                  # 07:59:30: not yet
    assert not any("digest" in t for t in texts(r))
    for name in ("security_system", "notifier", "watchdog"):
        beat(r, name, morning)
    dog.check(morning)
    dog.check(morning + 60)                                  # and only once
    digests = [t for t in texts(r) if "daily digest" in t]
    assert len(digests) == 1
    assert "4 events: 2 sent, 1 held back by the verifier, 1 in quiet hours" in digests[0]
    assert "1 health problem" in digests[0] and "the camera is lost" in digests[0]


def test_with_several_cameras_each_ones_stop_is_told(redis_url, r):
    """Two cameras share the camera daemon's heartbeat name: one alive keeps it fresh while the
    other is dead, so each camera's own beat is watched."""
    settings = load_settings(env={"REDIS_URL": redis_url})
    ttl = settings.heartbeat_ttl_s
    dog = Watchdog(settings, r, firmware=None)
    now = time.time()
    dog.check(now)

    def alive(t, *names):
        for name in ("security_system", "notifier", "watchdog"):
            beat(r, name, now + t)
        for name in names:
            r.hset(keys.CAMERAS, name, json.dumps({"time": now + t, "state": "running", "armed": True}))
        dog.check(now + t + 1)

    alive(ttl, "front", "garage")
    alive(ttl + 20, "front")                      # the garage camera died after its beat at `ttl`
    alive(2 * ttl + 10, "front")
    assert texts(r) == ["pycam: camera garage has stopped (no heartbeat since about "
                        f"{time.strftime('%H:%M:%S', time.localtime(now + 2 * ttl + 11 - ttl))})."]
    alive(3 * ttl, "front", "garage")             # restarted
    assert len(texts(r)) == 2 and "camera garage runs again" in texts(r)[1]
