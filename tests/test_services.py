"""The services process: Slack, presence and S3 in one interpreter, each on its own thread."""
import threading
import time

from app import together
from app.utils import StopFlag
from config import load_settings


def wait_for(check, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_crashed_service_is_started_again_and_the_others_go_on(redis_url):
    settings = load_settings(env={"REDIS_URL": redis_url})
    calls = {"crashy": 0, "steady": 0, "misconfigured": 0}

    def crashy(settings, r, stop):
        calls["crashy"] += 1
        if calls["crashy"] == 1:
            raise RuntimeError("a bug on a rare input")
        stop.wait()
        return 0

    def steady(settings, r, stop):
        calls["steady"] += 1
        stop.wait()
        return 0

    starts = []

    def misconfigured(settings, r, stop):
        calls["misconfigured"] += 1
        starts.append(time.monotonic())
        return 2                              # its settings cannot be used (yet): tried again, less often

    services = [together.Service(name, settings, serve) for name, serve in
                (("crashy", crashy), ("steady", steady), ("misconfigured", misconfigured))]
    stop = StopFlag()
    runner = threading.Thread(target=together.supervise, args=(services, stop, 0.05))
    runner.start()
    try:
        assert wait_for(lambda: calls["crashy"] == 2 and calls["misconfigured"] == 3)
        assert calls["steady"] == 1 and calls["crashy"] == 2
        assert all(s.thread.is_alive() for s in services[:2])
        # Started again at once, then after 2 s: a service that keeps stopping never spins.
        assert starts[2] - starts[1] >= 1.9
    finally:
        stop.set()
        runner.join(5)
    assert not runner.is_alive()
    assert not any(s.thread.is_alive() for s in services)     # each service's own stop was set
