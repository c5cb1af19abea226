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
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, Literal, Union

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
    noise_factor: float = Field(4.0, ge=0, le=20, description=(
        "Per-pixel threshold also grows with that pixel's own recent variability times this factor, "
        "so swaying trees and flicker do not count; 0 disables."))
    dilate: int = Field(2, ge=0, le=10, description="Dilation iterations that join the parts of one moving object.")
    min_area: float = Field(0.001, gt=0, le=1, description="Smallest moving blob that counts, as a fraction of the frame.")
    max_area: float = Field(0.6, gt=0, le=1, description=(
        "A change covering more than this fraction of the frame is a global lighting change, not motion."))
    lighting_ratio: float = Field(0.5, ge=0, le=1, description=(
        "A frame is a lighting change when at least this share of its changed pixels changed brightness "
        "the same way everywhere (gain correction fails to explain it otherwise)."))
    absorb_s: float = Field(1.5, ge=0.1, le=3600, description=(
        "Foreground that stays unchanged this many seconds joins the background (a parked object, "
        "the ghost a person leaves where they stood), ending its event."))
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
    cooldown_s: float = Field(5.0, ge=0, le=86400, description="Least time between two alerts.")
    end_after_s: float = Field(1.5, ge=0.5, le=600, description="An event ends after this long without motion.")
    warmup_s: float = Field(3.0, ge=0, le=120, description="Background learning time after start, re-arm or a camera move, with no alerts.")


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


# --- presence (issue 4): people, and the providers that see their devices -------------------------

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_SECRET_KEY = r"(?i)(pass(word|wd|phrase)?|secret|token|api_?key|cookie|credentials?)$"
_PROVIDER_NAME = r"^[A-Za-z0-9_-]{1,40}$"


def _plain_url(v: str) -> str:
    """Reject URLs that are not http(s) or that carry credentials (they would reach error messages)."""
    from urllib.parse import urlsplit
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not hold a user name or password: use login with username_env / password_env")
    return v


def _hide_secrets(tree: Any) -> Any:
    """Replace the value of secret-looking keys (password, token...) so no error message can show it."""
    import re
    if isinstance(tree, dict):
        return {k: ("<hidden: secrets come only from the environment; name the variable with password_env>"
                    if isinstance(k, str) and re.search(_SECRET_KEY, k) else _hide_secrets(v))
                for k, v in tree.items()}
    if isinstance(tree, list):
        return [_hide_secrets(v) for v in tree]
    return tree


class PersonConfig(Section):
    name: str = Field(..., min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="Shown in Slack messages and the `home` list.")
    # Declared before devices so the devices validator knows it.
    allow_hostnames: bool = Field(False, description=(
        "Also accept hostnames in devices (any guest can call a phone 'iPhone': MACs are safer)."))
    devices: list[str] = Field(..., min_length=1, max_length=20, description=(
        "MAC addresses (aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff), or hostnames where "
        "allow_hostnames is on."))

    @field_validator("devices")
    @classmethod
    def _normal_devices(cls, v: list[str], info) -> list[str]:
        from app.presence import normalize_hostname, normalize_mac
        out = []
        for text in v:
            device = normalize_mac(text)
            if device is None:
                if not info.data.get("allow_hostnames"):
                    raise ValueError(f"{text!r} is not a MAC address; set allow_hostnames: true to match "
                                     "hostnames (they can be shared or spoofed)")
                device = normalize_hostname(text)
                if device is None:
                    raise ValueError(f"{text!r} is neither a MAC address nor a hostname (1-64 printable characters)")
            out.append(device)
        return out


class RouterLoginConfig(Section):
    url: str = Field(..., description="Login request URL.")
    method: Literal["POST", "GET"] = "POST"
    body: Literal["form", "json"] = Field("form", description="Send the login fields as a form or as JSON.")
    username: str | None = Field(None, max_length=200, description="User name (not secret); or username_env.")
    username_env: str | None = Field(None, pattern=_ENV_NAME, description="Environment variable holding the user name.")
    username_field: str = Field("username", min_length=1, max_length=100)
    password_env: str = Field(..., pattern=_ENV_NAME, description="Environment variable holding the password.")
    password_field: str = Field("password", min_length=1, max_length=100)
    fields: dict[str, str] = Field(default_factory=dict, description="Extra constant login fields (never secrets).")
    token_path: str | None = Field(None, min_length=1, max_length=200, description=(
        "Dotted path of a session token in the login answer's JSON (e.g. data.token); unset: cookies only."))
    token_header: str = Field("Authorization", pattern=r"^[A-Za-z0-9-]{1,100}$", description="Header carrying the token.")
    token_prefix: str = Field("Bearer ", max_length=40, description="Text before the token in that header.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _plain_url(v)

    @field_validator("fields")
    @classmethod
    def _no_secret_fields(cls, v: dict[str, str]) -> dict[str, str]:
        import re
        for key in v:
            if re.search(_SECRET_KEY, key):
                raise ValueError(f"{key!r} looks like a secret: name its environment variable with password_env")
        return v


class RouterProviderConfig(Section):
    type: Literal["router"]
    name: str = Field("router", pattern=_PROVIDER_NAME, description="Shown in /pycam_status.")
    devices_url: str = Field(..., description="URL answering with the connected devices as JSON ({token} is replaced).")
    devices_method: Literal["GET", "POST"] = "GET"
    devices_json: Any = Field(None, description="JSON body of a POST devices request ({token} in strings is replaced).")
    list_path: str = Field("", max_length=200, description="Dotted path to the device list in the answer; empty: the answer itself.")
    mac_field: str | None = Field("mac", min_length=1, max_length=100, description="Dotted path of the MAC in each device.")
    hostname_field: str | None = Field("hostname", min_length=1, max_length=100, description="Dotted path of the hostname in each device.")
    online_field: str | None = Field(None, min_length=1, max_length=100, description=(
        "Dotted path of an online flag, for routers that also list offline devices; unset: every listed device counts."))
    login: RouterLoginConfig | None = None
    timeout_s: float = Field(5, gt=0, le=60, description="Timeout of each HTTP request.")
    verify_tls: bool = Field(True, description="Check the router's HTTPS certificate (off for self-signed ones).")

    @field_validator("devices_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _plain_url(v)


class LanProviderConfig(Section):
    type: Literal["lan"]
    name: str = Field("lan", pattern=_PROVIDER_NAME)
    source: Literal["auto", "ip", "proc"] = Field("auto", description="`ip -j neigh`, /proc/net/arp, or auto (ip when installed).")
    interface: str | None = Field(None, pattern=r"^[A-Za-z0-9_.@-]{1,15}$", description="Only neighbours on this interface.")
    probe: bool = Field(True, description="Send one UDP packet to each known address first, so sleeping phones answer ARP.")
    addresses: list[IPv4Address] = Field(default_factory=list, max_length=256, description=(
        "IPv4 addresses probed every poll (e.g. the phones' DHCP reservations); addresses where a known "
        "device was seen before are probed too."))
    probe_wait_s: float = Field(1.0, ge=0, le=10, description="Wait after probing before reading the table.")


class CommandProviderConfig(Section):
    type: Literal["command"]
    name: str = Field("command", pattern=_PROVIDER_NAME)
    argv: list[str] = Field(..., min_length=1, description="Program and arguments (no shell); prints one MAC or hostname per line.")
    timeout_s: float = Field(10, gt=0, le=300)


ProviderConfig = Annotated[Union[RouterProviderConfig, LanProviderConfig, CommandProviderConfig],
                           Field(discriminator="type")]


class PresenceConfig(Section):
    poll_s: float = Field(30, ge=5, le=3600, description="Seconds between presence polls.")
    consider_home_s: float = Field(600, ge=0, le=86400, description="A person is away only after not being seen this long.")
    people: list[PersonConfig] = Field(default_factory=list, max_length=50)
    providers: list[ProviderConfig] = Field(default_factory=list, max_length=10, description="Presence providers; see setup.md.")

    @field_validator("people")
    @classmethod
    def _unique_people(cls, v: list[PersonConfig]) -> list[PersonConfig]:
        owner: dict[str, str] = {}
        for person in v:
            if any(p is not person and p.name == person.name for p in v):
                raise ValueError(f"{person.name!r} is listed twice: each name must be unique")
            for device in person.devices:
                if owner.setdefault(device, person.name) != person.name:
                    raise ValueError(f"device {device!r} is listed for both {owner[device]} and {person.name}")
        return v

    @field_validator("providers", mode="before")
    @classmethod
    def _mask(cls, v: Any) -> Any:
        return _hide_secrets(v)

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, v: list) -> list:
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError("each provider needs its own name (set name: on one of them)")
        return v


class S3Config(Section):
    bucket: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$",
                               description="S3_BUCKET; uploads are off while it is unset.")
    prefix: str = Field("pycam", pattern=r"^$|^[A-Za-z0-9_-][A-Za-z0-9._/-]{0,99}$", description=(
        "S3_PREFIX: key prefix inside the bucket (no leading slash; empty for none)."))
    endpoint_url: str | None = Field(None, pattern=r"^https?://", description="S3_ENDPOINT_URL for MinIO, B2, Wasabi...; unset for AWS.")
    region: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,40}$", description=(
        "S3_REGION; unset uses boto3's own (AWS_DEFAULT_REGION, ~/.aws/config)."))
    interval_s: float = Field(300, ge=5, le=86400, description="S3_UPLOAD_INTERVAL: seconds between training-data passes.")
    upload_events: bool = Field(False, description="S3_UPLOAD_EVENTS: also upload each event snapshot within seconds (off-site evidence).")
    delete_after_upload: bool = Field(False, description="S3_DELETE_AFTER_UPLOAD: delete local training images once S3 has confirmed them.")

    @field_validator("prefix", mode="before")
    @classmethod
    def _clean_prefix(cls, v):
        if not isinstance(v, str):
            return v
        v = v.strip("/")
        if v and any(part in ("", ".", "..") for part in v.split("/")):
            raise ValueError("must not contain empty, '.' or '..' parts")
        return v


class VerifierConfig(Section):
    kind: list[Literal["none", "hog", "onnx", "trained"]] = Field(default_factory=lambda: ["none"], description=(
        "Verification stages run on each event before notifying, in order."))
    hog_threshold: float = Field(0.5, ge=0, le=10, description=(
        "hog: least people-detector score (SVM margin) that counts as a person."))
    hog_person_px: int = Field(160, ge=128, le=512, description=(
        "hog: the motion region is scaled so the moving object is about this tall (the window is 128)."))
    hog_max_upscale: float = Field(2.0, ge=1, le=4, description="hog: never enlarge the region more than this.")
    hog_max_pixels: int = Field(120_000, ge=20_000, le=2_000_000, description=(
        "hog: cap on the scaled region's area (its cost on a Pi grows with it)."))
    region_pad: float = Field(0.2, ge=0, le=1, description="hog/onnx: context added around the motion boxes, as a fraction of their size.")
    hog_edge_px: int = Field(32, ge=0, le=128, description="hog: margin (edge pixels repeated) where the region meets the frame edge.")
    hog_stride: int = Field(8, ge=8, le=32, description="hog: window stride in pixels (multiple of 8; larger is faster).")
    hog_scale: float = Field(1.05, gt=1, le=2, description="hog: image pyramid step (larger is faster, misses more).")
    model_path: str | None = Field(None, description="ONNX detector file for the onnx stage (relative: to data_dir).")
    input_size: int = Field(300, ge=32, le=1280, description="onnx: the model's square input size in pixels.")
    input_scale: float = Field(1 / 255, gt=0, le=1, description="onnx: pixel multiplier (1/255 for YOLO, 1/127.5 for MobileNet-SSD).")
    input_mean: float = Field(0.0, ge=0, le=255, description="onnx: subtracted from each pixel before scaling (127.5 for MobileNet-SSD).")
    swap_rb: bool = Field(True, description="onnx: feed RGB (most exports) rather than OpenCV's BGR.")
    output: Literal["auto", "ssd", "yolo5", "yolo8"] = Field("auto", description=(
        "onnx: output layout: ssd [1,1,N,7], yolo5 [1,N,5+C], yolo8 [1,4+C,N]; auto picks by shape."))
    class_ids: list[int] | None = Field(None, description=(
        "onnx: class ids that count; unset means person: 1 for SSD (0 is background), 0 for YOLO."))
    score_threshold: float = Field(0.5, gt=0, lt=1, description="onnx: least detection score that counts.")
    trained_path: str | None = Field(None, description="trained: classifier file; unset means <data_dir>/models/trained.npz.")
    trained_threshold: float = Field(0.5, gt=0, lt=1, description="trained: least 'occupied' probability that passes.")

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [s.strip() for s in v.split(",")] if isinstance(v, str) else v

    @field_validator("hog_stride")
    @classmethod
    def _stride_multiple_of_8(cls, v: int) -> int:
        if v % 8:
            raise ValueError("must be a multiple of 8 (the HOG block stride)")
        return v


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
    "S3_REGION": ("s3", "region"),
    "S3_UPLOAD_EVENTS": ("s3", "upload_events"),
    "S3_DELETE_AFTER_UPLOAD": ("s3", "delete_after_upload"),
    "PYCAM_VERIFIER": ("verifier", "kind"),
}
# Settings that may only come from the environment (secrets).
SECRET_PATHS = {("slack", "bot_token"), ("slack", "signing_secret")}
LIST_FROM_CSV = {("slack", "allowed_users")}


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a simple KEY=VALUE .env file (comments, blank lines and optional quotes allowed)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:  # absent, or not readable by this user (e.g. a service account)
        return values
    for line in text.splitlines():
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


def settings_table() -> str:
    """Markdown table of every setting with its environment variable and default (for setup.md)."""
    env_of = {path: name for name, path in ENV_NAMES.items()}
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: tuple[str, ...]):
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
