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

from app import health, state
from app.slack import dispatch
from app.slack.verify import first_use, parse_form, verified_body

log = logging.getLogger(__name__)
bp = Blueprint("slack", __name__)

def _ctx():
    return current_app.extensions["pycam"]


def _signed_form(ctx) -> dict[str, str]:
    """The form of a request Slack signed and that is not a replay of one already handled."""
    if ctx.verifier is None:   # Socket Mode only: nothing comes in over HTTP
        abort(404)
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
    try:
        return jsonify(dispatch.answer_command(ctx.r, ctx.settings, _signed_form(ctx)))
    except dispatch.NotUnderstood:
        abort(400)


@bp.post("/slack/interactive")
def interactive():
    """Button clicks (block_actions): label an event and rewrite its alert."""
    ctx = _ctx()
    form = _signed_form(ctx)
    try:
        reply = dispatch.answer_click(ctx.r, ctx.settings, json.loads(form.get("payload", "")))
    except (ValueError, RecursionError):   # not JSON, nested deep enough to exhaust the parser, not a click
        abort(400)
    return (jsonify(reply), 200) if reply else ("", 200)


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
