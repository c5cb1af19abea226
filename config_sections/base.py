"""What every section shares: strict sections (config_sections/model.py), and the helpers that keep
secrets out of messages."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config_sections.model import Section

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CLIP = ROOT / "sample" / "one-by-one-person-detection.mp4"

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
SECRET_KEY = r"(?i)(pass(word|wd|phrase)?|secret|token|api_?key|cookie|credentials?)$"
SECRET_HIDDEN = "<hidden: secrets come only from the environment; name the variable with password_env>"


class ConfigError(Exception):
    """A setting is missing or out of range; the message names key, value and what is allowed."""


def plain_url(v: str) -> str:
    """Reject URLs that are not http(s) or that carry credentials (they would reach error messages)."""
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not hold a user name or password: use login with username_env / password_env")
    return v


def hide_secrets(tree: Any) -> Any:
    """Replace the value of secret-looking keys (password, token...) so no error message can show it."""
    if isinstance(tree, dict):
        return {k: (SECRET_HIDDEN if isinstance(k, str) and re.search(SECRET_KEY, k) else hide_secrets(v))
                for k, v in tree.items()}
    if isinstance(tree, list):
        return [hide_secrets(v) for v in tree]
    return tree
