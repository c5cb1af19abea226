"""pycam's settings: one typed object, loaded once per process and passed down.

Precedence, lowest first: the defaults (the section models in config_sections/), the YAML file
named by PYCAM_CONFIG (or ./pycam.yaml when present), then environment variables (a git-ignored
`.env` in the repo root, or the file PYCAM_ENV_FILE names, fills in variables that are not already
set). Secrets (tokens, passwords) are accepted only from the environment or `.env`, never from the
YAML file, so the config file can be shared safely. `load_settings(env=...)` reads only what it is
given (no `.env`, no ./pycam.yaml): tests and tools stay hermetic.

A bad value stops the process at start with `ConfigError`, naming the key, the value and what is
allowed. Every setting is documented in docs/settings.md. Nothing here imports from `app`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from config_sections.alerts import AlertsConfig
from config_sections.base import ROOT, SAMPLE_CLIP, SECRET_HIDDEN, SECRET_KEY, ConfigError, Section
from config_sections.camera import (CameraConfig, ClipsConfig, EventsConfig, MotionConfig, PanTiltConfig, TriggerConfig,
                                    VerifierConfig)
from config_sections.presence import (CommandProviderConfig, LanProviderConfig, PersonConfig, PresenceConfig,
                                      ProviderConfig, RouterLoginConfig, RouterProviderConfig)
from config_sections.model import Field, Invalid, field_validator
from config_sections.schedule import ScheduleConfig
from config_sections.services import S3Config, SlackConfig
from config_sections.web import WebConfig

__all__ = ["ROOT", "SAMPLE_CLIP", "ConfigError", "Section", "Settings", "AlertsConfig", "ScheduleConfig", "CameraConfig", "MotionConfig",
           "TriggerConfig", "EventsConfig", "ClipsConfig", "PanTiltConfig", "VerifierConfig", "SlackConfig", "S3Config", "WebConfig",
           "PresenceConfig", "PersonConfig", "ProviderConfig", "RouterLoginConfig", "RouterProviderConfig",
           "LanProviderConfig", "CommandProviderConfig", "load_settings", "load_or_exit", "read_dotenv", "environment",
           "settings_table", "ENV_NAMES"]


class Settings(Section):
    redis_url: str = Field("redis://localhost:6379/0", pattern=r"^(redis|rediss|unix)://", description="REDIS_URL")
    data_dir: Path = Field(ROOT / "data", description="PYCAM_DATA_DIR: events/, training/, logs/.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    layout: Literal["standard", "compact", "separate"] = Field("standard", description=(
        "PYCAM_LAYOUT: the processes `scripts/pycam` and systemd run. standard: the camera daemon, "
        "one process for Slack, presence and S3 (app/services.py), glances. compact (a Zero 2 W): "
        "the same without glances. separate: one process per service, glances. gunicorn runs in each only in HTTP mode (docs/running.md)."))
    role: Literal["hub", "camera"] = Field("hub", description=(
        "PYCAM_ROLE: hub: this Pi runs everything (a single Pi, or the Pi with Redis that talks to Slack). "
        "camera: a camera Pi on the hub's Redis (REDIS_URL): it runs its camera daemons and a notifier that "
        "sends their images to Slack from here, so images never cross the LAN (docs/running.md)."))
    cameras: list[str] = Field(default_factory=list, description=(
        "PYCAM_CAMERAS: the cameras this Pi runs, by name (comma-separated); each reads .env.<name> over "
        ".env (its PYCAM_SOURCE...). Empty: one camera, camera.name."))
    heartbeat_s: float = Field(5, ge=1, le=60, description="Seconds between heartbeats.")
    heartbeat_ttl_s: float = Field(30, ge=3, le=600, description="A heartbeat older than this is stale and expires.")
    camera: CameraConfig = Field(default_factory=CameraConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    clips: ClipsConfig = Field(default_factory=ClipsConfig)
    pantilt: PanTiltConfig = Field(default_factory=PanTiltConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    s3: S3Config = Field(default_factory=S3Config)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not CAMERA_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a camera name (1 to 40 letters, digits, - or _)")
        if len(set(names)) != len(names):
            raise ValueError("a camera is named twice")
        return names

    @property
    def camera_names(self) -> list[str]:
        """The cameras this Pi runs (systemd units, glances' counts, a camera Pi's outboxes)."""
        return self.cameras or [self.camera.name]

    # events/ and training/ belong to app/storage (events.py and labels.py own their layout).
    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def serves_http(self) -> bool:
        """gunicorn runs: Slack posts to it (HTTP mode), or the web page is on."""
        return bool(self.slack.signing_secret) or self.web.enabled


CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")

# Environment variables with a documented name, and the setting each one fills.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "REDIS_URL": ("redis_url",),
    "PYCAM_DATA_DIR": ("data_dir",),
    "PYCAM_LOG_LEVEL": ("log_level",),
    "PYCAM_LAYOUT": ("layout",),
    "PYCAM_SOURCE": ("camera", "source"),
    "PYCAM_CLIPS": ("clips", "enabled"),
    "PYCAM_WEB": ("web", "enabled"),
    "PYCAM_CAMERA_NAME": ("camera", "name"),
    "PYCAM_ROLE": ("role",),
    "PYCAM_CAMERAS": ("cameras",),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_CHANNEL_ID": ("slack", "channel_id"),
    "SLACK_API_URL": ("slack", "api_url"),
    "SLACK_ALLOWED_USERS": ("slack", "allowed_users"),
    "S3_BUCKET": ("s3", "bucket"),
    "S3_PREFIX": ("s3", "prefix"),
    "S3_ENDPOINT_URL": ("s3", "endpoint_url"),
    "S3_UPLOAD_INTERVAL": ("s3", "interval_s"),
    "S3_REGION": ("s3", "region"),
    "S3_UPLOAD_EVENTS": ("s3", "upload_events"),
    "S3_DELETE_AFTER_UPLOAD": ("s3", "delete_after_upload"),
    "PYCAM_VERIFIER": ("verifier", "kind"),
}
# Settings that may only come from the environment (secrets).
SECRET_PATHS = {("slack", "bot_token"), ("slack", "signing_secret"), ("slack", "app_token")}
LIST_FROM_CSV = {("slack", "allowed_users"), ("cameras",)}


def read_dotenv(path: Path) -> dict[str, str]:
    """The KEY=VALUE pairs of a .env file, by python-dotenv (comments, quotes, `export`); an absent
    or unreadable file (a service account without access) gives nothing."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only where a .env exists: 2 MB a process otherwise
    try:
        with open(path, encoding="utf-8") as f:
            values = dotenv_values(stream=f)
    except (OSError, UnicodeDecodeError):
        return {}
    return {k: v for k, v in values.items() if v is not None}


def environment() -> dict[str, str]:
    """The process environment over the .env file (PYCAM_ENV_FILE names another; empty: none).

    Secrets a setting only names (a router's password_env) are looked up here too.
    """
    env_file = _env_file()
    if env_file is None:
        return dict(os.environ)
    values = read_dotenv(env_file)
    # One of several cameras on this Pi (PYCAM_CAMERA_NAME): its own .env.<name> over .env.
    values.update(camera_dotenv(os.environ.get("PYCAM_CAMERA_NAME") or values.get("PYCAM_CAMERA_NAME") or ""))
    return {**values, **os.environ}


def _env_file() -> Path | None:
    named = os.environ.get("PYCAM_ENV_FILE")
    return ROOT / ".env" if named is None else (Path(named) if named else None)


def camera_dotenv(camera: str) -> dict[str, str]:
    """The variables of one camera's own file beside .env (.env.<name>: its source, whatever
    differs from the Pi's other cameras); nothing for a name that is not a camera name."""
    env_file = _env_file()
    if env_file is None or not CAMERA_NAME.fullmatch(camera or ""):
        return {}
    return read_dotenv(env_file.with_name(f"{env_file.name}.{camera}"))


def _set_path(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def _get_path(tree: dict, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _describe(loc: tuple, value: Any, allowed: str) -> str:
    """`key = value: what is allowed`, never showing a secret: a secret setting's value, the value of
    a key that looks like one (password, token...), or the user:password part of a URL."""
    looks_secret = any(isinstance(p, str) and re.search(SECRET_KEY, p) for p in loc)
    shown = "<hidden>" if tuple(loc[:2]) in SECRET_PATHS else SECRET_HIDDEN if looks_secret else re.sub(r"(://)[^/@\s'\"]*@", r"\1<hidden>@", repr(value))
    return f"{'.'.join(str(p) for p in loc)} = {shown}: {allowed}"


def load_settings(env: dict[str, str] | None = None, config_path: str | Path | None = None) -> Settings:
    """Build the Settings from defaults, the YAML file and the environment; raise ConfigError if bad.

    With `env` given, only `env` and `config_path` are read: never the repo's `.env` or pycam.yaml.
    Otherwise the process environment, over the `.env` file; PYCAM_CONFIG names the YAML file
    (empty: none), and ./pycam.yaml is used when it is unset.
    """
    if env is None:
        environ, default_yaml = environment(), ROOT / "pycam.yaml"
    else:
        environ, default_yaml = dict(env), None
    path = config_path or environ.get("PYCAM_CONFIG")
    if path is None and default_yaml is not None and default_yaml.is_file():
        path = default_yaml
    tree: dict[str, Any] = {}
    if path:
        import yaml  # only where a settings file is read
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as e:
            raise ConfigError(f"PYCAM_CONFIG = {str(path)!r}: cannot read the file ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"PYCAM_CONFIG = {str(path)!r}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"PYCAM_CONFIG = {str(path)!r}: the file must hold a mapping of settings")
        tree = loaded
        for secret in SECRET_PATHS:
            if _get_path(tree, secret) is not None:
                raise ConfigError(f"{'.'.join(secret)} is a secret: set it in the environment or .env, "
                                  "not in the YAML file")
    for name, target in ENV_NAMES.items():
        if environ.get(name, "") != "":
            value: Any = environ[name]
            if target in LIST_FROM_CSV:
                value = [v.strip() for v in value.split(",") if v.strip()]
            _set_path(tree, target, value)
    try:
        settings = Settings.model_validate(tree)
    except Invalid as e:
        raise ConfigError("invalid setting: " + "; ".join(_describe(*err) for err in e.errors)) from None
    if settings.role == "camera" and len(settings.camera_names) > 1:
        # Its notifier reaches Redis as that one camera's user, which may use no other camera's outbox.
        raise ConfigError(f"cameras = {settings.cameras!r}: a camera Pi (role: camera) runs one camera; "
                          "run the others on the hub or on a Pi each")
    return settings


def load_or_exit(env: dict[str, str] | None = None) -> Settings:
    """Load the settings for a daemon's __main__; print a one-line error and exit 2 when bad.

    The .env file's variables also join this process's environment (without overriding it), so
    libraries that read the environment themselves (boto3's AWS_*) see them however the process
    was started: by hand, under nohup or under systemd.
    """
    if env is None:
        for name, value in environment().items():
            os.environ.setdefault(name, value)
    try:
        return load_settings(env)
    except ConfigError as e:
        raise SystemExit(f"pycam: {e}") from None


def settings_table() -> str:
    """Markdown table of every setting with its environment variable and default (for docs/settings.md)."""
    env_of = {path: name for name, path in ENV_NAMES.items()}
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[Section], prefix: tuple[str, ...]):
        for name, field in model.model_fields.items():
            path = prefix + (name,)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, Section):
                walk(ann, path)
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, Path):
                default = str(default).replace(str(ROOT), ".")
            shown = "" if default is None else f"`{default}`".replace(str(ROOT), ".")
            desc = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{'.'.join(path)}` | {('`' + env_of[path] + '`') if path in env_of else ''} "
                        f"| {shown} | {desc} |")

    walk(Settings, ())
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
