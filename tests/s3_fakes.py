"""moto's S3 server on loopback for the uploader tests and bench, plus sample data on disk.

ThreadedMotoServer keeps its objects in this process, so a test can stop the server mid-batch,
start it again on the same port and still see what arrived before the outage.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

import boto3
import requests
from moto.server import ThreadedMotoServer

from app import utils
from app.storage import events

TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Keep boto3 away from the real ~/.aws and the EC2 metadata address: tests talk to 127.0.0.1 only.
ISOLATED_AWS_ENV = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """An S3 endpoint on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None
        logging.getLogger("werkzeug").setLevel(logging.ERROR)   # one line per request otherwise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadedMotoServer("127.0.0.1", self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def reset(self) -> None:
        """Forget every bucket and switch credential checks off again."""
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"inf", timeout=5)
        requests.post(f"{self.url}/moto-api/reset", timeout=5)

    def client(self, key: str = "testing", secret: str = "testing"):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret)

    def require_credentials(self) -> tuple[str, str]:
        """Make the server check signatures like AWS: only the returned IAM user's keys work."""
        iam = boto3.session.Session().client("iam", endpoint_url=self.url, region_name="us-east-1",
                                             aws_access_key_id="testing", aws_secret_access_key="testing")
        iam.create_user(UserName="pycam")
        iam.put_user_policy(UserName="pycam", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="pycam")["AccessKey"]
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=5)
        return key["AccessKeyId"], key["SecretAccessKey"]

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every key in the bucket with its bytes."""
        c = self.client()
        out = {}
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        return out


def event_id(n: int, day: str = "20261124") -> str:
    """A well-formed event id, sortable by n."""
    return f"{day}-{10000 + n:06d}-{n:06x}"


def jpeg_bytes(n: int, size: int = 2000) -> bytes:
    """Distinct fake JPEG bytes (the uploader never decodes them)."""
    body = (f"sample {n} ".encode() * (size // 8 + 1))[:size - 4]
    return b"\xff\xd8" + body + b"\xff\xd9"


def add_training(data_dir: Path, labels: dict[str, str], write_images: bool = True, size: int = 2000) -> None:
    """Write training/<id>.jpg then labels.json, as the Slack app does (image first, then manifest)."""
    training = Path(data_dir) / "training"
    manifest = utils.read_json_file(training / "labels.json", {})
    for eid, label in sorted(labels.items()):
        if write_images and not (training / f"{eid}.jpg").exists():
            utils.atomic_write_bytes(training / f"{eid}.jpg", jpeg_bytes(int(eid[-6:], 16), size))
        manifest[eid] = {"event_id": eid, "label": label, "user_id": "U123", "user_name": "owner",
                         "labelled_at": time.time(), "event_time": time.time(), "camera": "pycam"}
    utils.atomic_write_json(training / "labels.json", manifest)


def add_event(data_dir: Path, eid: str, complete: bool = True) -> dict:
    """Write an event's snapshot and (when complete) its metadata json last, as the daemon does."""
    files = events.event_files(Path(data_dir), eid)
    utils.atomic_write_bytes(files["snapshot"], jpeg_bytes(int(eid[-6:], 16) + 7))
    meta = {"id": eid, "camera": "pycam", "time": time.time(),
            "snapshot": str(files["snapshot"].relative_to(data_dir)), "verified": None, "notified": False}
    if complete:
        utils.atomic_write_json(files["meta"], meta)
    return meta
