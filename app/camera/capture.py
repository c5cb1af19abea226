"""The camera source's life in the daemon: opened when armed, reopened with backoff when lost,
released when disarmed, idle once a file (the demo clip with looping off) has ended."""
from __future__ import annotations

import logging

from app.backoff import Backoff
from app.camera.sources import EndOfStream, Frame, SourceError, open_source

log = logging.getLogger("security_system")


class Capture:
    """One configured source. `state` is what the heartbeat shows: closed, running, reopening, ended."""

    def __init__(self, cfg, opener=open_source):
        self.cfg = cfg
        self.opener = opener
        self.source = None
        self.state = "closed"
        self.error = ""                      # the last failure, for the heartbeat (never a URL)
        self.frames = 0
        self.reopen = Backoff(1.0, cfg.reopen_max_s)

    @property
    def is_open(self) -> bool:
        return self.source is not None

    def open(self) -> bool:
        """Try to open the source (not before the backoff allows); True when it opened."""
        if self.state == "ended" or not self.reopen.ready():   # a file that ended waits for a re-arm
            return False
        try:
            self.source = self.opener(self.cfg)
        except SourceError as e:
            self.error, self.state = str(e), "reopening"
            log.warning("%s; retrying in %.0f s", e, self.reopen.failed())
            return False
        self.state, self.error = "running", ""
        self.reopen.reset()
        log.info("Camera source open (%.1f fps)", getattr(self.source, "fps", 0) or 0)
        return True

    def read(self) -> Frame | None:
        """The next frame, or None when the source ended or failed (it is then closed)."""
        try:
            frame = self.source.read()
        except EndOfStream:
            log.info("The file source ended; idle until disarmed and re-armed")
            self.close()
            self.state = "ended"
            return None
        except SourceError as e:
            log.warning("%s; reopening", e)
            self.close()
            self.error, self.state = str(e), "reopening"
            return None
        self.frames += 1
        return frame

    def close(self) -> None:
        """Release the camera (disarmed, stopping, or lost)."""
        if self.source is not None:
            self.source.close()
            self.source = None
        self.state = "closed"

    def rearm(self) -> None:
        """Armed again: open at once, even after a failure or the end of a file."""
        self.reopen.reset()
        if self.state == "ended":
            self.state = "closed"
