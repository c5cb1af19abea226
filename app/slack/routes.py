"""The Slack app's HTTP endpoints: /slack/commands, /slack/interactive and /healthz.

Every Slack request goes through the same order: size limit (413), signature and timestamp (401),
a replay of a signature already used (401), parsing of the verified bytes (400), then the allow-list
(a polite refusal), and only then acts.
"""
from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, abort, current_app, jsonify, request

from app import health, outbox, state
from app.slack import buttons, commands
from app.slack.messages import ephemeral
from app.slack.verify import first_use, parse_form, verified_body

log = logging.getLogger(__name__)
bp = Blueprint("slack", __name__)

NOT_ALLOWED = ("Sorry, you are not allowed to use pycam. Ask its owner to add your Slack user id "
               "({user}) to SLACK_ALLOWED_USERS.")
REDIS_DOWN_TEXT = "pycam cannot reach its Redis database right now; try again in a minute."


def _ctx():
    return current_app.extensions["pycam"]


def _allowed(user_id: str) -> bool:
    allowed = _ctx().settings.slack.allowed_users
    return not allowed or user_id in allowed


def _signed_form(ctx) -> dict[str, str]:
    """The form of a request Slack signed and that is not a replay of one already handled."""
    body = verified_body(request, ctx.verifier, ctx.settings.slack.max_body_bytes)
    try:
        fresh = first_use(ctx.r, request)
    except state.REDIS_DOWN:
        fresh = True   # cannot remember now; the handler answers that Redis is unreachable
    if not fresh:
        log.warning("Refused a replayed request to %s from %s (its signature was already used)",
                    request.path, request.remote_addr)
        abort(401)
    return parse_form(body)


@bp.post("/slack/commands")
def slash_command():
    """Every slash command, dispatched on its `command` field."""
    ctx = _ctx()
    form = _signed_form(ctx)
    command, user_id = form.get("command", ""), form.get("user_id", "")
    if not command.startswith("/") or not user_id:
        abort(400)
    if not _allowed(user_id):
        log.warning("Refused %s from %s: not on the allow-list", command, user_id)
        return jsonify(ephemeral(NOT_ALLOWED.format(user=user_id)))
    name, args = commands.resolve(command, form.get("text", ""))
    cmd = commands.Command(name=name, text=args, user_id=user_id, user_name=form.get("user_name", ""),
                           response_url=form.get("response_url", ""))
    log.info("%s %s from %s", command, name, user_id)
    try:
        return jsonify(commands.run(ctx.r, ctx.settings, cmd))
    except state.REDIS_DOWN as e:
        log.error("Redis unreachable while answering %s: %s", command, type(e).__name__)
        return jsonify(ephemeral(REDIS_DOWN_TEXT))


@bp.post("/slack/interactive")
def interactive():
    """Button clicks (block_actions): label an event and rewrite its alert."""
    ctx = _ctx()
    form = _signed_form(ctx)
    try:
        payload = json.loads(form.get("payload", ""))
    except (ValueError, RecursionError):   # not JSON, or nested deep enough to exhaust the parser
        abort(400)
    click = buttons.parse_label_click(payload)
    if click is None:
        log.warning("Refused an interactive payload that is not a known label click")
        abort(400)
    try:
        if not _allowed(click.user_id):
            log.warning("Refused a label click from %s: not on the allow-list", click.user_id)
            outbox.enqueue(ctx.r, outbox.make_job(
                "response", response_url=click.response_url, replace_original=False,
                response_type="ephemeral", text=NOT_ALLOWED.format(user=click.user_id)))
        else:
            buttons.label_event(ctx.r, ctx.settings, click)
    except state.REDIS_DOWN as e:
        log.error("Redis unreachable while labelling %s: %s", click.event_id, type(e).__name__)
        return jsonify(ephemeral(REDIS_DOWN_TEXT))
    return "", 200


@bp.get("/healthz")
def healthz():
    """For monitors: 200 when Redis answers, with the processes whose heartbeat is stale or missing."""
    ctx = _ctx()
    try:
        ctx.r.ping()
        beats = health.read_heartbeats(ctx.r)
    except state.REDIS_DOWN:
        return jsonify({"ok": False, "redis": False, "stale": []}), 503
    now = time.time()
    stale = [name for name in health.expected_processes(ctx.settings)
             if health.is_stale(beats.get(name), ctx.settings.heartbeat_ttl_s, now)]
    return jsonify({"ok": not stale, "redis": True, "stale": stale})
