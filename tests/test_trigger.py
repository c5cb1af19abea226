"""The event trigger: when a run of moving frames becomes an alert."""
from config import TriggerConfig
from app.camera.trigger import EventTrigger

FPS = 10


def feed(trigger, flags, start=0, box=lambda i: (1, 2, 3, 4)):
    """Feed motion flags at 10 fps (one box a moving frame, from `box(i)`); return the frame indices
    that alerted and the events that ended."""
    alerts, ended = [], []
    for i, moving in enumerate(flags, start):
        step = trigger.update(i, i / FPS, moving, 0.05 if moving else 0.0, [box(i)] if moving else [])
        if step.alert:
            alerts.append(i)
        if step.ended:
            ended.append(step.ended)
    return alerts, ended


def make(**kw):
    t = EventTrigger(TriggerConfig(**kw))
    t.relearn(0.0)
    return t


def test_alert_needs_min_motion_frames():
    t = make(min_motion_frames=3, window_frames=5, warmup_s=0)
    assert feed(t, [True, False, False, False, False, False, True, False])[0] == []
    t = make(min_motion_frames=3, window_frames=5, warmup_s=0)
    assert feed(t, [True, True, True])[0] == [2]


def test_continuous_motion_alerts_once():
    t = make(warmup_s=0, cooldown_s=5)
    alerts, _ = feed(t, [True] * 600)   # a minute of motion
    assert len(alerts) == 1


def test_new_event_after_quiet_alerts_again_but_not_within_cooldown():
    t = make(warmup_s=0, cooldown_s=5, end_after_s=1.5)
    flags = [True] * 10 + [False] * 20 + [True] * 10 + [False] * 20 + [True] * 10
    alerts, ended = feed(t, flags)
    # second event starts at 3.0 s, within 5 s of the first alert: no alert; third at 6.0 s: alert.
    assert alerts == [2, 62]
    assert len(ended) == 2


def test_motion_that_began_while_learning_the_background_alerts_only_once_it_travels():
    """A tree moving in place from the first frame never alerts; someone walking does, at once."""
    t = make(warmup_s=3, min_motion_frames=3)
    assert feed(t, [True] * 100, box=lambda i: (100 + i % 3, 50, 30, 40))[0] == []
    t = make(warmup_s=3, min_motion_frames=3)
    alerts, _ = feed(t, [True] * 40, box=lambda i: (100 + 6 * i, 50, 30, 40))
    assert alerts and alerts[0] <= 10


def test_a_newcomer_during_a_long_event_is_alerted_after_the_cooldown():
    t = make(warmup_s=0, cooldown_s=5)
    first = [(20, 50, 30, 60)]
    alerts, ended = [], []
    for i in range(150):
        boxes = first + ([(250 - 3 * (i - 80), 60, 30, 60)] if i >= 80 else [])
        step = t.update(i, i / FPS, True, 0.1, boxes)
        alerts += [i] if step.alert else []
        ended += [i] if step.ended else []
    assert alerts == [2, 82] and ended == [82]


def test_event_records_its_frames_and_peak():
    t = make(warmup_s=0)
    alerts, ended = feed(t, [False] * 5 + [True] * 10 + [False] * 30)
    ev = ended[0]
    assert (ev.start_frame, ev.alert_frame, ev.end_frame) == (5, 7, 14)
    assert ev.peak_area == 0.05
