"""A fake of Slack's Socket Mode on loopback: the WebSocket end that apps.connections.open hands out.

A minimal RFC 6455 server (handshake, text frames, ping/pong, close): it sends envelopes the way
Slack does (`slash_commands`, `interactive`, with an envelope_id) and records the acks the app
sends back. `drop()` closes the live connection, as Slack does every few hours, so a test can
check the app opens a new one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
APP_TOKEN = "xapp-1-test-app-token"


class FakeSocketMode:
    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conn: socket.socket | None = None
        self.connections = 0
        self.acks: list[dict] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test"

    # ------------------------------------------------------------ control
    def wait_connected(self, count: int = 1, timeout: float = 10) -> bool:
        return self._wait(lambda: self.connections >= count and self.conn is not None, timeout)

    def send(self, kind: str, payload: dict) -> str:
        """Send one envelope; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        message = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                   "accepts_response_payload": kind == "slash_commands", "retry_attempt": 0, "retry_reason": ""}
        with self.lock:
            conn = self.conn
        _send_frame(conn, 0x1, json.dumps(message).encode())
        return envelope_id

    def ack_for(self, envelope_id: str, timeout: float = 5) -> dict | None:
        found = []
        self._wait(lambda: found.extend(a for a in self.acks if a.get("envelope_id") == envelope_id) or found,
                   timeout)
        return found[0] if found else None

    def drop(self) -> None:
        """Close the live connection from the server side."""
        with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            try:
                _send_frame(conn, 0x8, struct.pack("!H", 1001))
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.drop()
        self.listener.close()

    def _wait(self, check, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check():
                return True
            time.sleep(0.02)
        return bool(check())

    # ------------------------------------------------------------ the server
    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        headers = dict(line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line)
        key = {k.lower(): v for k, v in headers.items()}["sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        with self.lock:
            self.conn = conn
            self.connections += 1
        _send_frame(conn, 0x1, json.dumps({"type": "hello", "num_connections": 1}).encode())
        try:
            while True:
                opcode, data = _read_frame(conn)
                if opcode == 0x1:
                    message = json.loads(data)
                    with self.lock:
                        self.acks.append(message)
                elif opcode == 0x9:
                    _send_frame(conn, 0xA, data)
                elif opcode == 0x8:
                    return
        except (OSError, ConnectionError, ValueError):
            return


def _send_frame(conn: socket.socket, opcode: int, data: bytes) -> None:
    head = bytes([0x80 | opcode])
    n = len(data)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    conn.sendall(head + data)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    b1, b2 = _recv_exact(conn, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(conn, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(conn, 8))[0]
    mask = _recv_exact(conn, 4) if b2 & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(_recv_exact(conn, n)))
    return b1 & 0x0F, data
