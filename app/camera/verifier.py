"""Second-stage checks that an event is a person before the owner is notified.

The camera daemon calls `build_verifier(settings.verifier, settings.data_dir)` once at start and
then `verifier.verify(frames, boxes)` in a worker thread for each event:
  frames: 1-3 BGR frames of the event at snapshot resolution, the trigger frame first;
  boxes:  [x, y, w, h] motion boxes in those frames' pixels.
Stages (`verifier.kind`, chainable, run in order, the first "no" wins):
  none     always passes;
  hog      OpenCV's built-in HOG people detector on the motion region;
  onnx     a detector model the owner provides (SSD- or YOLO-style export), run with cv2.dnn;
  trained  the classifier `python3 -m app.camera.train` fitted on the owner's Slack labels.
Everything here is pure apart from loading model files at build time.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import config
from app.camera import train

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """What one verify() call decided, and why (the reason is shown in logs and event metadata)."""
    passed: bool
    score: float
    reason: str
    stage: str
    seconds: float        # wall-clock time the check took (the worker thread shares the CPU)


def motion_region(shape: tuple, boxes: list[list[int]], pad: float,
                  min_aspect: float = 0.0) -> tuple[int, int, int, int]:
    """The union of `boxes`, widened to at least `min_aspect` x its height, padded by `pad` of its
    size on each side and clamped to the frame: (x0, y0, x1, y1).

    No boxes (or only empty ones) means the whole frame.
    """
    height, width = shape[:2]
    boxes = [b for b in boxes if len(b) == 4 and b[2] > 0 and b[3] > 0]
    if not boxes:
        return 0, 0, width, height
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    grow = max(0, min_aspect * (y1 - y0) - (x1 - x0))
    x0, x1 = x0 - grow / 2, x1 + grow / 2
    px, py = int((x1 - x0) * pad), int((y1 - y0) * pad)
    x0, y0 = max(0, x0 - px), max(0, y0 - py)
    x1, y1 = min(width, x1 + px), min(height, y1 + py)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, width, height
    return int(x0), int(y0), int(x1), int(y1)


class Verifier:
    """One verification stage: frames and motion boxes in, a Verdict out."""
    name = "verifier"

    def verify(self, frames: list[np.ndarray], boxes: list[list[int]]) -> Verdict:
        start = time.perf_counter()
        passed, score, reason = self._check(frames, boxes)
        return Verdict(passed, float(score), reason, self.name, time.perf_counter() - start)

    def _check(self, frames, boxes) -> tuple[bool, float, str]:
        raise NotImplementedError


class PassVerifier(Verifier):
    """`none`: every event is notified (the first stage alone decides)."""
    name = "none"

    def _check(self, frames, boxes):
        return True, 1.0, "no verifier configured"


class HogVerifier(Verifier):
    """`hog`: OpenCV's default HOG + linear SVM people detector on the motion region.

    The detector's window is 64x128, so the region is scaled for the motion (a person) to be about
    `hog_person_px` tall, but never enlarged more than `hog_max_upscale` (blown-up floor boards
    look like legs) and never to more than `hog_max_pixels` (the cost on a Pi grows with area).
    """
    name = "hog"

    def __init__(self, cfg: config.VerifierConfig):
        if not hasattr(cv2, "HOGDescriptor"):
            raise config.ConfigError(
                f"verifier.kind = hog: this OpenCV ({cv2.__version__}) has no HOGDescriptor (OpenCV 5 moved "
                "it to contrib); install opencv-python-headless<5 as requirements.txt says")
        self.cfg = cfg
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def prepare(self, frame: np.ndarray, boxes: list[list[int]]) -> np.ndarray:
        """The padded, scaled motion region that the detector sees."""
        cfg = self.cfg
        # A standing person is about half as wide as tall, and the detector wants context around them.
        x0, y0, x1, y1 = motion_region(frame.shape, boxes, cfg.region_pad, min_aspect=0.75)
        union_h = max(1, y1 - y0) / (1 + 2 * cfg.region_pad)
        scale = min(cfg.hog_person_px / union_h, cfg.hog_max_upscale)
        crop = frame[y0:y1, x0:x1]
        h, w = crop.shape[:2]
        if h * w * scale * scale > cfg.hog_max_pixels:
            scale = (cfg.hog_max_pixels / (h * w)) ** 0.5
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # A person cut by the frame edge is still a person: repeat the edge pixels on the sides where
        # the region meets the frame edge, so the 64x128 window can sit over them.
        m = cfg.hog_edge_px
        height, width = frame.shape[:2]
        top, bottom = (m if y0 == 0 else 0), (m if y1 == height else 0)
        left, right = (m if x0 == 0 else 0), (m if x1 == width else 0)
        # Too small for one window: pad to fit, since the detector refuses smaller images.
        grow_y = max(0, 128 + 16 - (crop.shape[0] + top + bottom))
        grow_x = max(0, 64 + 16 - (crop.shape[1] + left + right))
        top, bottom = top + grow_y // 2, bottom + grow_y - grow_y // 2
        left, right = left + grow_x // 2, right + grow_x - grow_x // 2
        if top or bottom or left or right:
            crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_REPLICATE)
        return crop

    def score(self, frame: np.ndarray, boxes: list[list[int]]) -> float:
        """The best people-detector score (SVM margin) in the motion region of one frame; 0 if none."""
        image = self.prepare(frame, boxes)
        stride = (self.cfg.hog_stride, self.cfg.hog_stride)
        _rects, weights = self.hog.detectMultiScale(image, winStride=stride, padding=(8, 8),
                                                    scale=self.cfg.hog_scale)
        return float(np.max(weights)) if len(weights) else 0.0

    def _check(self, frames, boxes):
        best = 0.0
        for i, frame in enumerate(frames):
            best = max(best, self.score(frame, boxes))
            if best >= self.cfg.hog_threshold:  # one frame with a person is enough; skip the rest
                return True, best, f"person in frame {i + 1} of {len(frames)} (score {best:.2f})"
        return False, best, f"no person in {len(frames)} frame(s) (best {best:.2f} < {self.cfg.hog_threshold})"


def _onnx_detections(out: np.ndarray, layout: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(layout used, class ids, scores) of every detection in one raw output blob.

    Accepted shapes (leading 1s may be absent):
      ssd:   [1, 1, N, 7] rows (image id, class id, score, x1, y1, x2, y2) - Caffe/TF SSD exports;
      yolo5: [1, N, 5 + C] rows (cx, cy, w, h, objectness, C class scores) - score = obj x class;
      yolo8: [1, 4 + C, N] columns (cx, cy, w, h, C class scores), no objectness.
    `auto` picks ssd for a 4-d output ending in 7, else yolo5 when N (the larger axis) comes first
    and yolo8 when it comes last, which is how those exporters lay them out.
    """
    a = np.asarray(out, dtype=np.float32)
    if layout == "auto":
        if a.ndim == 4 and a.shape[-1] == 7:
            layout = "ssd"
        else:
            m = a.reshape(a.shape[-2:]) if a.ndim >= 2 else a
            layout = "yolo5" if m.ndim == 2 and m.shape[0] >= m.shape[1] else "yolo8"
    if layout == "ssd":
        rows = a.reshape(-1, 7) if a.size % 7 == 0 else None
        if rows is None:
            raise ValueError(f"an ssd output must end in 7 numbers per detection, got shape {list(a.shape)}")
        return layout, rows[:, 1].astype(int), rows[:, 2]
    if a.ndim < 2 or int(np.prod(a.shape[:-2])) != 1:
        raise ValueError(f"a yolo output must be [1, rows, cols], got shape {list(a.shape)}")
    m = a.reshape(a.shape[-2:])
    if layout == "yolo8":
        m = m.T
        if m.shape[1] < 5:
            raise ValueError(f"a yolo8 output needs 4 + classes rows, got shape {list(a.shape)}")
        cls = m[:, 4:]
    else:
        if m.shape[1] < 6:
            raise ValueError(f"a yolo5 output needs 5 + classes columns, got shape {list(a.shape)}")
        cls = m[:, 5:] * m[:, 4:5]
    ids = np.argmax(cls, axis=1)
    return layout, ids, cls[np.arange(len(ids)), ids]


class OnnxVerifier(Verifier):
    """`onnx`: a detector model file run with cv2.dnn on the motion region; passes on a wanted class."""
    name = "onnx"

    def __init__(self, cfg: config.VerifierConfig, path: Path):
        self.cfg = cfg
        self.path = path
        if not path.is_file():
            raise config.ConfigError(f"verifier.model_path = {str(path)!r}: no such file (the onnx verifier "
                                     "needs a detector exported to ONNX; see docs/verifiers.md)")
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as e:
            raise config.ConfigError(f"verifier.model_path = {str(path)!r}: not a model OpenCV can load "
                                     f"({_first_line(e)})") from None
        # Run once now, so a wrong input size or an output we cannot read stops the daemon at start
        # rather than failing every event later.
        try:
            self.layout = self._detections(np.zeros((cfg.input_size, cfg.input_size, 3), np.uint8))[0]
        except (cv2.error, ValueError) as e:
            raise config.ConfigError(
                f"verifier.model_path = {str(path)!r}: the model does not run with input_size "
                f"{cfg.input_size} or gives an output this verifier cannot read ({_first_line(e)})") from None
        wanted = cfg.class_ids if cfg.class_ids is not None else ([1] if self.layout == "ssd" else [0])
        self.class_ids = np.array(wanted, dtype=int)

    def _detections(self, image: np.ndarray):
        cfg = self.cfg
        blob = cv2.dnn.blobFromImage(image, cfg.input_scale, (cfg.input_size, cfg.input_size),
                                     (cfg.input_mean,) * 3, swapRB=cfg.swap_rb, crop=False)
        self.net.setInput(blob)
        return _onnx_detections(self.net.forward(), cfg.output)

    def score(self, frame: np.ndarray, boxes: list[list[int]]) -> float:
        """The best score of a wanted class in the motion region of one frame; 0 if none."""
        x0, y0, x1, y1 = motion_region(frame.shape, boxes, self.cfg.region_pad)
        _layout, ids, scores = self._detections(frame[y0:y1, x0:x1])
        keep = np.isin(ids, self.class_ids)
        return float(scores[keep].max()) if keep.any() else 0.0

    def _check(self, frames, boxes):
        best = 0.0
        for i, frame in enumerate(frames):
            best = max(best, self.score(frame, boxes))
            if best >= self.cfg.score_threshold:
                return True, best, f"class {self.class_ids.tolist()} in frame {i + 1} (score {best:.2f})"
        return False, best, f"no class {self.class_ids.tolist()} above {self.cfg.score_threshold} (best {best:.2f})"


class TrainedVerifier(Verifier):
    """`trained`: the owner's own occupied / unoccupied classifier (app.camera.train) on the whole frame."""
    name = "trained"

    def __init__(self, cfg: config.VerifierConfig, path: Path):
        self.cfg = cfg
        try:
            self.model = train.load_model(path)
        except FileNotFoundError:
            raise config.ConfigError(f"verifier.trained_path = {str(path)!r}: no trained model yet; label "
                                     "events in Slack, then run `python3 -m app.camera.train`") from None
        except ValueError as e:
            raise config.ConfigError(f"verifier.trained_path = {str(path)!r}: {e}") from None

    def _check(self, frames, boxes):
        probs = [self.model.predict(frame) for frame in frames]
        best = max(probs)
        threshold = self.cfg.trained_threshold
        if best >= threshold:
            return True, best, f"classifier says occupied (p {best:.2f})"
        return False, best, f"classifier says unoccupied (p {best:.2f} < {threshold})"


class ChainVerifier(Verifier):
    """Stages in order; the event passes only if every stage passes (the first "no" stops)."""

    def __init__(self, stages: list[Verifier]):
        self.stages = stages
        self.name = "+".join(s.name for s in stages)

    def verify(self, frames, boxes) -> Verdict:
        start = time.perf_counter()
        verdict = None
        reasons = []
        for stage in self.stages:
            verdict = stage.verify(frames, boxes)
            reasons.append(f"{stage.name}: {verdict.reason}")
            if not verdict.passed:
                break
        return Verdict(verdict.passed, verdict.score, "; ".join(reasons), verdict.stage,
                       time.perf_counter() - start)


def _first_line(e: Exception) -> str:
    lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
    return lines[-1][:200] if lines else type(e).__name__


def build_verifier(cfg: config.VerifierConfig, data_dir: Path) -> Verifier:
    """The configured stage or chain; ConfigError with a clear message for a missing/bad model file."""
    stages: list[Verifier] = []
    for kind in cfg.kind:
        if kind == "none":
            continue
        if kind == "hog":
            stages.append(HogVerifier(cfg))
        elif kind == "onnx":
            if not cfg.model_path:
                raise config.ConfigError("verifier.kind includes onnx but verifier.model_path is not set")
            stages.append(OnnxVerifier(cfg, train.resolve(cfg.model_path, data_dir)))
        elif kind == "trained":
            stages.append(TrainedVerifier(cfg, train.trained_model_path(cfg, data_dir)))
    if not stages:
        return PassVerifier()
    return stages[0] if len(stages) == 1 else ChainVerifier(stages)
