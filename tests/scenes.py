"""Synthetic scenes for the detection tests: a textured room, objects that move, light that changes.

Frames are grey uint8 at 320x180, 10 fps, with sensor noise; times are epoch seconds (the live clock).
"""
from __future__ import annotations

import cv2
import numpy as np

W, H, FPS = 320, 180, 10.0
ORIGIN = 1_800_000_000.0


def texture(seed: int, w: int = W, h: int = H, scale: float = 6.0, mean: float = 120, contrast: float = 45):
    """A random, smooth texture (walls, furniture): no flat area the lighting test could not read."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), scale)
    noise /= noise.std() + 1e-6
    return np.clip(mean + contrast * noise, 0, 255).astype(np.float32)


class Scene:
    """Builds frame after frame: start from the background, apply light, paste objects, add noise."""

    def __init__(self, seed: int = 1, noise: float = 2.0):
        self.bg = texture(seed)
        self.rng = np.random.default_rng(seed + 100)
        self.noise = noise

    def frame(self, light=None, objects=(), extra=None) -> np.ndarray:
        img = self.bg.copy()
        if extra is not None:
            extra(img)
        for obj, x, y in objects:
            paste(img, obj, x, y)
        if light is not None:
            img *= light
        img += self.rng.normal(0, self.noise, img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)


def person(seed: int = 7, w: int = 24, h: int = 60):
    """A person-sized textured object (darker than the wall, with its own texture)."""
    return texture(seed, w, h, scale=2.0, mean=70, contrast=30)


def paste(img: np.ndarray, obj: np.ndarray, x: float, y: float) -> None:
    """Paste obj with its top-left at (x, y), clipped to the frame."""
    x, y = int(round(x)), int(round(y))
    h, w = obj.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, img.shape[1]), min(y + h, img.shape[0])
    if x0 < x1 and y0 < y1:
        img[y0:y1, x0:x1] = obj[y0 - y:y1 - y, x0 - x:x1 - x]


def run(frames, settings=None):
    """Feed (grey frame) in order through the live pipeline; returns (alerts, ended) as lists of
    (frame index, seconds from the start, boxes in frame pixels)."""
    import config
    from app.camera.pipeline import Pipeline
    settings = settings or config.load_settings(env={})
    pipeline = Pipeline(settings)
    alerts, ended = [], []
    for i, img in enumerate(frames):
        now = ORIGIN + i / FPS
        _result, step = pipeline.step(i, now, img)
        if step.ended is not None:
            ended.append((i, round(i / FPS, 2)))
        if step.alert is not None:
            alerts.append((i, round(i / FPS, 2), pipeline.scale_boxes(step.alert.boxes, W)))
    return alerts, ended


def overlaps(box, region) -> bool:
    """Whether box (x, y, w, h) and region (x0, y0, x1, y1) share any pixel."""
    x, y, w, h = box
    x0, y0, x1, y1 = region
    return x < x1 and x + w > x0 and y < y1 and y + h > y0
