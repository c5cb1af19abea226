"""Small helpers shared by every process: atomic files, logging, signals, disk use."""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder, fsync and rename.

    A reader (the S3 uploader, Slack upload) sees either the old file or the whole new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path | str, value: Any) -> None:
    """Write a JSON document atomically."""
    atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


def read_json_file(path: Path | str, default: Any = None) -> Any:
    """Read a JSON file; a missing or corrupt file gives `default`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def is_temp_file(path: Path) -> bool:
    """True for the temp files atomic_write_bytes leaves while writing (never upload or index them)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


# The password may hold '/' or '@' (unencoded, as people type them): up to the token's last '@'.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]*):(\S*)@")


def redact(text: object) -> str:
    """The text with any password in a URL (rtsp://user:password@host) replaced by ***."""
    return _USERINFO.sub(r"\1\2:***@", str(text))


class RedactingFilter(logging.Filter):
    """Every log line goes through redact(): no URL password reaches a log file or the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def check_data_dir(path: Path) -> None:
    """Exit with one clear line unless the data dir exists (or can be made) and is writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise SystemExit(f"pycam: the data dir {path} cannot be used ({e.strerror or e}): set PYCAM_DATA_DIR "
                         "to a folder this user can write") from None


def setup_logging(process: str, level: str = "INFO", logs_dir: Path | None = None) -> None:
    """Log to stderr, and to logs_dir/<process>.log (rotated at 5 MB, 3 kept) when given.

    PYCAM_LOG_STDERR=0 (set by scripts/pycam under nohup) leaves the rotated file the only copy,
    so the unrotated nohup .out file never grows with the same lines.
    """
    handlers: list[logging.Handler] = []
    if logs_dir is None or os.environ.get("PYCAM_LOG_STDERR", "1") != "0":
        handlers.append(logging.StreamHandler(sys.stderr))
    if logs_dir is not None:
        try:
            logs_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.handlers.RotatingFileHandler(
                logs_dir / f"{process}.log", maxBytes=5_000_000, backupCount=3))
        except OSError as e:
            print(f"pycam: cannot write logs to {logs_dir}: {e.strerror or e}; logging to the console only",
                  file=sys.stderr)
            if not handlers:   # never two console handlers: every line would be printed twice
                handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format=f"%(asctime)s {process}[%(process)d] %(levelname)s %(name)s: %(message)s")
    # Library chatter at INFO would drown our own lines (and may echo URLs).
    for noisy in ("urllib3", "botocore", "boto3", "s3transfer", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class StopFlag:
    """SIGTERM/SIGINT handling: the first signal asks for a warm stop, the second forces exit.

    Handlers only set the event; loops check it (`while not stop.wait(t)`).
    """

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> "StopFlag":
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            raise SystemExit(1)
        log.info("Received %s, stopping", signal.Signals(signum).name)
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)


def disk_low(path: Path, min_free_mb: float) -> str | None:
    """Why the disk holding `path` is nearly full (less than `min_free_mb` free), or None."""
    try:
        free = shutil.disk_usage(path).free / 1e6
    except OSError:
        return None              # no data dir yet: the writes say what is wrong
    if free >= min_free_mb:
        return None
    return f"the data disk is nearly full ({free:.0f} MB free)"


def folder_size(path: Path) -> int:
    """Total bytes of the files under `path` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def cpu_temperature() -> float | None:
    """The Pi's SoC temperature in degrees C, or None where it cannot be read."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def in_thread(fn, name: str) -> Future:
    """Run `fn()` on a daemon thread; its result (or its exception) arrives in the Future."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as e:  # handed over whole: the caller decides
            future.set_exception(e)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


def run_in_worker(loop, stop: StopFlag, name: str) -> bool:
    """Run a daemon's blocking `loop()` in a worker thread while this thread watches `stop`.

    A network call may hang in the worker (a Slack or S3 outage); the process still exits within
    2 s of SIGTERM, and work cut off that way was never acknowledged, so it is redone at the next
    start. Returns False when the loop crashed (exit non-zero and let the supervisor restart it).
    """
    crashed = threading.Event()

    def work() -> None:
        try:
            loop()
        except Exception:
            log.exception("%s crashed; exiting so the supervisor restarts it", name)
            crashed.set()
            stop.set()

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    while worker.is_alive() and not stop.wait(0.5):
        pass
    stop.set()
    worker.join(1.5)
    if worker.is_alive():
        log.info("%s stopped in the middle of its work; it is redone at the next start", name)
    return not crashed.is_set()
