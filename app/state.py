"""Redis connection and the small typed accessors every process shares.

All values are JSON. Connections time out, retry with backoff and check their health, so a
Redis restart shows up as a ConnectionError that callers ride out (see `wait_for_redis`).
"""
from __future__ import annotations

import json
import logging
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from app import keys
from app.backoff import Backoff

log = logging.getLogger(__name__)

# Errors that mean "Redis is unreachable right now": retry later, never crash on them.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# Redis answered, and refused this client: a wrong user or password in REDIS_URL, or an ACL user
# without the right to a command or key (app/access.py). Not passing: the owner must fix it.
REFUSED = (redis.AuthenticationError, redis.exceptions.NoPermissionError)


def connect(url: str, client_name: str, socket_timeout: float = 5.0,
            connect_timeout: float = 3.0, retries: int = 3) -> redis.Redis:
    """A client for a long-running daemon: timeouts, keepalive, health checks, retry with backoff.

    The camera loop passes short timeouts and few retries: it must never stall on Redis.
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        socket_keepalive=True,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=2, base=0.1), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        client_name=client_name,
    )


def wait_for_redis(r: redis.Redis, stop, max_wait: float = 30.0) -> bool:
    """Ping until Redis answers, backing off 0.5 s doubling to max_wait; False if stop was set."""
    backoff = Backoff(0.5, max_wait)
    while not stop.is_set():
        try:
            r.ping()
            return True
        except REDIS_DOWN as e:
            log.warning("Redis unreachable (%s); retrying in %.1f s", type(e).__name__, backoff.delay)
            if backoff.wait(stop):
                return False
    return False


def decode_json(raw: str | None, default: Any = None) -> Any:
    """A JSON value as read from Redis; missing or corrupt gives `default`."""
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return default


def get_json(r: redis.Redis, key: str, default: Any = None) -> Any:
    """Read a JSON value; a missing or corrupt value gives `default`."""
    raw = r.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        log.warning("Ignoring a non-JSON value at %s", key)
        return default


def set_json(r: redis.Redis, key: str, value: Any, ex: float | None = None) -> None:
    """Write a JSON value, optionally with a TTL in seconds."""
    r.set(key, json.dumps(value), ex=int(ex) if ex else None)


def decode_flag(key: str, raw: str | None) -> bool:
    """The one reading of a flag's stored value: JSON true (or 1, "true") is on; unset or unreadable
    values take their default from keys.FLAG_DEFAULTS."""
    default = keys.FLAG_DEFAULTS.get(key, False)
    if raw is None:
        return default
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        log.warning("Ignoring a non-JSON value at %s", key)
        return default
    return value is True or value in ("true", "True", 1)


def get_flag(r: redis.Redis, key: str) -> bool:
    """A boolean flag (see decode_flag)."""
    return decode_flag(key, r.get(key))


def set_flag(r: redis.Redis, key: str, value: bool) -> None:
    """Set a boolean flag."""
    set_json(r, key, bool(value))


def init_flags(r: redis.Redis) -> None:
    """Give every flag its default where it has never been set (never overwrites)."""
    for key, value in keys.FLAG_DEFAULTS.items():
        r.set(key, json.dumps(value), nx=True)
