"""The motion detector on synthetic frames: what counts as motion and what must not."""
import numpy as np
import pytest

from config import MotionConfig
from app.camera.detector import MotionDetector

W, H = 640, 360


def scene(seed=1):
    """A textured still scene (a wall and a wooden floor), like a room seen by a camera."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W), 170, np.float32)
    img[H // 2:] = 90 + 30 * np.sin(np.arange(W) / 7.0)[None, :]   # floor boards
    img += rng.normal(0, 6, (H, W))                                  # texture
    return np.clip(img, 0, 255).astype(np.uint8)


def learned(base, frames=40, cfg=None, noise=1.5, seed=2):
    """A detector that has watched `base` (with sensor noise) for a while, and the time it is at."""
    det = MotionDetector(cfg or MotionConfig())
    rng = np.random.default_rng(seed)
    t = 0.0
    for _ in range(frames):
        det.detect(noisy(base, rng, noise), t)
        t += 0.1
    return det, t, rng


def noisy(img, rng, sigma):
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def with_person(img, x, y, w, h, level=40):
    out = img.copy()
    out[y:y + h, x:x + w] = level
    return out


def test_still_scene_is_quiet():
    base = scene()
    det, t, rng = learned(base)
    assert not any(det.detect(noisy(base, rng, 1.5), t + i * 0.1).motion for i in range(20))


def test_person_entering_is_motion_with_a_box_around_them():
    base = scene()
    det, t, rng = learned(base)
    result = det.detect(with_person(base, 300, 100, 60, 180), t)
    assert result.motion
    (x, y, w, h), = result.boxes
    f = W / det.size[0]
    assert abs(x * f - 300) < 20 and abs(y * f - 100) < 20 and abs(w * f - 60) < 30 and abs(h * f - 180) < 30


def test_small_person_far_away_is_still_motion():
    base = scene()
    det, t, rng = learned(base)
    assert det.detect(with_person(base, 500, 60, 12, 26), t).motion  # 0.14 % of the frame


@pytest.mark.parametrize("gain", [0.5, 0.7, 1.3])
def test_light_switch_or_re_exposure_is_not_motion(gain):
    base = scene()
    det, t, rng = learned(base)
    result = det.detect(np.clip(base * gain, 0, 255).astype(np.uint8), t)
    assert not result.motion


def test_soft_shadow_passing_is_not_motion():
    base = scene().astype(np.float32)
    det, t, rng = learned(base.astype(np.uint8))
    yy, xx = np.mgrid[0:H, 0:W]
    for step in range(10):
        cx = 150 + step * 30
        shade = 1 - 0.35 * np.exp(-(((xx - cx) / 90.0) ** 2 + ((yy - 250) / 70.0) ** 2))
        assert not det.detect(np.clip(base * shade, 0, 255).astype(np.uint8), t + step * 0.1).motion


def test_sensor_noise_at_night_is_not_motion():
    dark = (scene() * 0.25).astype(np.uint8)
    det, t, rng = learned(dark, noise=6)
    assert not any(det.detect(noisy(dark, rng, 6), t + i * 0.1).motion for i in range(30))


def test_ignore_mask_hides_motion_inside_it():
    cfg = MotionConfig(masks=[[(0.4, 0.0), (1.0, 0.0), (1.0, 1.0), (0.4, 1.0)]])
    base = scene()
    det, t, rng = learned(base, cfg=cfg)
    assert not det.detect(with_person(base, 400, 100, 60, 180), t).motion
    assert det.detect(with_person(base, 60, 100, 60, 180), t + 0.1).motion


def test_reset_relearns_a_moved_view_without_motion():
    base = scene()
    det, t, rng = learned(base)
    moved = np.roll(base, 40, axis=1)            # the camera panned
    det.reset()
    results = [det.detect(noisy(moved, rng, 1.5), t + i * 0.1) for i in range(10)]
    assert not any(r.motion for r in results)


def test_someone_standing_in_view_counts_while_they_stir_but_a_frozen_shape_does_not():
    """A person never freezes to the pixel; a shape that appears and never changes again (a lamp
    switched on, a shadow that stopped) is motion only in the frame it came, then joins the
    background after absorb_s."""
    base = scene()
    det, t, rng = learned(base)
    stirring = [det.detect(noisy(with_person(base, 300 + 4 * (i % 2), 100, 60, 180), rng, 1.5), t + i * 0.1).motion
                for i in range(10)]
    assert all(stirring)
    frozen = with_person(base, 300, 100, 60, 180)
    still = [det.detect(noisy(frozen, rng, 1.5), t + 1 + i * 0.1).motion for i in range(30)]
    assert not any(still[2:])
    assert not det.detect(noisy(frozen, rng, 1.5), t + 4).mask.any()   # absorbed: no ghost later