"""A fake Slack Web API on loopback, plus helpers that sign requests and create events.

FakeSlack serves what pycam calls: files.getUploadURLExternal, the upload_url it hands out,
files.completeUploadExternal (into a channel or a message's thread), chat.postMessage, chat.update
(an image block naming a file Slack has not finished processing is refused with invalid_blocks, as
Slack does, for `file_ready_s` after its upload), and response_url endpoints (/response/<name>).
It records every call, and can be told to answer 429 with Retry-After, 500, an ok:false error,
or to hang, either for the next calls of one method (`plan`) or for everything (`outage`).
Used by the tests and by bench/slack_latency.py.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
CHANNEL = "C0PYCAMTEST"


@dataclass
class Call:
    """One request the fake received."""
    method: str                 # "chat.postMessage", "files.getUploadURLExternal", "upload", "response"...
    path: str
    params: dict
    body: bytes
    time: float                 # time.time() when it arrived
    status: int | None = None   # what the fake answered (None: it hung and never answered)
    ok: bool = False            # Slack would have accepted it


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    plan: dict[str, list[str]] = field(default_factory=dict)  # method -> behaviours for its next calls
    mode: str | None = None     # outage for every method: "500", "429:<s>", "hang", "error:<code>"
    hang_max_s: float = 30.0
    socket_url: str | None = None   # what apps.connections.open answers (tests/socket_fakes.py)
    file_ready_s: float = 0.0       # how long after its upload a file can be shown in an image block

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self._file_seq = 0
        self.names: dict[str, str] = {}       # file id -> filename, from files.getUploadURLExternal
        self.shared: list[dict] = []          # files shared into the channel (files.list answers from these)
        self.posted: list[dict] = []          # messages posted (conversations.history answers from these),
                                              # as they are now: {ts, text, blocks, updates, metadata}

    # ---------------------------------------------------------------- control
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def start(self) -> "FakeSlack":
        self.thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def outage(self, mode: str | None) -> None:
        """Make every call fail this way (None ends the outage and lets hung calls go)."""
        with self.lock:
            self.mode = mode
            if mode == "hang":
                self.release.clear()
            else:
                self.release.set()

    def fail_next(self, method: str, *behaviours: str) -> None:
        """The next calls of `method` behave like this, in turn (then normally)."""
        with self.lock:
            self.plan.setdefault(method, []).extend(behaviours)

    def accepted(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def message(self, ts: str) -> dict | None:
        """A posted message as it is now (after its updates)."""
        with self.lock:
            return next((dict(m) for m in self.posted if m["ts"] == ts), None)

    def in_thread(self, ts: str) -> list[dict]:
        """The files shared into a message's thread, in order."""
        with self.lock:
            return [dict(f) for f in self.shared if f.get("thread_ts") == ts]

    def attempts(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def _behaviour(self, method: str) -> str | None:
        with self.lock:
            queue = self.plan.get(method)
            if queue:
                return queue.pop(0)
            return self.mode

    def _next_file_id(self) -> str:
        with self.lock:
            self._file_seq += 1
            return f"F{self._file_seq:08d}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        fake: FakeSlack = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path.startswith("/api/"):
            method = path[len("/api/"):]
        elif path.startswith("/upload/"):
            method = "upload"
        elif path.startswith("/response/"):
            method = "response"
        else:
            method = path
        call = Call(method, path, _params(self.headers.get("Content-Type", ""), body), body, time.time())
        with fake.lock:
            fake.calls.append(call)
        behaviour = fake._behaviour(method)
        if behaviour == "lost":
            # Slack does the work, but its answer never arrives (the notifier is killed meanwhile,
            # or the network drops): the call counts as accepted, the client gets nothing.
            self._handle(fake, call, method, answer=False)
            fake.release.wait(fake.hang_max_s)
            self.close_connection = True
            return
        if behaviour == "hang":
            fake.release.wait(fake.hang_max_s)
            self.close_connection = True  # never answer: the client times out
            return
        if behaviour == "500":
            return self._send(call, 500, b"<html>Internal Server Error</html>", "text/html")
        if behaviour and behaviour.startswith("429"):
            retry_after = behaviour.partition(":")[2] or "1"
            return self._send(call, 429, b'{"ok":false,"error":"ratelimited"}', headers={"Retry-After": retry_after})
        if behaviour == "ok-but-empty":   # ok: true and nothing else, which the client does not expect
            return self._json(call, {"ok": True}, ok=False)
        if behaviour and behaviour.startswith("error:"):
            return self._json(call, {"ok": False, "error": behaviour.partition(":")[2]})
        return self._handle(fake, call, method)

    def _handle(self, fake: "FakeSlack", call: Call, method: str, answer: bool = True) -> None:
        """What Slack does for a call (and its answer, unless `answer` is False)."""
        if not answer:
            self._json = lambda call, data, ok=False: setattr(call, "ok", ok)   # record, do not send
            self._send = lambda call, status, payload, *a, ok=False, **k: setattr(call, "ok", ok)
        body = call.body
        if method == "response":
            return self._send(call, 200, b"ok", "text/plain", ok=True)
        if method == "upload":
            return self._send(call, 200, f"OK - {len(body)}".encode(), "text/plain", ok=True)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._json(call, {"ok": False, "error": "not_authed"})
        if auth != f"Bearer {TOKEN}" and method != "apps.connections.open":
            return self._json(call, {"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return self._json(call, {"ok": True, "user": "pycam", "team": "home", "user_id": "U0BOT"}, ok=True)
        if method == "conversations.info":
            return self._json(call, {"ok": True, "channel": {"id": call.params.get("channel"),
                                                             "is_member": call.params.get("channel") == CHANNEL}},
                              ok=True)
        if method == "apps.connections.open":   # Socket Mode: the app-level token gets a WebSocket URL
            if not auth.startswith("Bearer xapp-") or not fake.socket_url:
                return self._json(call, {"ok": False, "error": "invalid_auth"})
            return self._json(call, {"ok": True, "url": fake.socket_url}, ok=True)
        if method == "files.getUploadURLExternal":
            file_id = fake._next_file_id()
            with fake.lock:
                fake.names[file_id] = call.params.get("filename", "")
            return self._json(call, {"ok": True, "file_id": file_id,
                                     "upload_url": f"{fake.url}/upload/{file_id}"}, ok=True)
        if method == "files.completeUploadExternal":
            files = json.loads(call.params.get("files", "[]"))
            with fake.lock:
                fake.shared += [{"id": f["id"], "name": fake.names.get(f["id"]), "created": int(time.time()),
                                 "at": time.time(), "channel": call.params.get("channel_id"),
                                 "thread_ts": call.params.get("thread_ts")} for f in files]
            return self._json(call, {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]},
                              ok=True)
        if method == "chat.postMessage":
            if not call.params.get("channel"):
                return self._json(call, {"ok": False, "error": "channel_not_found"})
            message = {"ts": f"{time.time():.6f}", "text": call.params.get("text"),
                       "blocks": _blocks(call.params.get("blocks")), "updates": 0}
            metadata = call.params.get("metadata")
            if metadata:
                message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
            with fake.lock:
                fake.posted.append(message)
            return self._json(call, {"ok": True, "channel": call.params["channel"], "ts": message["ts"],
                                     "message": message}, ok=True)
        if method == "chat.update":
            with fake.lock:
                message = next((m for m in fake.posted if m["ts"] == call.params.get("ts")), None)
                blocks = _blocks(call.params.get("blocks"))
                shown = [b["slack_file"]["id"] for b in blocks if b.get("type") == "image" and "slack_file" in b]
                files = {f["id"]: f for f in fake.shared}
                if message is None:
                    return self._json(call, {"ok": False, "error": "message_not_found"})
                if any(f not in files or time.time() - files[f]["at"] < fake.file_ready_s for f in shown):
                    return self._json(call, {"ok": False, "error": "invalid_blocks",
                                             "errors": ["invalid slack file [json-pointer:/blocks/1/slack_file]"]})
                message.update(text=call.params.get("text"), blocks=blocks, updates=message["updates"] + 1)
            return self._json(call, {"ok": True, "channel": call.params.get("channel"), "ts": message["ts"]}, ok=True)
        if method == "conversations.history":
            oldest = float(call.params.get("oldest") or 0)
            with fake.lock:
                found = [m for m in fake.posted if float(m["ts"]) >= oldest]
            if call.params.get("include_all_metadata") not in ("true", "1", True):
                found = [{k: v for k, v in m.items() if k != "metadata"} for m in found]
            return self._json(call, {"ok": True, "messages": list(reversed(found))}, ok=True)
        if method == "files.list":
            since = int(call.params.get("ts_from") or 0)
            with fake.lock:
                found = [f for f in fake.shared if f["created"] >= since]
            return self._json(call, {"ok": True, "files": found}, ok=True)
        return self._json(call, {"ok": False, "error": "unknown_method"})

    def _json(self, call: Call, data: dict, ok: bool = False) -> None:
        self._send(call, 200, json.dumps(data).encode(), "application/json", ok=ok)

    def _send(self, call: Call, status: int, payload: bytes, ctype: str = "application/json",
              headers: dict | None = None, ok: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            return  # the client gave up
        call.status, call.ok = status, ok


def _blocks(value) -> list:
    """Blocks as sent (slack_sdk sends a list inside a JSON body, or a JSON string in a form)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def _params(content_type: str, body: bytes) -> dict:
    """Form or JSON bodies (slack_sdk sends chat.* as JSON and files.* as a form)."""
    if "application/json" in content_type:
        try:
            value = json.loads(body or b"{}")
            return value if isinstance(value, dict) else {}
        except ValueError:
            return {}
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    return {}


# -------------------------------------------------------------------- signed requests

def signed_headers(body: bytes | str, secret: str = SECRET, timestamp: float | None = None) -> dict:
    """The headers Slack would send with this body."""
    from slack_sdk.signature import SignatureVerifier
    ts = str(int(time.time() if timestamp is None else timestamp))
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}


def command_body(command: str, text: str = "", user_id: str = "U0OWNER", response_url: str = "",
                 user_name: str = "owner") -> str:
    """A slash command's form body, with the fields Slack sends."""
    return urlencode({"token": "deprecated", "team_id": "T0TEAM", "team_domain": "home",
                      "channel_id": CHANNEL, "channel_name": "pycam", "user_id": user_id,
                      "user_name": user_name, "command": command, "text": text,
                      "response_url": response_url, "trigger_id": _trigger_id(), "api_app_id": "A0APP"})


def _trigger_id() -> str:
    """Slack gives every interaction its own trigger_id, so no two real requests are alike."""
    return f"{time.time_ns()}.{next(_TRIGGERS)}.a1b2c3"


_TRIGGERS = itertools.count(1)


def click_body(event_id: str, action_id: str = "label_occupied", user_id: str = "U0OWNER",
               user_name: str = "alice", response_url: str = "", **overrides) -> str:
    """A block_actions form body for a click on an alert's button."""
    payload = {
        "type": "block_actions", "user": {"id": user_id, "username": user_name, "name": user_name,
                                          "team_id": "T0TEAM"},
        "api_app_id": "A0APP", "token": "deprecated", "trigger_id": _trigger_id(), "team": {"id": "T0TEAM"},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": CHANNEL, "is_ephemeral": False},
        "channel": {"id": CHANNEL, "name": "pycam"}, "message": {"ts": "1.000001", "text": "Motion"},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"label:{event_id}",
                     "value": event_id, "text": {"type": "plain_text", "text": "Occupied"},
                     "action_ts": "2.000002"}],
    }
    payload.update(overrides)
    return urlencode({"payload": json.dumps(payload)})


# -------------------------------------------------------------------- events on disk

def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A small real JPEG."""
    import cv2
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def make_event(data_dir: Path, r=None, t: float | None = None, area: float = 0.05,
               snapshot: bytes | None = None, camera: str = "pycam") -> dict:
    """Write an event the way the camera daemon does (files, then the events stream); returns its metadata."""
    from app import keys, utils
    from app.storage import events
    t = time.time() if t is None else t
    event_id = events.new_event_id(t)
    files = events.event_files(Path(data_dir), event_id)
    rel = lambda p: str(p.relative_to(data_dir))  # noqa: E731
    snap = snapshot if snapshot is not None else jpeg_bytes(seed=int(t) % 1000)
    utils.atomic_write_bytes(files["snapshot"], snap)
    utils.atomic_write_bytes(files["clean"], snap + b"clean")  # distinguishable from the snapshot
    meta = {"id": event_id, "camera": camera, "time": t, "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "start_time": t - 1, "area": area, "peak_area": area, "boxes": [[10, 10, 50, 80]],
            "frame_size": [320, 240], "snapshot": rel(files["snapshot"]), "clean": rel(files["clean"]),
            "verified": None, "notified": True}
    utils.atomic_write_json(files["meta"], meta)
    if r is not None:
        r.xadd(keys.EVENTS, {"event": json.dumps(meta)})
        r.set(keys.LATEST_IMAGE, json.dumps({"event_id": event_id, "path": meta["snapshot"], "time": t}))
    return meta


def alert_job(meta: dict, training: bool = False, t: float | None = None) -> dict:
    """The alert job the camera daemon queues for an event."""
    from app import outbox
    return outbox.make_job("alert", f"alert:{meta['id']}", event_id=meta["id"],
                           time=meta["time"] if t is None else t, area=meta["area"],
                           snapshot=meta["snapshot"], boxes=meta["boxes"], training=training)
