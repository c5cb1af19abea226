"""The web page's routes: log in, the events and one event (its snapshot and clip), the live view,
the switches (the Slack commands' own code) and the processes' health.

For the home network only: a caller from outside it, or through a proxy, is refused. Every page
but /login needs a session; every POST needs the session's CSRF token; files are found only from a
well-formed event id, never from a path in the request, and are never cached by anyone else.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import threading
import time
from datetime import date
from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request, send_file,
                   session, url_for)

from app import health, keys, live, state
from app.slack import commands
from app.storage import events
from app.web import auth, listing

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__, template_folder="templates")

SWITCHES = {   # the buttons, each the Slack command of the same name
    "on": "Arm", "off": "Disarm", "notifications_on": "Notifications on", "notifications_off": "Notifications off",
    "auto_detect_on": "Auto mode on", "auto_detect_off": "Auto mode off",
    "training_on": "Training on", "training_off": "Training off"}
FLAGS = [("Armed", keys.CAMERA_STATUS, "on", "off"), ("Notifications", keys.CAMERA_NOTIFICATIONS, "notifications_on",
                                                      "notifications_off"),
         ("Auto mode", keys.AUTO_DETECT_STATUS, "auto_detect_on", "auto_detect_off"),
         ("Training", keys.TRAINING_MODE, "training_on", "training_off")]
FATES = ("sent", "held", "quiet", "off")
OPEN = {"web.login"}
STREAMS = threading.BoundedSemaphore(2)   # live streams at once: gunicorn's other threads stay for Slack
STREAM_MAX_S = 600                        # then the page asks again (a forgotten tab ends)
PROXIED = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP")
STREAM_ID = re.compile(r"[0-9]{1,15}-[0-9]{1,10}")
HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "frame-ancestors 'none'"}


def _ctx():
    return current_app.extensions["pycam"]


def _home_network(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


def _signed_in() -> bool:
    ctx = _ctx()
    return auth.session_ok(ctx.r, current_app.secret_key, auth.stored_password(ctx.settings.data_dir),
                           session.get("sid"))


@bp.before_request
def _guard():
    if any(h in request.headers for h in PROXIED) or not _home_network(request.remote_addr or ""):
        log.warning("Refused the web page to %s (%s)", request.remote_addr,
                    "through a proxy" if any(h in request.headers for h in PROXIED) else "not the home network")
        abort(403)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    if request.method == "POST" and not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")
                                                     or request.headers.get("X-CSRF-Token")):
        log.warning("Refused a POST to %s without its CSRF token from %s", request.path, request.remote_addr)
        abort(403)
    if request.endpoint not in OPEN and not _signed_in():
        if request.path.endswith((".jpg", ".mjpg", ".mp4", ".gif")):
            abort(401)
        return redirect(url_for("web.login"))
    return None


@bp.after_request
def _headers(response):
    response.headers.update(HEADERS)
    return response


def _redis_down(e):
    return Response("Redis is unreachable: try again shortly.", 503, mimetype="text/plain")


for _error in state.REDIS_DOWN:
    bp.register_error_handler(_error, _redis_down)


@bp.app_context_processor
def _common():
    return {"csrf": session.get("csrf", ""), "when": listing.when}


# ---------------------------------------------------------------- login

@bp.route("/login", methods=["GET", "POST"])
def login():
    ctx = _ctx()
    stored = auth.stored_password(ctx.settings.data_dir)
    error, status = None, 200
    if request.method == "POST":
        address = request.remote_addr or ""
        if not auth.attempt(ctx.r, address, ctx.settings.web.login_attempts):
            error, status = "Too many failed attempts: wait a few minutes.", 429
        elif stored and auth.check_password(request.form.get("password", ""), stored):
            auth.succeeded(ctx.r, address)
            auth.close_session(ctx.r, session.get("sid"))
            session.clear()                          # a new session, never one given before logging in
            session.permanent = True
            session.update(sid=auth.open_session(ctx.r, current_app.secret_key, stored,
                                                 ctx.settings.web.session_days),
                           csrf=secrets.token_urlsafe(32))
            log.info("Web login from %s", address)
            return redirect(url_for("web.events_page"))
        else:
            log.warning("Failed web login from %s", address)
            error, status = "Wrong password.", 401
    return render_template("login.html", has_password=bool(stored), error=error), status


@bp.post("/logout")
def logout():
    auth.close_session(_ctx().r, session.get("sid"))
    session.clear()
    return redirect(url_for("web.login"))


# ---------------------------------------------------------------- pages

def _header() -> dict:
    ctx = _ctx()
    try:
        raw = ctx.r.mget([key for _, key, _, _ in FLAGS])
        flags = [(label, state.decode_flag(key, value), on, off)
                 for (label, key, on, off), value in zip(FLAGS, raw)]
        report = health.process_health(ctx.r, ctx.settings)
    except state.REDIS_DOWN:
        flags, report = [], {}
    return {"flags": flags, "health": report, "notice": session.pop("notice", None), "switches": SWITCHES}


@bp.get("/")
def index():
    return redirect(url_for("web.events_page"))


@bp.get("/events")
def events_page():
    ctx = _ctx()
    day = request.args.get("day") or None
    fate = request.args.get("verdict") or None
    before = request.args.get("before") or None
    try:
        if day and not 2000 <= date.fromisoformat(day).year <= 2100:
            raise ValueError
        if fate not in (None, *FATES) or (before and not STREAM_ID.fullmatch(before)):
            raise ValueError
    except ValueError:
        abort(400)
    result = listing.page(ctx.r, ctx.settings.data_dir, ctx.settings.web.page_size, day, fate, before)
    return render_template("events.html", page=result, day=day or "", verdict=fate or "", fates=FATES,
                           **_header())


def _event_id(event_id: str) -> str:
    if not events.is_event_id(event_id):
        abort(404)
    return event_id


@bp.get("/events/<event_id>")
def event_page(event_id: str):
    ctx = _ctx()
    meta = events.EventStore(ctx.settings.data_dir, ctx.settings.events).load(_event_id(event_id))
    if meta is None:
        abort(404)
    files = events.event_files(ctx.settings.data_dir, event_id)
    clip = "mp4" if files["clip"].exists() else "gif" if files["clip_gif"].exists() else None
    start, end = meta.get("start_time", meta.get("time")), meta.get("end_time")
    duration = end - start if isinstance(end, (int, float)) and isinstance(start, (int, float)) else None
    return render_template("event.html", meta=meta, clip=clip, duration=duration, fate=events.fate(meta),
                           **_header())


@bp.get("/events/<event_id>/snapshot.jpg")
def snapshot(event_id: str):
    return _file(events.event_files(_ctx().settings.data_dir, _event_id(event_id))["snapshot"], "image/jpeg")


@bp.get("/events/<event_id>/clip.mp4")
def clip_mp4(event_id: str):
    return _file(events.event_files(_ctx().settings.data_dir, _event_id(event_id))["clip"], "video/mp4")


@bp.get("/events/<event_id>/clip.gif")
def clip_gif(event_id: str):
    return _file(events.event_files(_ctx().settings.data_dir, _event_id(event_id))["clip_gif"], "image/gif")


def _file(path, mimetype: str):
    if not path.is_file():
        abort(404)
    # conditional: byte ranges, which browsers need to play a video; kept by nobody (no proxy, no
    # shared cache, not the browser after logging out)
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/switch")
def switch():
    ctx = _ctx()
    name = request.form.get("name", "")
    if name not in SWITCHES:
        abort(400)
    cmd = commands.Command(name, "", "web", "the web page", "")
    try:
        answer = commands.HANDLERS[name](ctx.r, ctx.settings, cmd)
        session["notice"] = answer.get("text", "").replace("*", "")
    except state.REDIS_DOWN:
        session["notice"] = "Redis is unreachable: nothing changed."
    log.info("Web switch %s from %s", name, request.remote_addr)
    return redirect(_here(request.form.get("next", "")))


def _here(path: str) -> str:
    """`path` when it is a page of this site, else the events page (never another site)."""
    parts = urlsplit(path)
    if path.startswith("/") and not parts.scheme and not parts.netloc and path.isprintable() and "\\" not in path:
        return path
    return url_for("web.events_page")


# ---------------------------------------------------------------- live view

@bp.get("/live")
def live_page():
    ctx = _ctx()
    header = _header()
    armed = next((value for label, value, _, _ in header["flags"] if label == "Armed"), False)
    return render_template("live.html", fps=ctx.settings.web.live_fps,
                           closed=not armed and not ctx.settings.web.live_when_disarmed, **header)


@bp.get("/live.mjpg")
def live_stream():
    """MJPEG: each frame the camera publishes; the camera sends only while a stream runs."""
    ctx = _ctx()
    if not STREAMS.acquire(blocking=False):
        abort(503)
    released = threading.Event()

    def release():                       # once, however the response ends (HEAD never starts the body)
        if not released.is_set():
            released.set()
            STREAMS.release()

    try:
        live.watch(ctx.r)
        listener = live.Listener(ctx.raw)
    except BaseException:
        release()
        raise

    def frames():
        try:
            started = renew = fresh = time.monotonic()
            while time.monotonic() - started < STREAM_MAX_S and time.monotonic() - fresh < 10:
                if time.monotonic() >= renew:
                    live.watch(ctx.r)
                    renew = time.monotonic() + 1
                got = listener.next(timeout=1.0)
                if got is not None:
                    fresh = time.monotonic()
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nX-Taken: %.3f\r\nContent-Length: %d\r\n\r\n"
                           % (got[0], len(got[1])) + got[1] + b"\r\n")
            # No frame for 10 s (the camera is disarmed, or gone), or the time is up: the page asks again.
        finally:
            listener.close()
            release()

    response = Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame",
                        headers={"Cache-Control": "private, no-store", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: (listener.close(), release()))
    return response
