"""The web page's routes: log in, the events and one event (its snapshot and clip), the live view,
the switches (the Slack commands' own code) and the processes' health.

Every page but /login needs a session; every POST needs the session's CSRF token; files are
found only from a well-formed event id, never from a path in the request.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import date

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
STREAMS = threading.BoundedSemaphore(3)   # live streams at once: each holds one of gunicorn's 8 threads
STREAM_MAX_S = 3600


def _ctx():
    return current_app.extensions["pycam"]


@bp.before_request
def _guard():
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    if request.method == "POST" and not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")
                                                     or request.headers.get("X-CSRF-Token")):
        log.warning("Refused a POST to %s without its CSRF token from %s", request.path, request.remote_addr)
        abort(403)
    if request.endpoint not in OPEN and not session.get("in"):
        if request.path.endswith((".jpg", ".mjpg", ".mp4", ".gif")):
            abort(401)
        return redirect(url_for("web.login"))
    return None


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
        if auth.too_many_failures(ctx.r, address, ctx.settings.web.login_attempts):
            error, status = "Too many failed attempts: wait a few minutes.", 429
        elif stored and auth.check_password(request.form.get("password", ""), stored):
            session.clear()
            session.permanent = True
            session.update({"in": True, "csrf": secrets.token_urlsafe(32)})
            log.info("Web login from %s", address)
            return redirect(url_for("web.events_page"))
        else:
            auth.failed_login(ctx.r, address)
            log.warning("Failed web login from %s", address)
            error, status = "Wrong password.", 401
    return render_template("login.html", has_password=bool(stored), error=error), status


@bp.post("/logout")
def logout():
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
        if day:
            date.fromisoformat(day)
        if fate not in (None, *FATES) or (before and not all(part.isdigit() for part in before.split("-", 1))):
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
    # conditional: byte ranges, which browsers need to play a video
    return send_file(path, mimetype=mimetype, conditional=True, max_age=3600)


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
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/") and not back.startswith("//") else url_for("web.events_page"))


# ---------------------------------------------------------------- live view

@bp.get("/live")
def live_page():
    return render_template("live.html", fps=_ctx().settings.web.live_fps, **_header())


@bp.get("/live.jpg")
def live_frame():
    """The camera's frame now (asks for one and waits a moment when nobody was watching)."""
    ctx = _ctx()
    live.watch(ctx.r)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        got = live.latest(ctx.raw)
        if got is not None and time.time() - got[0] < 2:
            return Response(got[1], mimetype="image/jpeg", headers={"Cache-Control": "no-store",
                                                                   "X-Taken": f"{got[0]:.3f}"})
        time.sleep(0.05)
    abort(503)


@bp.get("/live.mjpg")
def live_stream():
    """MJPEG: a new part whenever the camera sends a frame; the camera sends only while this runs."""
    ctx = _ctx()
    if not STREAMS.acquire(blocking=False):
        abort(503)
    poll = 0.5 / ctx.settings.web.live_fps

    def frames():
        try:
            started, renew, last, fresh = time.monotonic(), 0.0, None, time.monotonic()
            while time.monotonic() - started < STREAM_MAX_S:
                if time.monotonic() >= renew:
                    live.watch(ctx.r)
                    renew = time.monotonic() + 1
                if time.monotonic() - fresh > 10:
                    return      # no frame for 10 s (the camera is gone): the page asks again later
                got = live.latest(ctx.raw)
                if got is not None and got[0] != last:
                    last, fresh = got[0], time.monotonic()
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nX-Taken: %.3f\r\nContent-Length: %d\r\n\r\n"
                           % (got[0], len(got[1])) + got[1] + b"\r\n")
                time.sleep(poll)
        finally:
            STREAMS.release()

    return Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
