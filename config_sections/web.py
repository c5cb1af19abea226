"""The local web page: live view, events and their clips, the switches (app/web/)."""
from __future__ import annotations

from config_sections.base import Section
from config_sections.model import Field


class WebConfig(Section):
    enabled: bool = Field(False, description=(
        "PYCAM_WEB: serve the web page from the Slack app's gunicorn (port `web.port`). It listens on "
        "the LAN only once a password is set (`pycam web-password`), on loopback otherwise."))
    port: int = Field(8000, ge=1, le=65535, description="The port gunicorn listens on (the web page and Slack's HTTP endpoints).")
    url: str | None = Field(None, description=(
        "How a phone at home reaches the page (http://pycam.local:8000): /pycam_live links to it."))
    live_fps: float = Field(5.0, gt=0, le=15, description="Live view frames per second, while someone watches.")
    live_width: int = Field(640, ge=160, le=1920, description="Live view frame width in pixels.")
    live_when_disarmed: bool = Field(False, description=(
        "Let the live view (and /pycam_live) open the camera while it is disarmed, that is usually while "
        "people are home. Off: disarmed means the camera is not looking."))
    page_size: int = Field(50, ge=10, le=200, description="Events per page.")
    login_attempts: int = Field(5, ge=1, le=100, description="Failed logins allowed from one address per 5 minutes.")
    session_days: float = Field(30, gt=0, le=365, description="How long a login lasts.")
