"""Health and tamper alerts from the camera: covered or blinded, and lost, each told once when it
starts and once when it ends."""
import json
import threading
import time

import cv2
import numpy as np

from app import keys
from app.camera.sources import Frame, SourceError
from app.camera.view import ViewWatch
from tests.conftest import wait_for


def textured(seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (180, 320), np.uint8), (5, 5), 0)


def test_a_view_turned_uniform_at_once_is_blind_and_dusk_is_not():
    view = ViewWatch()
    assert not any(view.update(textured(i), t * 0.1) for i, t in enumerate(range(10)))
    dark = np.full((180, 320), 3, np.uint8)
    assert view.update(dark, 1.0)                                     # a hand over the lens
    assert view.update(dark, 60.0)                                    # ...stays blind while uniform
    assert not view.update(textured(), 61.0)                          # uncovered
    dusk = ViewWatch()
    scene = textured().astype(np.float32)
    blind = [dusk.update((scene * f).astype(np.uint8), 0.5 * i) for i, f in enumerate(np.linspace(1, 0.02, 1200))]
    assert not any(blind)                                             # ten minutes of fading light, every 0.5 s
    overlay = np.full((180, 320), 2, np.uint8)
    cv2.putText(overlay, "2026-11-30 03:12:44 CAM1", (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255)
    view = ViewWatch()
    view.update(textured(), 0.0)
    assert view.update(overlay, 1.0)                                  # covered, the camera's clock still printed


class ScriptedCamera:
    """A camera (the one part faked: there is none here) showing the clip, then covered, then lost."""
    def __init__(self, clip, schedule, t0):
        self.frames = []
        cap = cv2.VideoCapture(clip)
        while len(self.frames) < 40:
            ok, f = cap.read()
            if not ok:
                break
            self.frames.append(f)
        self.schedule, self.t0, self.i, self.fps = schedule, t0, 0, 20.0

    def phase(self):
        t = time.monotonic() - self.t0
        return next(p for end, p in self.schedule if t < end)

    def open(self, cfg):
        if self.phase() == "lost":
            raise SourceError("camera source 'usb:0' stopped giving frames")
        return self

    def read(self):
        time.sleep(1 / self.fps)
        phase = self.phase()
        if phase == "lost":
            raise SourceError("camera source 'usb:0' stopped giving frames")
        self.i += 1
        img = self.frames[self.i % len(self.frames)] if phase == "scene" else np.full_like(self.frames[0], 2)
        return Frame(self.i, time.time(), img, lambda: img)

    def close(self):
        pass


def test_a_covered_and_then_lost_camera_is_told_once_each_way(tmp_path, redis_url, r, short_clip):
    import config
    from app import state
    from app.camera.daemon import CameraDaemon
    from app.utils import StopFlag

    settings = config.load_settings(env={"REDIS_URL": redis_url, "PYCAM_DATA_DIR": str(tmp_path / "data")})
    settings.alerts.covered_s = 1
    settings.alerts.source_lost_s = 1
    settings.alerts.disk_free_mb = 0
    r.set(keys.CAMERA_STATUS, "true")
    camera = ScriptedCamera(short_clip, [(3, "scene"), (7, "covered"), (11, "scene"), (14, "lost"),
                                         (1e9, "scene")], time.monotonic())
    stop_flag = StopFlag()
    daemon = CameraDaemon(settings, state.connect(redis_url, "test"), stop_flag, open_source=camera.open)
    thread = threading.Thread(target=daemon.run)
    thread.start()

    def told():
        return [json.loads(f["job"]).get("text", "") for _, f in r.xrange(keys.SLACK_OUTBOX)
                if json.loads(f["job"])["type"] == "message"]
    try:
        wait_for(lambda: len(told()) >= 4, timeout=30)
        time.sleep(1.5)
        texts = told()
        assert len(texts) == 4, texts
        assert "sees nothing" in texts[0] and "sees again (blind for 4 s)" in texts[1]
        assert "camera is lost" in texts[2] and "stopped giving frames" in texts[2]
        assert "camera is back" in texts[3]
        assert keys.ALARMS not in r.keys() or r.hlen(keys.ALARMS) == 0          # every alarm ended
    finally:
        stop_flag.set()
        thread.join(10)
