"""Who may use the web page: one password, stored hashed; sessions; CSRF; a login rate limit.

    <data dir>/web/password     scrypt$N$r$p$salt$hash (written by `pycam web-password`), mode 0600
    <data dir>/web/secret_key   signs the session cookie (made at first start), mode 0600

Without a password the page refuses everyone (even on loopback: a tunnel for Slack's HTTP mode
would make a loopback-only page public). Failed logins are counted per address in Redis
(`web:login:<address>`, 5 minutes).
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


def too_many_failures(r, address: str, allowed: int) -> bool:
    raw = r.get(login_key(address))
    return raw is not None and int(raw) >= allowed


def failed_login(r, address: str) -> None:
    with r.pipeline(transaction=True) as p:
        p.incr(login_key(address))
        p.expire(login_key(address), LOGIN_WINDOW_S)
        p.execute()


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected, given)
