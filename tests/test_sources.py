"""Camera sources: the Pi camera's main stream is copied only for the frames an event needs.

picamera2 cannot run here (no camera, no libcamera), so `picamera2.Picamera2` is replaced at
import by a stand-in with its request API (capture_request, make_array, release); the source
code under test is pycam's own.
"""
import sys
import types

import numpy as np
import pytest

from app.camera.sources import Picamera2Source, open_source
from config import CameraConfig


class FakeRequest:
    def __init__(self, cam, n: int):
        self.cam, self.n, self.released = cam, n, False

    def make_array(self, stream: str) -> np.ndarray:
        assert not self.released, "a released request's buffers belong to the camera again"
        self.cam.made.append((self.n, stream))
        if stream == "lores":
            return np.full((180 * 3 // 2, 320), self.n % 256, np.uint8)        # YUV420: Y on top
        return np.full((720, 1280, 3), self.n % 256, np.uint8)

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    def __init__(self):
        self.made: list[tuple[int, str]] = []
        self.requests: list[FakeRequest] = []

    def create_video_configuration(self, **kw):
        return kw

    def configure(self, config):
        self.config = config

    def start(self):
        pass

    def capture_request(self) -> FakeRequest:
        self.requests.append(FakeRequest(self, len(self.requests)))
        return self.requests[-1]

    def stop(self):
        pass

    def close(self):
        pass


@pytest.fixture
def camera(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = open_source(CameraConfig(source="picamera2"))
    assert isinstance(source, Picamera2Source)
    yield source
    source.close()


def test_frames_without_an_event_never_copy_the_main_stream(camera):
    frames = [camera.read() for _ in range(30)]
    assert [f.detect.shape for f in frames[:1]] == [(180, 320)]
    assert {stream for _, stream in camera.cam.made} == {"lores"}
    # Every request but the last went back to the camera; the last goes back at close.
    assert [r.released for r in camera.cam.requests] == [True] * 29 + [False]
    camera.close()
    assert all(r.released for r in camera.cam.requests)


def test_an_event_gets_its_own_frames_snapshot_once(camera):
    for _ in range(5):
        camera.read()
    frame = camera.read()
    first = frame.snapshot()
    assert frame.snapshot() is first and first.shape == (720, 1280, 3)
    assert (first == 5).all()                                       # this frame's picture, not another's
    assert camera.cam.made.count((5, "main")) == 1
    late = camera.read()
    assert camera.cam.requests[5].released
    assert frame.snapshot() is first                                # copied out: still there
    camera.read()
    with pytest.raises(RuntimeError, match="during its frame's step"):
        late.snapshot()                                             # its buffers went back to the camera
