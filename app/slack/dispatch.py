"""From a Slack request that is already trusted to what pycam does: the same code whether it came
over HTTP (routes.py, after the signature check) or over Socket Mode (socket.py).

The allow-list is applied here, so it holds for both ways in.
"""
from __future__ import annotations

import logging

from app import outbox, state
from app.slack import buttons, commands
from app.slack.messages import ephemeral

log = logging.getLogger(__name__)

NOT_ALLOWED = ("Sorry, you are not allowed to use pycam. Ask its owner to add your Slack user id "
               "({user}) to SLACK_ALLOWED_USERS.")
REDIS_DOWN_TEXT = "pycam cannot reach its Redis database right now; try again in a minute."


class NotUnderstood(ValueError):
    """The request is not a slash command or a label click pycam knows (answer 400, or ignore)."""


def allowed(settings, user_id: str) -> bool:
    allowed_users = settings.slack.allowed_users
    return not allowed_users or user_id in allowed_users


def answer_command(r, settings, form: dict) -> dict:
    """The immediate answer to a slash command (its form fields, as Slack sends them)."""
    command, user_id = str(form.get("command", "")), str(form.get("user_id", ""))
    if not command.startswith("/") or not user_id:
        raise NotUnderstood("not a slash command")
    if not allowed(settings, user_id):
        log.warning("Refused %s from %s: not on the allow-list", command, user_id)
        return ephemeral(NOT_ALLOWED.format(user=user_id))
    name, args = commands.resolve(command, str(form.get("text", "")))
    cmd = commands.Command(name=name, text=args, user_id=user_id, user_name=str(form.get("user_name", "")),
                           response_url=str(form.get("response_url", "")))
    log.info("%s %s from %s", command, name, user_id)
    try:
        return commands.run(r, settings, cmd)
    except state.REDIS_DOWN as e:
        log.error("Redis unreachable while answering %s: %s", command, type(e).__name__)
        return ephemeral(REDIS_DOWN_TEXT)


def answer_click(r, settings, payload: object) -> dict | None:
    """Act on an Occupied / Unoccupied click (a block_actions payload); the reply, if any, is a
    message for the person who clicked (the alert itself is rewritten through the outbox)."""
    click = buttons.parse_label_click(payload)
    if click is None:
        log.warning("Refused an interactive payload that is not a known label click")
        raise NotUnderstood("not a label click")
    try:
        if not allowed(settings, click.user_id):
            log.warning("Refused a label click from %s: not on the allow-list", click.user_id)
            outbox.enqueue(r, outbox.make_job(
                "response", response_url=click.response_url, replace_original=False,
                response_type="ephemeral", text=NOT_ALLOWED.format(user=click.user_id)))
        else:
            buttons.label_event(r, settings, click)
    except state.REDIS_DOWN as e:
        log.error("Redis unreachable while labelling %s: %s", click.event_id, type(e).__name__)
        return ephemeral(REDIS_DOWN_TEXT)
    return None
