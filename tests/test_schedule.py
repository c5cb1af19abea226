"""Schedules: arm windows and quiet hours by weekday and time, from pycam.yaml or Slack, with a
fixed clock; how they combine with presence and a manual command."""
import json
from datetime import datetime

import pytest

from app import keys, schedule
from app.presence import rules
from config import ConfigError, load_settings

FRI_2300 = datetime(2026, 11, 27, 23, 0)     # a Friday
SAT_0300 = datetime(2026, 11, 28, 3, 0)
SAT_1200 = datetime(2026, 11, 28, 12, 0)
MON_0900 = datetime(2026, 11, 30, 9, 0)


def test_windows_by_weekday_and_time_including_past_midnight():
    w = [schedule.parse_window("fri 23:00-06:00")]
    assert schedule.open_window(w, FRI_2300) and schedule.open_window(w, SAT_0300)
    assert not schedule.open_window(w, SAT_1200)
    assert not schedule.open_window(w, datetime(2026, 11, 29, 3, 0))          # Sunday 03:00: Saturday has none
    work = [schedule.parse_window("Mon-Fri 8:30-17:30")]
    assert work == ["weekdays 08:30-17:30"]
    assert schedule.open_window(work, MON_0900) and not schedule.open_window(work, SAT_1200)
    assert schedule.open_window([schedule.parse_window("sat,sun 10:00-12:30")], SAT_1200)


@pytest.mark.parametrize("bad", ["someday 10:00-11:00", "mon 25:00-26:00", "mon 10:00-10:00", "mon 10-11"])
def test_an_unreadable_window_is_a_clear_error(bad, tmp_path):
    with pytest.raises(schedule.ScheduleError):
        schedule.parse_window(bad)
    f = tmp_path / "pycam.yaml"
    f.write_text(f"schedule:\n  arm: ['{bad}']\n")
    with pytest.raises(ConfigError, match="schedule.arm"):
        load_settings(env={}, config_path=f)


def outcome(home):
    return rules.Outcome(home=home, arrived=[], left=[], seen=home, no_data=[])


def test_a_window_arms_presence_away_arms_and_a_manual_command_wins_until_the_next_change():
    # Someone home, a window opens: armed by the schedule.
    d = rules.decide(outcome(["ann"]), auto=True, armed=False, manual=None, window="daily 23:00-06:00", scheduled=True)
    assert d.armed is True and "schedule" in d.message
    # Ann disarms by hand inside the window: it holds while the window stays open...
    manual = {"state": False, "home": ["ann"], "window": "daily 23:00-06:00"}
    d = rules.decide(outcome(["ann"]), auto=True, armed=False, manual=manual, window="daily 23:00-06:00", scheduled=True)
    assert d.armed is None and not d.clear_manual
    # ...and ends when it closes (the next change); nobody left, so the camera stays disarmed.
    d = rules.decide(outcome(["ann"]), auto=True, armed=False, manual=manual, window=None, scheduled=True)
    assert d.clear_manual and d.armed is None
    # Without people configured, the window alone arms and disarms.
    d = rules.decide(outcome([]), auto=True, armed=True, manual=None, people_configured=False, window=None,
                     scheduled=True)
    assert d.armed is False and "window closed" in d.message
    # Nobody home outside any window: presence arms, as before.
    d = rules.decide(outcome([]), auto=True, armed=False, manual=None, window=None, scheduled=True)
    assert d.armed is True and "nobody home" in d.message


def test_schedule_from_slack_overrides_the_yaml_and_shows_in_status(r, tmp_path):
    from app.slack import commands, status
    f = tmp_path / "pycam.yaml"
    f.write_text("schedule:\n  quiet: ['daily 22:00-07:00']\n")
    settings = load_settings(env={"PYCAM_DATA_DIR": str(tmp_path / "data")}, config_path=f)
    cmd = lambda text: commands.run(r, settings, commands.Command("schedule", text, "U1", "ann", ""))
    assert "quiet hours daily 22:00-07:00" in cmd("")["text"]
    assert "arms weekdays 08:30-17:30" in cmd("arm mon-fri 08:30-17:30")["text"]
    assert json.loads(r.get(keys.SCHEDULE)) == {"arm": ["weekdays 08:30-17:30"], "quiet": ["daily 22:00-07:00"]}
    assert "DAYS HH:MM-HH:MM" in cmd("arm someday 9-5")["text"]                    # refused, nothing changed
    assert "Schedule: arms weekdays 08:30-17:30" in status.status_text(r, settings)
    assert "none" in cmd("clear all")["text"]
    cmd("reset")
    assert r.get(keys.SCHEDULE) is None and "quiet hours daily 22:00-07:00" in cmd("")["text"]


def test_quiet_hours_record_and_publish_but_send_nothing(tmp_path, redis_url, r):
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag
    settings = load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    r.set(keys.SCHEDULE, json.dumps({"arm": [], "quiet": ["daily 00:00-23:59"]}))
    daemon = CameraDaemon(settings, state.connect(redis_url, "test"), StopFlag())
    daemon.poll_control()
    meta = {"id": "20261130-120000-abcdef", "time": datetime(2026, 11, 30, 12).timestamp(), "area": 0.1,
            "boxes": [], "snapshot": None, "verified": None}
    daemon.publisher.add(dict(meta))
    published = json.loads(r.xrange(keys.EVENTS)[0][1]["event"])
    assert published["quiet"] == "daily 00:00-23:59" and published["notified"] is False
    assert r.xlen(keys.SLACK_OUTBOX) == 0


def test_pycam_events_lists_the_last_events_with_what_became_of_each(r, tmp_path):
    from app.slack import commands
    settings = load_settings(env={"PYCAM_DATA_DIR": str(tmp_path / "data")})
    for i, extra in enumerate([{"notified": True, "verified": True}, {"verified": False, "notified": False},
                               {"quiet": "daily 22:00-07:00", "notified": False}]):
        r.xadd(keys.EVENTS, {"event": json.dumps({"id": f"20261130-0{i}0000-abcdef", "time": 1.8e9 + i,
                                                  "area": 0.05, **extra})})
    cmd = lambda text: commands.run(r, settings, commands.Command("events", text, "U1", "ann", ""))["text"]
    lines = [line for line in cmd("").splitlines() if line.startswith("•")]
    assert len(lines) == 3
    assert "recorded in quiet hours" in lines[0] and "held back by the verifier" in lines[1]
    assert "sent (verified)" in lines[2] and "20261130-000000-abcdef" in lines[2]
    assert len([x for x in cmd("1").splitlines() if x.startswith("•")]) == 1
    assert "Usage" in cmd("all of them")


def test_the_edges_a_reviewer_found():
    # A window arms even when presence lacks data for someone (nobody seen home).
    no_data = rules.Outcome(home=[], arrived=[], left=[], seen=[], no_data=["bob"])
    d = rules.decide(no_data, auto=True, armed=False, manual=None, window="daily 23:00-06:00", scheduled=True)
    assert d.armed is True
    # The window closes with Ann seen at home (Bob unknown): seeing her is evidence enough to disarm.
    ann_seen = rules.Outcome(home=["ann"], arrived=[], left=[], seen=["ann"], no_data=["bob"])
    d = rules.decide(ann_seen, auto=True, armed=True, manual=None, window=None, scheduled=True)
    assert d.armed is False
    # /pycam_off inside a window with nobody home, then Ann comes home: it stays off until the window closes.
    manual = {"state": False, "home": [], "window": "daily 23:00-06:00"}
    arrived = rules.Outcome(home=["ann"], arrived=["ann"], left=[], seen=["ann"], no_data=[])
    d = rules.decide(arrived, auto=True, armed=False, manual=manual, window="daily 23:00-06:00", scheduled=True)
    assert d.armed is None and not d.clear_manual
    # A whole day can be written.
    assert schedule.parse_window("daily 00:00-24:00") == "daily 00:00-24:00"
    assert schedule.open_window(["daily 00:00-24:00"], datetime(2026, 11, 30, 23, 59))


def test_a_bad_schedule_in_redis_falls_back_to_the_yaml_and_presence_still_arms(r, tmp_path):
    from app.presence.daemon import WhoIsHome
    f = tmp_path / "pycam.yaml"
    f.write_text("schedule:\n  arm: ['daily 00:00-24:00']\n")
    settings = load_settings(env={}, config_path=f)
    r.hset(keys.SCHEDULE, "not", "a string")                         # a wrong-typed key
    r.set(keys.AUTO_DETECT_STATUS, "true")
    app = WhoIsHome(r, settings.presence, [], schedule_cfg=settings.schedule)
    app.poll_once()
    assert r.get(keys.CAMERA_STATUS) == "true"
    told = [json.loads(f["job"])["text"] for _, f in r.xrange(keys.SLACK_OUTBOX)]
    assert told == ["Armed: the schedule (daily 00:00-24:00)"]
    from app.slack import commands
    assert "Usage" in commands.run(r, settings, commands.Command("events", "²", "U1", "ann", ""))["text"]
