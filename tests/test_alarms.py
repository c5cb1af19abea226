"""Health and tamper alarms: debounced, one message when a problem starts and one when it ends."""
import json

from app import alarms, keys
from app.alarms import Alarm, Board


def test_an_alarm_is_raised_after_it_lasts_and_cleared_after_it_is_gone():
    a = Alarm("x", raise_after_s=3, clear_after_s=5)
    assert [a.update(True, t) for t in (0, 1, 2)] == [None, None, None]
    assert a.update(True, 3) == "raised" and a.raised_since == 0
    assert a.update(False, 4) is None and a.update(True, 5) is None     # a flicker is still one problem
    assert [a.update(False, t) for t in (6, 10)] == [None, None]
    assert a.update(False, 11) == "cleared" and a.raised_since is None
    assert a.update(True, 12) is None                                     # a blip is not news


def outbox_texts(r):
    return [json.loads(f["job"])["text"] for _, f in r.xrange(keys.SLACK_OUTBOX)]


def test_each_problem_is_told_once_when_it_starts_and_once_when_it_ends_across_a_restart(r):
    call = lambda fn, *a: fn(*a)
    board = Board(call, lambda: r, covered=(2.0, 2.0))
    end = lambda since, ended: f"sees again after {alarms.duration(ended - since)}"
    for t in range(0, 6):
        board.check("covered", True, float(t), lambda since: "covered!", end)
    assert outbox_texts(r) == ["covered!"] and "covered" in alarms.active(r)
    # The daemon restarts while the lens is still covered: no second start message...
    board = Board(call, lambda: r, covered=(2.0, 2.0))
    for t in range(6, 10):
        board.check("covered", True, float(t), lambda since: "covered!", end)
    for t in range(10, 13):
        board.check("covered", False, float(t), lambda since: "covered!", end)
    # ...and the end message says how long it lasted, from the first start.
    assert outbox_texts(r) == ["covered!", "sees again after 10 s"] and alarms.active(r) == {}


def test_a_message_redis_could_not_take_is_sent_at_a_later_check(r):
    down = {"now": True}
    call = lambda fn, *a: None if down["now"] else fn(*a)
    board = Board(call, lambda: r, lost=(0.0, 0.0))
    board.check("lost", True, 0.0, lambda s: "lost", lambda s, e: "back")
    assert outbox_texts(r) == []
    down["now"] = False
    board.check("lost", True, 1.0, lambda s: "lost", lambda s, e: "back")
    assert outbox_texts(r) == ["lost"]
    down["now"] = True                                  # the end, too, waits for Redis
    board.check("lost", False, 2.0, lambda s: "lost", lambda s, e: f"back after {e - s:.0f} s")
    down["now"] = False
    board.check("lost", False, 3.0, lambda s: "lost", lambda s, e: f"back after {e - s:.0f} s")
    assert outbox_texts(r) == ["lost", "back after 1 s"]     # from its first check with Redis (t=1) to t=2


def test_pycam_status_lists_the_problems_going_on(r, settings):
    from app.slack import status
    alarms.raise_alarm(r, "camera_view", 1_700_000_000.0, "pycam: the camera sees nothing since 03:12:00")
    assert "the camera sees nothing since 03:12:00" in status.status_text(r, settings)
    alarms.clear_alarm(r, "camera_view", 1_700_000_000.0, "pycam: the camera sees again")
    assert "sees nothing" not in status.status_text(r, settings)
