"""Settings of the services pycam talks to: Slack and S3."""
from __future__ import annotations

from config_sections.model import Field, SecretStr, field_validator

from config_sections.base import Section


class SlackConfig(Section):
    bot_token: SecretStr | None = Field(None, description="SLACK_BOT_TOKEN (xoxb-...); secret.")
    signing_secret: SecretStr | None = Field(None, description="SLACK_SIGNING_SECRET; secret (HTTP mode).")
    app_token: SecretStr | None = Field(None, description=(
        "SLACK_APP_TOKEN (xapp-..., scope connections:write); secret. Socket Mode: Slack's commands "
        "and clicks arrive over a connection the Pi opens, with no inbound port."))
    channel_id: str | None = Field(None, pattern=r"^[A-Z0-9]{6,20}$", description="SLACK_CHANNEL_ID: channel ID (C...), not its name.")
    api_url: str = Field("https://slack.com/api/", pattern=r"^https?://", description="SLACK_API_URL; tests point it at a local fake.")
    allowed_users: list[str] = Field(default_factory=list, description="SLACK_ALLOWED_USERS: comma-separated user ids; empty allows the whole workspace.")
    max_body_bytes: int = Field(16384, ge=1024, le=1048576, description="Larger requests are refused with 413.")

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
