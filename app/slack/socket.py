"""Slack in without a port: a Socket Mode connection the Pi opens to Slack (slack_sdk's own
SocketModeClient), which delivers slash commands and button clicks as envelopes.

    python3 app/slack_socket.py   (this module is app/slack/socket.py)

Each envelope is acknowledged within Slack's 3 s, with the command's answer as the ack's payload,
and dispatched to the same code as the HTTP endpoints (app/slack/dispatch.py, allow-list
included). slack_sdk opens a new connection when Slack drops one (every few hours, or on a
`disconnect` message) and its monitor replaces a connection whose pings go unanswered; this loop
also reconnects, with backoff, when no connection is up, and says so in its heartbeat. Nothing
here needs a signing secret: only Slack can hand out the connection, for the app-level token.
"""
from __future__ import annotations

import logging
import sys

from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from app import health, startup, utils
from app.backoff import Backoff
from app.slack import dispatch

log = logging.getLogger("slack_socket")
NAME = "slack_socket"
PING_S = 10.0          # ping Slack this often; a connection whose pongs stop is replaced


class SocketApp:
    """Answers envelopes from one Socket Mode connection, keeping it up."""

    def __init__(self, settings, r, stop, ping_interval: float = PING_S):
        self.settings = settings
        self.r = r
        self.stop = stop
        app_token = settings.slack.app_token.get_secret_value()
        bot = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else None
        self.client = SocketModeClient(
            app_token=app_token, web_client=WebClient(token=bot, base_url=settings.slack.api_url, timeout=10),
            auto_reconnect_enabled=True, ping_interval=ping_interval, logger=logging.getLogger("slack_sdk.socket"))
        self.client.socket_mode_request_listeners.append(self.on_request)
        self.handled = 0

    def on_request(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        """One envelope, acknowledged once: a command or a click is acted on and answered in its ack."""
        reply = None
        try:
            if req.type == "slash_commands":
                reply = dispatch.answer_command(self.r, self.settings, req.payload or {})
            elif req.type == "interactive":
                # Labelling takes milliseconds, well within Slack's 3 s; its answer (Redis down)
                # rides in the ack like a command's.
                reply = dispatch.answer_click(self.r, self.settings, req.payload)
        except dispatch.NotUnderstood as e:
            log.warning("Ignored a %s envelope: %s", req.type, e)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=reply))
        self.handled += 1

    def run(self, heartbeat_s: float, ttl: float) -> None:
        """Keep a connection up and the heartbeat fresh until stopped."""
        backoff = Backoff(1.0, 60.0)
        try:
            while not self.stop.is_set():
                if not self.client.is_connected():
                    try:
                        self.client.connect_to_new_endpoint()
                        backoff.reset()
                        log.info("Connected to Slack (Socket Mode)")
                    except Exception as e:   # network, refused token, Slack down: retry, never exit
                        log.warning("Cannot connect to Slack (%s); retrying in %.0f s",
                                    utils.redact(str(e))[:200], backoff.delay)
                        self._beat("reconnecting", ttl)
                        backoff.wait(self.stop)
                        continue
                self._beat("connected", ttl)
                self.stop.wait(heartbeat_s)
        finally:
            self.client.close()

    def _beat(self, status: str, ttl: float) -> None:
        health.try_heartbeat(self.r, NAME, status, {"handled": self.handled}, ttl=ttl)


def idle_disabled(settings, r, stop) -> None:
    """No app token: say so once and keep a heartbeat (state "disabled"): HTTP mode is in use."""
    log.warning("SLACK_APP_TOKEN is not set: Socket Mode is off (HTTP mode under gunicorn answers Slack)")
    health.idle(r, NAME, {"why": "SLACK_APP_TOKEN is not set"}, settings, stop)


def main() -> int:
    return serve(*startup.start(NAME))


def serve(settings, r, stop) -> int:
    """Answer Slack over Socket Mode until `stop` (idle without an app token)."""
    if not settings.slack.app_token:
        idle_disabled(settings, r, stop)
        return 0
    log.info("Socket Mode starting (API %s)", settings.slack.api_url)
    SocketApp(settings, r, stop).run(settings.heartbeat_s, settings.heartbeat_ttl_s)
    log.info("Socket Mode stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
