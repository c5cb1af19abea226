"""The one retry rule: waits grow from `first` to `cap`, and start again after a success."""
import threading

from app.backoff import Backoff


def test_waits_double_up_to_the_cap_and_reset_after_a_success():
    b = Backoff(0.5, 4)
    assert [b.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    b.reset()
    assert b.next() == 0.5


def test_the_frame_loop_form_never_sleeps():
    b = Backoff(1.0, 1.0)
    assert b.ready(now=100.0)
    assert b.failed(now=100.0) == 1.0
    assert not b.ready(now=100.5) and b.ready(now=101.0)
    b.reset()
    assert b.ready(now=100.0)


def test_wait_returns_early_when_stopping():
    stop = threading.Event()
    stop.set()
    assert Backoff(30, 60).wait(stop) is True
