"""Block Kit builders for pycam's Slack messages (pure functions: data in, JSON-able dicts out)."""
from __future__ import annotations

import time

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


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, event_id: str, text: str, style: str | None = None) -> dict:
    button = {"type": "button", "action_id": ACTION_FOR_LABEL[label], "value": event_id,
              "text": {"type": "plain_text", "text": text}}
    if style:
        button["style"] = style
    return button


def alert_blocks(text: str, event_id: str, training: bool, note: str | None = None) -> list[dict]:
    """The alert message: its text, an optional note, and in training mode the two label buttons."""
    blocks = [_section(f":rotating_light: {text}")]
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    if training:
        blocks.append({"type": "actions", "block_id": f"label:{event_id}", "elements": [
            _button("occupied", event_id, "Occupied", "danger"),
            _button("unoccupied", event_id, "Unoccupied", "primary"),
        ]})
    return blocks


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
