"""Block Kit builders for pycam's Slack messages (pure functions: data in, JSON-able dicts out)."""
from __future__ import annotations

import time

from app.alarms import duration

# Button action ids -> the label they set; the button's value is the event id.
LABEL_ACTIONS = {"label_occupied": "occupied", "label_unoccupied": "unoccupied"}
ACTION_FOR_LABEL = {label: action for action, label in LABEL_ACTIONS.items()}


def when(t: float | None) -> str:
    """A trigger time as the owner reads it: 14:03:07 on Tue 24 Nov (the Pi's local time)."""
    if not isinstance(t, (int, float)):
        return "an unknown time"
    return time.strftime("%H:%M:%S on %a %d %b", time.localtime(t))


def alert_text(camera: str, t: float | None, area: float | None) -> str:
    """The one-line alert: where, when and how much of the frame moved."""
    text = f"Motion on {camera} at {when(t)}"
    if isinstance(area, (int, float)):
        text += f", {area * 100:.1f}% of the frame"
    return text


def _section(text: str, block_id: str | None = None) -> dict:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def _button(label: str, event_id: str, text: str, style: str | None = None) -> dict:
    button = {"type": "button", "action_id": ACTION_FOR_LABEL[label], "value": event_id,
              "text": {"type": "plain_text", "text": text}}
    if style:
        button["style"] = style
    return button


NO_SNAPSHOT = "No snapshot: it could not be stored (disk full) or retention deleted it."
MAX_SHOWN = 10        # events one message shows (a burst beyond it takes another message)


def _details(facts: dict, clip_shown: bool, has_snapshot: bool) -> str:
    """What is known about an event beyond its trigger: the verdict, how long it lasted, its clip."""
    parts = []
    verdict = facts.get("verifier")
    if facts.get("verified") is True and isinstance(verdict, dict):
        parts.append(f"Checked by {verdict.get('stage')}: {verdict.get('reason') or 'passed'}")
    start, end = facts.get("start_time", facts.get("time")), facts.get("end_time")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        parts.append(f"Lasted {duration(end - start)}")
    if clip_shown:
        seconds = facts.get("clip_s")
        parts.append(f"Clip ({seconds:.0f} s) in the thread" if isinstance(seconds, (int, float))
                     else "Clip in the thread")
    if not has_snapshot:
        parts.append(NO_SNAPSHOT)
    return " · ".join(parts)


def _labels(event_id: str, facts: dict) -> list[dict]:
    """Training mode: the two label buttons, or once labelled, who tagged it and a button to change it."""
    if not facts.get("training"):
        return []
    label = facts.get("label")
    if label in ("occupied", "unoccupied"):
        other = "unoccupied" if label == "occupied" else "occupied"
        return [{"type": "context", "elements": [{"type": "mrkdwn", "text":
                                                  f"Tagged *{label}* by <@{facts.get('labelled_by')}>"}]},
                # A new block_id per version, so Slack clients never confuse the old buttons with these.
                {"type": "actions", "block_id": f"relabel:{event_id}:{label}", "elements": [
                    _button(other, event_id, f"Change to {other}")]}]
    return [{"type": "actions", "block_id": f"label:{event_id}", "elements": [
        _button("occupied", event_id, "Occupied", "danger"),
        _button("unoccupied", event_id, "Unoccupied", "primary")]}]


def event_message(camera: str, shown: list[tuple[str, dict, dict]], images: bool = True) -> tuple[str, list[dict]]:
    """The one message of an event, or of a burst of events: (text, blocks).

    `shown`: (event id, facts, files) per event, oldest first; facts as in app/story.py, files
    {"snapshot": Slack file id or None (not uploaded yet), "clip": Slack file id or None,
    "stored": False when there is no snapshot to show}. Each event's section has the block_id
    "event:<id>". `images`: show the snapshot in the message
    (Slack refuses a file it has not finished processing: the thread still has it)."""
    blocks: list[dict] = []
    first = shown[0][1]
    cam = first.get("camera") or camera
    if len(shown) == 1:
        text = alert_text(cam, first.get("time"), first.get("area"))
        blocks.append(_section(f":rotating_light: {text}", f"event:{shown[0][0]}"))
    else:
        cams = sorted({f.get("camera") or camera for _, f, _ in shown})
        text = (f"{len(shown)} events on {', '.join(cams)} from {when(first.get('time'))} "
                f"to {when(shown[-1][1].get('time'))}")
        blocks.append(_section(f":rotating_light: *{len(shown)} events* on {', '.join(cams)}, "
                               f"from {when(first.get('time'))}"))
    picture = next((files["snapshot"] for _, _, files in shown if files.get("snapshot")), None)
    if images and picture:
        blocks.append({"type": "image", "slack_file": {"id": picture}, "alt_text": f"Snapshot: {text}"})
    for event_id, facts, files in shown:
        if len(shown) > 1:
            blocks.append(_section("• " + alert_text(facts.get("camera") or camera, facts.get("time"),
                                                     facts.get("area")), f"event:{event_id}"))
        details = _details(facts, bool(files.get("clip")), files.get("stored", True))
        if details:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": details}]})
        blocks += _labels(event_id, facts)
    return text, blocks


def tagged_blocks(text: str, event_id: str, label: str, user_id: str) -> list[dict]:
    """The alert after a click: the buttons become "Tagged <label> by @user" plus one button to change it."""
    other = "unoccupied" if label == "occupied" else "occupied"
    return [
        _section(f":rotating_light: {text}"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Tagged *{label}* by <@{user_id}>"}]},
        # A new block_id per version, so Slack clients never confuse the old buttons with these.
        {"type": "actions", "block_id": f"relabel:{event_id}:{label}", "elements": [
            _button(other, event_id, f"Change to {other}")]},
    ]


def ephemeral(text: str) -> dict:
    """A slash command's immediate answer, seen only by the person who typed it."""
    return {"response_type": "ephemeral", "text": text}
