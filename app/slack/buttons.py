"""The Occupied / Unoccupied buttons on alerts: validate a click, store the label, show it in the alert."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from app import outbox, story, utils
from app.slack import messages
from app.storage import events, labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelClick:
    """An Occupied / Unoccupied click, validated."""
    event_id: str
    label: str
    user_id: str
    user_name: str
    response_url: str


def parse_label_click(payload: object) -> LabelClick | None:
    """The click inside a block_actions payload, or None when anything about it is off."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        return None
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return None
    label = messages.LABEL_ACTIONS.get(actions[0].get("action_id"))
    event_id = actions[0].get("value")
    response_url = payload.get("response_url")
    # The id is checked against a strict pattern before it comes near a path.
    if label is None or not events.is_event_id(event_id) or not isinstance(response_url, str):
        return None
    name = user.get("username") or user.get("name") or user["id"]
    return LabelClick(event_id, label, user["id"], str(name), response_url)


def label_event(r: redis.Redis, settings, click: LabelClick) -> bool:
    """Store the label and queue the rewrite of the alert; False when the event is no longer stored."""
    told = story.read(r, click.event_id)
    box = outbox.box(told.facts.get("box"))
    # A camera Pi's event: its files are there, so its notifier keeps the labelled copy
    # (app/slack/delivery.py) when it shows the label.
    kept_there = box != outbox.HOME and bool(told.ts)
    if not kept_there:
        files = events.event_files(settings.data_dir, click.event_id)
        if not (files["clean"].is_file() and files["meta"].is_file()):
            outbox.enqueue(r, outbox.make_job(
                "response", response_url=click.response_url, replace_original=False, response_type="ephemeral",
                text="That event is no longer stored (retention deleted it), so it was not labelled."))
            return False
        try:
            labels.record_label(settings.data_dir, click.event_id, click.label, click.user_id, click.user_name)
        except FileNotFoundError:  # deleted between the check and the copy
            return False
    log.info("Event %s labelled %s by %s%s", click.event_id, click.label, click.user_id,
             f" (kept on camera {told.facts['box']})" if kept_there else "")
    if told.ts:
        # The event's message shows its label, with everything else it shows (app/story.py).
        keep = {"label": click.label, "user_id": click.user_id, "user_name": click.user_name} if kept_there else {}
        with r.pipeline(transaction=True) as p:
            story.tell(p, click.event_id, label=click.label, labelled_by=click.user_id)
            outbox.enqueue(p, outbox.make_job("update", event_id=click.event_id, **keep), box)
            p.execute()
        return True
    # An alert from before event messages kept their story: rewrite it through the response_url.
    meta = utils.read_json_file(files["meta"], {})
    text = messages.alert_text(meta.get("camera") or settings.camera.name, meta.get("time"), meta.get("area"))
    outbox.enqueue(r, outbox.make_job(
        "response", response_url=click.response_url, replace_original=True,
        text=f"{text}. Tagged {click.label} by @{click.user_name}",
        blocks=messages.tagged_blocks(text, click.event_id, click.label, click.user_id)))
    return True
