"""A fake router web API on 127.0.0.1 for the presence tests and bench.

POST /login (form or JSON {username, password}) sets a `session` cookie and answers
{"data": {"token": ...}}; GET /api/devices answers {"data": {"devices": [...]}} to a valid session
cookie or `Authorization: Bearer <token>`. Tests change `devices`, expire sessions, make the next
answers fail, or slow everything down.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

USERNAME, PASSWORD = "admin", "correct horse battery staple"


class FakeRouter:
    def __init__(self, password: str = PASSWORD):
        self.password = password
        self.devices: list[dict] = []
        self.sessions: set[str] = set()
        self.expired_answer = "401"      # what an expired session gets: "401", "redirect" or "html"
        self.fail_next: list[int] = []   # statuses to answer the next device requests with
        self.delay_s = 0.0
        self.set_cookie = True           # False: the token header is the only way in
        self.keep_sessions = True        # False: every session expires at once (a broken router)
        self.logins = 0
        self.device_requests = 0
        self.login_bodies: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeRouter":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def set_devices(self, *macs: str, hostnames: dict[str, str] | None = None, offline: tuple = ()) -> None:
        """Connected devices by MAC, with optional hostnames; `offline` ones are listed as offline."""
        hostnames = hostnames or {}
        self.devices = [{"mac": m.upper(), "hostname": hostnames.get(m, ""), "online": True} for m in macs]
        self.devices += [{"mac": m.upper(), "hostname": "", "online": False} for m in offline]

    def _handler(self):
        router = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes = b"", ctype: str = "application/json", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _session(self) -> str | None:
                for part in (self.headers.get("Cookie") or "").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == "session":
                        return v
                auth = self.headers.get("Authorization") or ""
                return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

            def do_POST(self):
                if router.delay_s:
                    time.sleep(router.delay_s)
                if self.path != "/login":
                    return self._send(404)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    body = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                with router.lock:
                    router.logins += 1
                    router.login_bodies.append(body)
                if body.get("username") != USERNAME or body.get("password") != router.password:
                    return self._send(401, b'{"error": "wrong user name or password"}')
                token = secrets.token_hex(8)
                with router.lock:
                    if router.keep_sessions:
                        router.sessions.add(token)
                cookie = [("Set-Cookie", f"session={token}; Path=/; HttpOnly")] if router.set_cookie else []
                self._send(200, json.dumps({"data": {"token": token}}).encode(), headers=cookie)

            def do_GET(self):
                if router.delay_s:
                    time.sleep(router.delay_s)
                if self.path == "/login":
                    return self._send(200, b"<html><form>login</form></html>", "text/html")
                if self.path not in ("/api/devices", "/open/devices"):
                    return self._send(404)
                with router.lock:
                    router.device_requests += 1
                    fail = router.fail_next.pop(0) if router.fail_next else None
                    valid = self._session() in router.sessions
                if fail:
                    return self._send(fail, b'{"error": "internal"}')
                if self.path == "/api/devices" and not valid:
                    if router.expired_answer == "redirect":
                        return self._send(302, headers=[("Location", "/login")])
                    if router.expired_answer == "html":
                        return self._send(200, b"<html><form>login</form></html>", "text/html")
                    return self._send(401, b'{"error": "session expired"}')
                self._send(200, json.dumps({"data": {"devices": router.devices}}).encode())

        return Handler


def lan_helper(cfg_json: str) -> None:
    """Run inside a test network namespace: a LanProvider driven by lines on stdin.

    `poll` prints {"seen": [...], "error": ..., "learned": {...}}; `send IP` sends one UDP packet
    (the phone's own traffic would do the same); `quit` ends.
    """
    import socket
    import sys

    from config import LanProviderConfig   # the project is installed in the virtualenv
    from app.presence.providers import LanProvider, ProviderError
    cfg = json.loads(cfg_json)
    provider = LanProvider(LanProviderConfig.model_validate(cfg["provider"]), set(cfg["watch"]))
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "poll":
            try:
                seen, error = sorted(d.value for d in provider.poll()), None
            except ProviderError as e:
                seen, error = [], str(e)
            print(json.dumps({"seen": seen, "error": error, "learned": provider.learned}), flush=True)
        elif cmd == "bench":  # `bench N`: wall and CPU seconds (own + children) per poll
            import resource
            n = int(arg)
            c0, k0, w0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            for _ in range(n):
                provider.poll()
            w1, k1, c1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
            kids = (k1.ru_utime + k1.ru_stime) - (k0.ru_utime + k0.ru_stime)
            print(json.dumps({"wall": (w1 - w0) / n, "cpu": (c1 - c0 + kids) / n}), flush=True)
        elif cmd == "send":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"", (arg, 9))
            time.sleep(0.2)
            print("{}", flush=True)
        else:
            return


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "lan":
        lan_helper(sys.argv[2])
