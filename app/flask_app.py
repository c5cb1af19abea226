"""The Slack app and the web page: `create_app(settings)` builds the Flask app gunicorn serves
(see run_flask.py).

It answers Slack's HTTP requests from Redis within milliseconds, and never calls Slack's Web API
itself (the notifier does, from the outbox). With `web.enabled` it also serves the local web page
(app/web/pages.py), behind its own password.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from flask import Flask, jsonify
from slack_sdk.signature import SignatureVerifier
from werkzeug.exceptions import HTTPException

from app import health, state
from app.slack.routes import bp

log = logging.getLogger(__name__)
HEARTBEAT_NAME = "flask_app"


class MissingSecretError(RuntimeError):
    """SLACK_SIGNING_SECRET is not set: the app refuses to start rather than run unverified."""


@dataclass
class PycamExtension:
    """What the routes need, kept on app.extensions["pycam"]."""
    settings: object
    r: redis.Redis
    verifier: SignatureVerifier | None
    raw: redis.Redis | None = None          # keeps bytes: the live view's frames
    heartbeat: threading.Thread | None = field(default=None)


def create_app(settings, redis_client: redis.Redis | None = None) -> Flask:
    """The Flask app for these settings; raises MissingSecretError without a signing secret, unless
    Slack comes in over Socket Mode (SLACK_APP_TOKEN): then /slack/* answer 404 and /healthz stays."""
    secret = settings.slack.signing_secret.get_secret_value() if settings.slack.signing_secret else ""
    if not secret.strip() and not settings.slack.app_token and not settings.web.enabled:
        raise MissingSecretError(
            "SLACK_SIGNING_SECRET is not set: the Slack app will not start without it, because every "
            "request must be verified. Copy it from your Slack app's Basic Information page into .env.")
    app = Flask(__name__)
    app.debug = False
    # Werkzeug refuses larger bodies (also chunked ones) before any of our code reads them.
    app.config.update(MAX_CONTENT_LENGTH=settings.slack.max_body_bytes, PROPAGATE_EXCEPTIONS=False)
    r = redis_client or state.connect(settings.redis_url, HEARTBEAT_NAME, socket_timeout=2.0)
    verifier = SignatureVerifier(secret) if secret.strip() else None   # None: HTTP mode is off
    app.extensions["pycam"] = PycamExtension(settings=settings, r=r, verifier=verifier)
    app.register_blueprint(bp)
    if settings.web.enabled:
        from app.web import auth
        from app.web.pages import bp as web
        app.config.update(SECRET_KEY=auth.secret_key(settings.data_dir), SESSION_COOKIE_NAME="pycam_session",
                          SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                          PERMANENT_SESSION_LIFETIME=timedelta(days=settings.web.session_days))
        app.extensions["pycam"].raw = redis.Redis.from_url(settings.redis_url, socket_timeout=2.0,
                                                           socket_connect_timeout=2.0)
        app.register_blueprint(web)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        # A short plain answer, never a traceback or the request echoed back.
        return jsonify({"ok": False, "error": e.name}), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("Unexpected error")
        return jsonify({"ok": False, "error": "Internal Server Error"}), 500

    return app


def start_heartbeat(app: Flask) -> threading.Thread:
    """Write the `flask_app` heartbeat every heartbeat_s from a daemon thread (once per process).

    gunicorn's sync workers only run code when a request arrives, so the beat needs its own thread;
    gunicorn.conf starts it in post_worker_init, after the fork, in each worker (a thread started
    in the master would not survive the fork). Tests using the Flask test client never start it.
    """
    ext: PycamExtension = app.extensions["pycam"]
    if ext.heartbeat is not None and ext.heartbeat.is_alive():
        return ext.heartbeat
    settings = ext.settings

    def beat() -> None:
        while True:  # a daemon thread: it ends with its worker process
            try:
                health.write_heartbeat(ext.r, HEARTBEAT_NAME, "ok", None, ttl=settings.heartbeat_ttl_s)
            except state.REDIS_DOWN as e:
                log.warning("Heartbeat not written, Redis unreachable (%s)", type(e).__name__)
            time.sleep(settings.heartbeat_s)

    ext.heartbeat = threading.Thread(target=beat, name="heartbeat", daemon=True)
    ext.heartbeat.start()
    return ext.heartbeat
