"""pycam's settings: one typed object, loaded once per process and passed down.

Precedence, lowest first: the defaults below, the YAML file named by PYCAM_CONFIG (or
./pycam.yaml when present), then environment variables (a git-ignored `.env` in the repo root
fills in variables that are not already set). Secrets (tokens, passwords) are accepted only from
the environment or `.env`, never from the YAML file, so the config file can be shared safely.

A bad value stops the process at start with `ConfigError`, naming the key, the value and what is
allowed. Every setting is documented in setup.md.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ROOT = Path(__file__).resolve().parent
SAMPLE_CLIP = ROOT / "sample" / "one-by-one-person-detection.mp4"


class ConfigError(Exception):
    """A setting is missing or out of range; the message names key, value and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CameraConfig(Section):
    name: str = Field("pycam", pattern=r"^[A-Za-z0-9_-]{1,40}$",
                      description="Camera name, used in S3 keys and Slack messages.")
    source: str = Field(str(SAMPLE_CLIP), min_length=1, description=(
        "picamera2 | picamera | a USB device index (0) | an rtsp:// or http:// URL | a video file | "
        "an image sequence pattern such as input/in%06d.jpg."))
    width: int = Field(1280, ge=160, le=4056, description="Snapshot (main stream) width for Pi/USB cameras.")
    height: int = Field(720, ge=120, le=3040, description="Snapshot (main stream) height for Pi/USB cameras.")
    fps: float = Field(10.0, gt=0, le=60, description="Frame rate requested from Pi/USB cameras.")
    realtime: bool = Field(True, description="Play a file at its own frame rate (as a live camera would).")
    loop: bool = Field(True, description="Start a file again from the beginning when it ends (the demo).")
    reopen_max_s: float = Field(30.0, ge=1, le=3600, description="Longest wait between attempts to reopen a lost source.")


class MotionConfig(Section):
    width: int = Field(320, ge=80, le=1280, description="Working width in pixels; frames are scaled down to it.")
    blur: int = Field(5, ge=1, le=51, description="Gaussian blur kernel size (odd) applied before differencing.")
    learning_rate: float = Field(0.02, gt=0, le=1, description="Weight of each new frame in the running-average background.")
    threshold: int = Field(20, ge=1, le=255, description="Minimum grey-level difference from the background for a pixel to count.")
    noise_factor: float = Field(3.0, ge=0, le=20, description=(
        "Per-pixel threshold also grows with that pixel's own recent variability times this factor, "
        "so swaying trees and flicker do not count; 0 disables."))
    dilate: int = Field(2, ge=0, le=10, description="Dilation iterations that join the parts of one moving object.")
    min_area: float = Field(0.002, gt=0, le=1, description="Smallest moving blob that counts, as a fraction of the frame.")
    max_area: float = Field(0.6, gt=0, le=1, description=(
        "A change covering more than this fraction of the frame is a global lighting change, not motion."))
    lighting_ratio: float = Field(0.5, ge=0, le=1, description=(
        "A frame is a lighting change when at least this share of its changed pixels changed brightness "
        "the same way everywhere (gain correction fails to explain it otherwise)."))
    masks: list[list[tuple[float, float]]] = Field(default_factory=list, description=(
        "Ignore polygons, each a list of [x, y] points as fractions of the frame width and height."))

    @field_validator("blur")
    @classmethod
    def _odd_blur(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be an odd number")
        return v

    @field_validator("masks")
    @classmethod
    def _mask_points(cls, v):
        for poly in v:
            if len(poly) < 3:
                raise ValueError("each mask needs at least 3 points")
            for x, y in poly:
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    raise ValueError("mask points are fractions of the frame, between 0 and 1")
        return v


class TriggerConfig(Section):
    min_motion_frames: int = Field(3, ge=1, le=100, description="Consecutive-ish moving frames needed before an alert.")
    window_frames: int = Field(5, ge=1, le=300, description="Window in which min_motion_frames must be seen.")
    cooldown_s: float = Field(30.0, ge=0, le=86400, description="Least time between two alerts.")
    end_after_s: float = Field(5.0, ge=0.5, le=600, description="An event ends after this long without motion.")
    warmup_s: float = Field(2.0, ge=0, le=120, description="Background learning time after start, re-arm or a camera move, with no alerts.")


class EventsConfig(Section):
    retention_days: float = Field(30, gt=0, le=3650, description="Events older than this are deleted.")
    max_total_mb: float = Field(2000, gt=0, description="Oldest events are deleted while the events folder is larger than this.")
    jpeg_quality: int = Field(85, ge=30, le=100, description="Snapshot JPEG quality.")
    stream_maxlen: int = Field(10000, ge=100, description="Approximate cap on the Redis `events` stream.")


class PanTiltConfig(Section):
    enabled: Literal["auto", "on", "off"] = Field("auto", description="auto: use the HAT when one answers on I2C.")
    settle_s: float = Field(1.0, ge=0, le=10, description="Wait after a move before re-learning the background.")


class SlackConfig(Section):
    bot_token: SecretStr | None = Field(None, description="SLACK_BOT_TOKEN (xoxb-...); secret.")
    signing_secret: SecretStr | None = Field(None, description="SLACK_SIGNING_SECRET; secret.")
    channel_id: str | None = Field(None, pattern=r"^[A-Z0-9]{6,20}$", description="SLACK_CHANNEL_ID: channel ID (C...), not its name.")
    api_url: str = Field("https://slack.com/api/", pattern=r"^https?://", description="SLACK_API_URL; tests point it at a local fake.")
    allowed_users: list[str] = Field(default_factory=list, description="SLACK_ALLOWED_USERS: comma-separated user ids; empty allows the whole workspace.")
    max_body_bytes: int = Field(16384, ge=1024, le=1048576, description="Larger requests are refused with 413.")


class PersonConfig(Section):
    name: str = Field(..., min_length=1, max_length=40)
    devices: list[str] = Field(..., min_length=1, description="MAC addresses (or hostnames where allow_hostnames is on).")
    allow_hostnames: bool = False


class PresenceConfig(Section):
    poll_s: float = Field(30, ge=5, le=3600, description="Seconds between presence polls.")
    consider_home_s: float = Field(600, ge=0, le=86400, description="A person is away only after not being seen this long.")
    people: list[PersonConfig] = Field(default_factory=list)
    providers: list[dict[str, Any]] = Field(default_factory=list, description="Presence providers; see setup.md.")


class S3Config(Section):
    bucket: str | None = Field(None, description="S3_BUCKET; uploads are off while it is unset.")
    prefix: str = Field("pycam", description="S3_PREFIX: key prefix inside the bucket.")
    endpoint_url: str | None = Field(None, description="S3_ENDPOINT_URL for MinIO, B2, Wasabi...; unset for AWS.")
    region: str | None = Field(None, description="AWS_DEFAULT_REGION style region name.")
    interval_s: float = Field(300, ge=5, le=86400, description="S3_UPLOAD_INTERVAL: seconds between training-data passes.")
    upload_events: bool = Field(False, description="Also upload each event snapshot within seconds (off-site evidence).")
    delete_after_upload: bool = Field(False, description="Delete local training files once S3 has confirmed them.")


class VerifierConfig(Section):
    kind: list[Literal["none", "hog", "onnx", "trained"]] = Field(default_factory=lambda: ["none"], description=(
        "Verification stages run on each event before notifying, in order."))
    model_path: str | None = Field(None, description="ONNX detector file for the onnx stage.")
    input_size: int = Field(300, ge=32, le=1280)
    class_ids: list[int] = Field(default_factory=lambda: [1], description="Detector class ids that count (person).")
    score_threshold: float = Field(0.5, gt=0, lt=1)

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [s.strip() for s in v.split(",")] if isinstance(v, str) else v


class Settings(Section):
    redis_url: str = Field("redis://localhost:6379/0", pattern=r"^(redis|rediss|unix)://", description="REDIS_URL")
    data_dir: Path = Field(ROOT / "data", description="PYCAM_DATA_DIR: events/, training/, logs/.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    heartbeat_s: float = Field(5, ge=1, le=60, description="Seconds between heartbeats.")
    heartbeat_ttl_s: float = Field(30, ge=3, le=600, description="A heartbeat older than this is stale and expires.")
    camera: CameraConfig = Field(default_factory=CameraConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    pantilt: PanTiltConfig = Field(default_factory=PanTiltConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    s3: S3Config = Field(default_factory=S3Config)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)

    @property
    def events_dir(self) -> Path:
        return self.data_dir / "events"

    @property
    def training_dir(self) -> Path:
        return self.data_dir / "training"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


# Environment variables with a documented name, and the setting each one fills.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "REDIS_URL": ("redis_url",),
    "PYCAM_DATA_DIR": ("data_dir",),
    "PYCAM_LOG_LEVEL": ("log_level",),
    "PYCAM_SOURCE": ("camera", "source"),
    "PYCAM_CAMERA_NAME": ("camera", "name"),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_CHANNEL_ID": ("slack", "channel_id"),
    "SLACK_API_URL": ("slack", "api_url"),
    "SLACK_ALLOWED_USERS": ("slack", "allowed_users"),
    "S3_BUCKET": ("s3", "bucket"),
    "S3_PREFIX": ("s3", "prefix"),
    "S3_ENDPOINT_URL": ("s3", "endpoint_url"),
    "S3_UPLOAD_INTERVAL": ("s3", "interval_s"),
    "PYCAM_VERIFIER": ("verifier", "kind"),
}
# Settings that may only come from the environment (secrets).
SECRET_PATHS = {("slack", "bot_token"), ("slack", "signing_secret")}
LIST_FROM_CSV = {("slack", "allowed_users")}


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a simple KEY=VALUE .env file (comments, blank lines and optional quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


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


def _describe(err: dict, secret: bool) -> str:
    key = ".".join(str(p) for p in err["loc"])
    shown = "<hidden>" if secret else repr(err.get("input"))
    allowed = err["msg"]
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"expected {ctx['expected']}"
    return f"{key} = {shown}: {allowed}"


def load_settings(env: dict[str, str] | None = None, config_path: str | Path | None = None) -> Settings:
    """Build the Settings from defaults, the YAML file and the environment; raise ConfigError if bad."""
    environ = dict(read_dotenv(ROOT / ".env"))
    environ.update(os.environ if env is None else env)
    path = config_path or environ.get("PYCAM_CONFIG")
    if path is None and (ROOT / "pycam.yaml").is_file():
        path = ROOT / "pycam.yaml"
    tree: dict[str, Any] = {}
    if path:
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
        return Settings.model_validate(tree)
    except ValidationError as e:
        lines = [_describe(err, tuple(err["loc"][:2]) in SECRET_PATHS) for err in e.errors()]
        raise ConfigError("invalid setting: " + "; ".join(lines)) from None


def load_or_exit(env: dict[str, str] | None = None) -> Settings:
    """Load the settings for a daemon's __main__; print a one-line error and exit 2 when bad."""
    try:
        return load_settings(env)
    except ConfigError as e:
        raise SystemExit(f"pycam: {e}") from None
