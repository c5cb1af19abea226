"""The S3 side of the uploader: verified puts, copies and deletes with boto3, and one-line errors.

Credentials come from boto3's standard chain (environment, ~/.aws, instance profile); the endpoint
and region from config, so any S3-compatible store works. "Confirmed" means: after the put (which
carries Content-MD5 and a SHA-256 checksum, so the server rejects corrupted bytes), HeadObject shows
the same size and either the same SHA-256 checksum or, where the store keeps none, an ETag equal to
the MD5 (true for single-part puts without KMS encryption).
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError


# Short timeouts so an outage fails fast and the loop backs off instead of hanging; botocore's
# own retries (standard mode, with jittered backoff) absorb brief blips, our loop the long ones.
CLIENT_CONFIG = dict(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})

CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                    "TokenRefreshRequired", "AuthorizationHeaderMalformed"}
MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


class S3Error(Exception):
    """An S3 failure with a one-line message that is safe to log and show in /pycam_status."""


@dataclass(frozen=True)
class Blob:
    """Bytes to upload with their size and checksums."""
    data: bytes
    md5_hex: str
    sha256: str          # base64, as S3 reports ChecksumSHA256

    @classmethod
    def of(cls, data: bytes) -> "Blob":
        return cls(data, hashlib.md5(data).hexdigest(), base64.b64encode(hashlib.sha256(data).digest()).decode())

    @property
    def size(self) -> int:
        return len(self.data)


def make_client(endpoint_url: str | None, region: str | None):
    """An S3 client from the standard credential chain, with short timeouts and retries."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, config=Config(region_name=region, **CLIENT_CONFIG))


def mismatch(head: dict, size: int, sha256: str, md5_hex: str | None) -> str | None:
    """Why a HeadObject answer does not confirm the object we sent, or None when it does."""
    if head.get("ContentLength") != size:
        return f"S3 holds {head.get('ContentLength')} bytes, expected {size}"
    stored = head.get("ChecksumSHA256")
    if stored and "-" not in stored:
        return None if stored == sha256 else "the SHA-256 checksum S3 holds differs"
    etag = str(head.get("ETag", "")).strip('"')
    if md5_hex and MD5_ETAG.match(etag):
        return None if etag == md5_hex else "the ETag S3 holds differs from the MD5"
    return "S3 returned no checksum to compare"


class S3Store:
    """One bucket. Every method raises S3Error (never a raw botocore error) on failure."""

    def __init__(self, client, bucket: str, endpoint_url: str | None = None):
        self.client = client
        self.bucket = bucket
        # Only the host is ever shown: an endpoint URL may carry credentials in its userinfo.
        self.where = urlsplit(endpoint_url).hostname if endpoint_url else "AWS S3"

    def describe(self, exc: Exception) -> str:
        """A one-line, secret-free explanation of a boto3 failure."""
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return ("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "~/.aws/credentials or an instance profile")
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket",) or (code == "404" and exc.operation_name == "HeadBucket"):
                return f"bucket {self.bucket!r} does not exist at {self.where}"
            if code in CREDENTIAL_CODES:
                return f"{self.where} rejected the AWS credentials ({code})"
            if code in ("AccessDenied", "403") or status == 403:
                return (f"{self.where} refused access to bucket {self.bucket!r}: wrong credentials or "
                        f"no permission ({code or 403})")
            return f"{exc.operation_name} failed at {self.where}: {code} {err.get('Message', '')}".strip()
        if isinstance(exc, BotoCoreError):
            return f"cannot reach {self.where}: {type(exc).__name__}"
        return f"{type(exc).__name__}: {exc}"

    def _call(self, fn, **kwargs):
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (BotoCoreError, ClientError) as e:
            raise S3Error(self.describe(e)) from None

    def check(self) -> None:
        """Raise S3Error unless the bucket exists and the credentials may use it."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "403":
                raise S3Error(self.describe(e)) from None
            # A HEAD answer has no body, so a bare 403 cannot tell wrong keys from a missing
            # permission; a GET says which (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied).
            self._call(self.client.list_objects_v2, MaxKeys=1)
        except BotoCoreError as e:
            raise S3Error(self.describe(e)) from None

    def head(self, key: str) -> dict | None:
        """HeadObject with checksums, or None when the key does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise S3Error(self.describe(e)) from None
        except BotoCoreError as e:
            raise S3Error(self.describe(e)) from None

    def confirm(self, key: str, size: int, sha256: str, md5_hex: str | None) -> None:
        """Raise S3Error unless `key` holds exactly these bytes."""
        head = self.head(key)
        problem = "the object is missing after the upload" if head is None else mismatch(head, size, sha256, md5_hex)
        if problem:
            raise S3Error(f"{key}: not confirmed: {problem}")

    def put(self, key: str, blob: Blob, content_type: str) -> None:
        """Upload and confirm one object."""
        self._call(self.client.put_object, Key=key, Body=blob.data, ContentType=content_type,
                   ContentMD5=base64.b64encode(bytes.fromhex(blob.md5_hex)).decode(),
                   ChecksumAlgorithm="SHA256", ChecksumSHA256=blob.sha256)
        self.confirm(key, blob.size, blob.sha256, blob.md5_hex)

    def copy(self, src: str, key: str, size: int, sha256: str, md5_hex: str | None) -> None:
        """Copy `src` to `key` inside the bucket and confirm the copy (already there counts)."""
        head = self.head(key)
        if head is not None and mismatch(head, size, sha256, md5_hex) is None:
            return  # a previous run copied it and stopped before recording it
        self._call(self.client.copy_object, Key=key, CopySource={"Bucket": self.bucket, "Key": src},
                   ChecksumAlgorithm="SHA256")
        self.confirm(key, size, sha256, md5_hex)

    def delete(self, key: str) -> None:
        """Delete one object (deleting a missing key succeeds, so this is safe to repeat)."""
        self._call(self.client.delete_object, Key=key)
