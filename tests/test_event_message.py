"""An event's one Slack message as it grows: posted at once, its snapshot into its thread and
into the message, updated with its end, its clip in the thread, its label; a burst of alerts
within Slack's rate limit. The real notifier and slack_sdk against the fake Slack, real Redis."""
from __future__ import annotations

import time

import pytest

from app import keys, outbox, story
from app.slack.buttons import LabelClick, label_event
from tests.slack_fakes import FakeSlack, make_event
from tests.test_notifier import message_event_ids, pending, running, settings  # noqa: F401 (fixture)


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.close()


def publish(r, meta: dict, training: bool = False) -> None:
    """What the camera daemon's publisher queues for a new event: its story and its alert."""
    with r.pipeline(transaction=True) as p:
        story.tell(p, meta["id"], **story.facts_of(meta, training))
        outbox.enqueue(p, outbox.make_job("alert", f"alert:{meta['id']}", event_id=meta["id"], time=meta["time"],
                                          area=meta["area"], snapshot=meta["snapshot"], boxes=meta["boxes"],
                                          training=training))
        p.execute()


def change(r, event_id: str, **facts) -> None:
    """What the publisher queues when an event changes (its end)."""
    with r.pipeline(transaction=True) as p:
        story.tell(p, event_id, **facts)
        outbox.enqueue(p, outbox.make_job("update", event_id=event_id))
        p.execute()


def context_text(message: dict) -> str:
    return " ".join(e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"])


def test_one_event_one_message_from_trigger_to_clip(settings, r, fake):
    meta = make_event(settings.data_dir)
    clip = settings.data_dir / meta["snapshot"].replace(".jpg", ".mp4")
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 a clip")
    with running(settings, r):
        publish(r, meta)
        assert fake.wait_for(lambda: fake.accepted("chat.update"))
        ts = fake.posted[0]["ts"]
        assert "Lasted" not in context_text(fake.message(ts))
        change(r, meta["id"], end_time=meta["time"] + 12)          # the motion ended
        assert fake.wait_for(lambda: "Lasted 13 s" in context_text(fake.message(ts)))
        with r.pipeline() as p:                                    # the clip is written
            story.tell(p, meta["id"], clip_s=16.0)
            outbox.enqueue(p, outbox.make_job("clip", f"clip:{meta['id']}", event_id=meta["id"],
                                              clip=meta["snapshot"].replace(".jpg", ".mp4"), seconds=16.0))
            p.execute()
        assert fake.wait_for(lambda: "Clip (16 s) in the thread" in context_text(fake.message(ts)))
        assert fake.wait_for(lambda: pending(r) == 0)
    assert len(fake.accepted("chat.postMessage")) == 1           # one message all along
    thread = fake.in_thread(ts)
    assert [f["name"] for f in thread] == [f"{meta['id']}.jpg", f"{meta['id']}.mp4"]
    assert fake.accepted("upload")[-1].body == clip.read_bytes()
    final = fake.message(ts)
    assert any(b["type"] == "image" and b["slack_file"]["id"] == thread[0]["id"] for b in final["blocks"])
    assert "Lasted 13 s" in context_text(final)                  # each update shows all that is known


def test_changes_queued_together_are_shown_by_one_update(settings, r, fake):
    meta = make_event(settings.data_dir)
    with running(settings, r):
        publish(r, meta)
        assert fake.wait_for(lambda: fake.accepted("chat.update") and pending(r) == 0)
    updates = len(fake.accepted("chat.update"))
    for i in range(3):                        # three changes before the notifier is back
        change(r, meta["id"], end_time=meta["time"] + i + 1)
    with running(settings, r):
        assert fake.wait_for(lambda: pending(r) == 0)
        time.sleep(0.2)
    assert len(fake.accepted("chat.update")) == updates + 1
    assert "Lasted 4 s" in context_text(fake.message(fake.posted[0]["ts"]))


def test_a_burst_of_ten_alerts_is_coalesced_within_the_rate_limit(settings, r, fake):
    metas = [make_event(settings.data_dir, t=time.time() + i * 0.1, area=0.01 * (i + 1)) for i in range(10)]
    with running(settings, r) as notifier:
        for meta in metas:                    # ten events in one second
            publish(r, meta, training=True)
            time.sleep(0.1)
        assert fake.wait_for(lambda: notifier.sent == 10 and pending(r) == 0, timeout=30)
    posts = fake.accepted("chat.postMessage")
    # None dropped, none twice, in order; fewer messages than events...
    assert message_event_ids(posts) == [m["id"] for m in metas]
    assert len(posts) <= 2                    # the first at once, the rest together a second later
    # ...and never two posts within Slack's second.
    assert all(b.time - a.time >= 0.99 for a, b in zip(posts, posts[1:]))
    # Each event keeps its own buttons and its snapshot in its message's thread.
    buttons = [e["value"] for m in fake.posted for b in m["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert sorted(set(buttons)) == sorted(m["id"] for m in metas)
    assert sorted(f["name"] for f in fake.shared) == sorted(f"{m['id']}.jpg" for m in metas)
    assert all(f["thread_ts"] for f in fake.shared)


def test_a_snapshot_slack_has_not_processed_yet_is_shown_by_the_next_update(settings, r, fake):
    fake.file_ready_s = 1.0                   # Slack refuses the image block for a second
    meta = make_event(settings.data_dir)
    with running(settings, r):
        publish(r, meta)
        assert fake.wait_for(lambda: fake.accepted("chat.update") and pending(r) == 0)
        ts = fake.posted[0]["ts"]
        assert not [b for b in fake.message(ts)["blocks"] if b["type"] == "image"]   # the thread has it
        time.sleep(1.0)
        change(r, meta["id"], end_time=meta["time"] + 5)
        assert fake.wait_for(lambda: "Lasted" in context_text(fake.message(ts)))
    assert [b for b in fake.message(ts)["blocks"] if b["type"] == "image"]


def test_a_label_click_updates_the_same_message(settings, r, fake):
    meta = make_event(settings.data_dir)
    with running(settings, r):
        publish(r, meta, training=True)
        assert fake.wait_for(lambda: fake.accepted("chat.update") and pending(r) == 0)
        ts = fake.posted[0]["ts"]
        assert label_event(r, settings, LabelClick(meta["id"], "occupied", "U0OWNER", "alice", ""))
        assert fake.wait_for(lambda: "Tagged *occupied* by <@U0OWNER>" in context_text(fake.message(ts)))
    final = fake.message(ts)
    assert [b for b in final["blocks"] if b["type"] == "image"]           # the picture stays
    [actions] = [b for b in final["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["label_unoccupied"]   # "Change to unoccupied"
    assert fake.accepted("response") == []


def test_an_update_for_a_message_the_owner_deleted_is_dropped_and_the_queue_moves_on(settings, r, fake):
    meta = make_event(settings.data_dir)
    with running(settings, r):
        publish(r, meta)
        assert fake.wait_for(lambda: fake.accepted("chat.update") and pending(r) == 0)
        fake.posted.clear()                                      # deleted in Slack
        change(r, meta["id"], end_time=meta["time"] + 5)
        outbox.enqueue(r, outbox.make_job("message", text="after"))
        assert fake.wait_for(lambda: pending(r) == 0 and [m for m in fake.posted if m["text"] == "after"])
    assert not r.exists(keys.SLACK_PARKED)


def test_a_quiet_event_gets_no_message_and_its_updates_send_nothing(settings, r, fake):
    meta = make_event(settings.data_dir)
    outbox.enqueue(r, outbox.make_job("update", event_id=meta["id"]))
    outbox.enqueue(r, outbox.make_job("clip", f"clip:{meta['id']}", event_id=meta["id"], clip=meta["snapshot"]))
    outbox.enqueue(r, outbox.make_job("message", text="after"))
    with running(settings, r):
        assert fake.wait_for(lambda: pending(r) == 0 and fake.accepted("chat.postMessage"))
    assert [c.method for c in fake.calls] == ["chat.postMessage"]
    assert fake.posted[0]["text"] == "after"


def shown_in_slack(fake) -> list[str]:
    """Every event the channel's messages show now (after their updates), in order."""
    return [b["block_id"][6:] for m in fake.posted for b in m["blocks"] if b.get("block_id", "").startswith("event:")]


def test_twelve_alerts_held_through_an_outage_arrive_in_two_messages(settings, r, fake):
    fake.outage("500")
    metas = [make_event(settings.data_dir, t=time.time() + i, area=0.01 * (i + 1)) for i in range(12)]
    with running(settings, r) as notifier:
        for meta in metas:
            publish(r, meta)
        assert fake.wait_for(lambda: len(fake.attempts("chat.postMessage")) >= 3)
        fake.outage(None)
        assert fake.wait_for(lambda: notifier.sent == 12 and pending(r) == 0, timeout=30)
    assert len(fake.accepted("chat.postMessage")) == 2            # ten, then two
    assert shown_in_slack(fake) == [m["id"] for m in metas]


def test_an_alert_queued_while_a_post_lost_its_answer_is_still_shown(settings, r, fake):
    """The post reached Slack but its answer was lost; meanwhile another alert arrives. The
    message found again shows what it showed, and the newcomer is shown too, once."""
    first, second, third = (make_event(settings.data_dir, t=time.time() + i, area=0.01 * (i + 1)) for i in range(3))
    fake.fail_next("chat.postMessage", "lost")
    with running(settings, r, http_timeout=1) as notifier:
        publish(r, first)
        publish(r, second)
        assert fake.wait_for(lambda: fake.attempts("chat.postMessage"))
        publish(r, third)
        fake.release.set()                 # the lost answer's connection goes; the client timed out
        assert fake.wait_for(lambda: notifier.sent == 3 and pending(r) == 0, timeout=30)
    shown = shown_in_slack(fake)
    assert sorted(shown) == sorted(m["id"] for m in (first, second, third)) and len(shown) == 3


def test_an_alert_sent_late_brings_its_clip_along(settings, r, fake):
    """An alert set aside (or held back) is posted after its clip was written: the clip job found
    no message then, so the alert puts the clip in its thread itself."""
    meta = make_event(settings.data_dir)
    (settings.data_dir / meta["snapshot"].replace(".jpg", ".mp4")).write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with r.pipeline() as p:
        story.tell(p, meta["id"], **story.facts_of(dict(meta, clip_s=9.0), False))
        p.execute()
    outbox.enqueue(r, outbox.make_job("clip", f"clip:{meta['id']}", event_id=meta["id"]))   # before its alert
    outbox.enqueue(r, outbox.make_job("alert", f"alert:{meta['id']}", event_id=meta["id"], time=meta["time"],
                                      area=meta["area"], snapshot=meta["snapshot"], boxes=[], training=False))
    with running(settings, r):
        assert fake.wait_for(lambda: pending(r) == 0 and fake.accepted("chat.update"))
    ts = fake.posted[0]["ts"]
    assert [f["name"] for f in fake.in_thread(ts)] == [f"{meta['id']}.jpg", f"{meta['id']}.mp4"]
    assert "Clip (9 s) in the thread" in context_text(fake.message(ts))


def test_pycam_live_answers_at_once_then_posts_what_the_camera_sees_now(settings, r, fake):
    import threading

    import numpy as np

    from app import live
    from app.slack import commands
    settings.web.enabled, settings.web.url = True, "http://pycam.local:8000/"
    picture = live.encode(np.full((360, 640, 3), 90, np.uint8), 640)

    def camera():                      # the camera daemon's part: a frame once someone watches
        if fake.wait_for(lambda: r.exists(keys.LIVE_VIEWER), timeout=10):
            live.publish(r, picture, time.time())
    threading.Thread(target=camera, daemon=True).start()
    answer = commands.HANDLERS["live"](r, settings, commands.Command("live", "", "U0OWNER", "owner",
                                                                     fake.response_url("live")))
    assert "http://pycam.local:8000/live" in answer["text"] and answer["response_type"] == "ephemeral"
    with running(settings, r):
        assert fake.wait_for(lambda: fake.accepted("response"), timeout=15)
    [upload] = fake.accepted("upload")
    assert upload.body == picture                      # the frame now, not the last event's
    [reply] = fake.accepted("response")
    assert reply.path == "/response/live" and reply.params["text"].startswith(f"{settings.camera.name} now.")
