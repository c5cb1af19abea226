"""Who may use the web page: one password, stored hashed; sessions; CSRF; a login rate limit.

    <data dir>/web/password     scrypt$N$r$p$salt$hash (written by `pycam web-password`), mode 0600
    <data dir>/web/secret_key   signs the session cookie (made at first start), mode 0600

Without a password the page refuses everyone (even on loopback: a tunnel for Slack's HTTP mode
would make a loopback-only page public). Login attempts are counted per address and in all in
Redis (`web:login:<address>`, 5 minutes). A session is a random id in a signed cookie and a key in
Redis (`web:session:<id>`) tied to the password: logging out deletes it, a new password ends all.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from app.utils import atomic_write_bytes

SCRYPT = (2 ** 14, 8, 1)     # about 16 MB and tens of milliseconds on a Pi: slow to guess, quick to check once
LOGIN_WINDOW_S = 300
LOGIN_ALL = "web:login:*all*"     # every address together: a tunnel or a botnet makes many addresses


def web_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "web"


def hash_password(password: str) -> str:
    n, r, p = SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """The password matches the stored hash (False for no hash, or a malformed one)."""
    try:
        kind, n, r, p, salt, digest = (stored or "").strip().split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(digest)), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(digest))


def set_password(data_dir: Path, password: str) -> None:
    _write_private(web_dir(data_dir) / "password", hash_password(password).encode())


def stored_password(data_dir: Path) -> str | None:
    try:
        return (web_dir(data_dir) / "password").read_text().strip() or None
    except OSError:
        return None


def secret_key(data_dir: Path) -> bytes:
    """The session signing key, made once."""
    path = web_dir(data_dir) / "secret_key"
    try:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= 32:
            return key
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    _write_private(path, key.hex().encode())
    return key


def _write_private(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def login_key(address: str) -> str:
    return "web:login:" + (address or "unknown")[:64]


def attempt(r, address: str, allowed: int) -> bool:
    """Count a login attempt from `address` (before the password is checked, so parallel tries
    count too); False when it is over the limit, for this address or for everyone together."""
    counts = []
    with r.pipeline(transaction=True) as p:
        for key in (login_key(address), LOGIN_ALL):
            p.incr(key)
            p.expire(key, LOGIN_WINDOW_S, nx=True)
        counts = p.execute()[::2]
    return counts[0] <= allowed and counts[1] <= allowed * 10


def succeeded(r, address: str) -> None:
    r.delete(login_key(address))


def session_key(sid: str) -> str:
    return "web:session:" + sid


def password_tag(secret: bytes, stored: str | None) -> str:
    """Ties a session to the password it was opened with: a new password ends every session."""
    return hmac.new(secret, (stored or "").encode(), hashlib.sha256).hexdigest()[:32]


def open_session(r, secret: bytes, stored: str, days: float) -> str:
    sid = secrets.token_urlsafe(24)
    r.set(session_key(sid), password_tag(secret, stored), ex=int(days * 86400))
    return sid


def session_ok(r, secret: bytes, stored: str | None, sid: object) -> bool:
    if not isinstance(sid, str) or not stored:
        return False
    tag = r.get(session_key(sid))
    return isinstance(tag, str) and hmac.compare_digest(tag, password_tag(secret, stored))


def close_session(r, sid: object) -> None:
    if isinstance(sid, str):
        r.delete(session_key(sid))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
