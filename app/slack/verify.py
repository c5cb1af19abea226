"""Checks every Slack request passes before anything reads it: size, then signature, then parsing.

Slack signs each request with the app's signing secret: HMAC-SHA256 over `v0:<timestamp>:<raw
body>`, sent as X-Slack-Signature beside X-Slack-Request-Timestamp. slack_sdk's SignatureVerifier
compares in constant time and refuses timestamps more than 5 minutes away (replays).
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

from flask import Request, abort

from app import keys

REPLAY_WINDOW_S = 360   # Slack refuses timestamps more than 5 minutes old; a minute to spare
from slack_sdk.signature import SignatureVerifier
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger(__name__)


def is_signed(verifier: SignatureVerifier, body: bytes, headers) -> bool:
    """True when the body carries a valid, fresh Slack signature."""
    try:
        return verifier.is_valid_request(body, dict(headers))
    except (ValueError, TypeError):
        # A non-numeric timestamp or a body that is not UTF-8: not something Slack signed.
        return False


def verified_body(request: Request, verifier: SignatureVerifier, max_bytes: int) -> bytes:
    """The raw body of a request Slack really sent; aborts with 413 (too big) or 401 (not signed).

    The raw bytes are read first: once Flask has parsed `request.form` the stream is consumed and
    the signature could not be checked (REFERENCE.md 1b). Callers parse these same bytes, so what
    is acted on is exactly what was signed.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        abort(413)
    if request.content_length is None:
        # Chunked: read one byte past the limit from the server's own stream, so a body that is
        # too long is refused (413), not cut at the limit and then found unsigned.
        body = request.environ["wsgi.input"].read(max_bytes + 1)
    else:
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            abort(413)
    if len(body) > max_bytes:
        abort(413)
    if not is_signed(verifier, body, request.headers):
        log.warning("Refused a request to %s from %s: missing, wrong or stale Slack signature",
                    request.path, request.remote_addr)
        abort(401)
    return body


def first_use(r, request) -> bool:
    """True the first time a signature is seen: a signed request replayed within Slack's 5-minute
    window is refused (the signature is remembered for 6 minutes)."""
    signature = request.headers.get("X-Slack-Signature", "")
    return bool(r.set(keys.slack_seen(signature), 1, nx=True, ex=REPLAY_WINDOW_S))


def parse_form(body: bytes) -> dict[str, str]:
    """The form fields of a verified body (first value of each); aborts 400 when it is not a form."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except ValueError:  # not UTF-8, or too many fields
        abort(400)
    return {name: values[0] for name, values in fields.items()}
