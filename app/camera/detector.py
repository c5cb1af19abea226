"""Motion detection by running-average background subtraction: grey frame in, result out. No I/O.

The original system's pipeline (grey, blur, difference from a running average, threshold,
dilate, blob area), with three additions that keep it quiet through lighting and noise:

1. Global gain compensation: the background is scaled by the frame's overall brightness ratio
   before differencing, so a light switched, the camera re-exposing or flicker changes nothing.
2. A per-pixel noise model: each pixel's threshold grows with its own recent variability, so
   swaying trees, sensor noise at night and a shaking mount's edges stop counting.
3. A lighting test per tile: a changed region whose pixels are an affine function of the
   background's (darker or brighter, same texture) is a shadow or a cloud, not an object.
   An object hides the texture behind it, so its tiles do not fit.
4. A map of where the scene keeps moving (foliage, water, a flag, a screen): it learns within
   seconds where motion never stops and forgets slowly. A blob counts only for the part of it
   outside those busy places, so a tree or a screen neither keeps an event open for ever nor
   hides someone walking in, even through it (a person is larger than the busy part they cross).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from app.camera.clock import EPS, elapsed
from config import MotionConfig

TILE = 8            # lighting-test tile size in working pixels
FIT_NOISE = 3.0     # grey levels of residual a lighting change may leave in a tile...
FIT_SHARE = 0.35    # ...or this share of the tile's variance (light that varies across a tile: a penumbra)
NOISE_RATE = 0.02   # how fast the per-pixel noise estimate fades
NOISE_RISE = 0.2    # how fast it rises where a pixel keeps changing
NOISE_CAP = 20.0
REFRESH_EVERY = 4   # frames between rebuilds of the threshold map
SLOW_FACTOR = 0.1   # moving pixels learn this much slower, so a person standing still stays visible
MIN_SLOPE = 0.4    # a lighting change scales a tile's texture by at least this (and at most 1/this)
OBJECT_SHARE = 0.2  # share of a blob that must fail the lighting test for the blob to be an object
GAIN_ROUGH = 0.004  # mean squared detail of log(frame / background) in a tile above which it is an object
STIR_SHARE = 0.25   # share of min_area that must have changed in the last STIR_S for a blob to count
STIR_S = 0.1         # (the previous frame at 10 fps or less; a few frames back at 30 fps)
DARK = 20.0         # a tile this dark (mean grey, in the frame or the background) shows no texture to test
BUSY_RISE_S = 5.0   # a place that moves all the time is busy after about this long (0.7 x)...
BUSY_FADE_S = 60.0  # ...and is forgotten over about this long once it stops
BUSY = 0.5          # activity level above which a place is busy
BUSY_EDGE = 2       # pixels around a busy place that count as busy too
FRESH_SHARE = 0.5   # a blob counts when at least this share of it (and min_area) is outside busy places
SCALE_FIRST = 4     # a colour frame this many times the working width is scaled before the grey conversion


@dataclass
class MotionResult:
    """What the detector saw in one frame."""
    motion: bool                      # at least one moving blob at least min_area large
    area: float = 0.0                 # total area of the moving blobs, as a fraction of the frame
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h (working px)
    mask: np.ndarray | None = None    # foreground mask (working size, 0/255)
    reason: str = ""                  # why the frame was discounted: learning, lighting, noise


class MotionDetector:
    """Running-average background subtraction robust to lighting changes and noise."""

    def __init__(self, cfg: MotionConfig):
        self.cfg = cfg
        self.size: tuple[int, int] | None = None  # working (w, h)
        self.bg: np.ndarray | None = None          # float32 background
        self.noise: np.ndarray | None = None       # float32 per-pixel mean absolute deviation
        self.prev: np.ndarray | None = None        # previous prepared frame (uint8)
        self.last: np.ndarray | None = None        # this frame, prepared
        self.past: deque = deque()                 # (time, prepared frame) of the last STIR_S or so
        # Epoch seconds since which each foreground pixel has not changed: float64, since float32
        # steps in 128 s at 1.8e9 (ghosts would never be absorbed on a live camera).
        self.still: np.ndarray | None = None
        self.seen = 0                              # frames since the background was (re)started
        self.limit: np.ndarray | None = None       # per-pixel threshold, from the noise model
        self.keep: np.ndarray | None = None        # 255 where motion counts (outside ignore masks)
        self.activity: np.ndarray | None = None    # float32 0..1: how much of the recent time each pixel moved
        self.last_time: float | None = None        # time of the previous frame (for the activity rates)
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def reset(self) -> None:
        """Forget the background (after a camera move or re-arming); the next frame starts it again."""
        self.bg = None
        self.noise = None
        self.prev = None
        self.past.clear()
        self.still = None
        self.seen = 0
        self.limit = None
        self.activity = None
        self.last_time = None

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Scaled to the working width (never up), grey, blurred; uint8."""
        h, w = frame.shape[:2]
        if self.size is None:
            ww = min(self.cfg.width, w)
            self.size = (ww, max(1, round(h * ww / w)))
            self.keep = self._keep_mask(self.size)
        if frame.ndim == 3 and w >= SCALE_FIRST * self.size[0]:
            # A large colour frame is scaled first: converting 1920x1080 to grey costs more than
            # scaling its three channels (bench/frame.py); below that, grey first is cheaper.
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if grey.shape[::-1] != self.size:
            # Bilinear, not INTER_AREA: 8x cheaper at odd ratios, and the blur below smooths it.
            grey = cv2.resize(grey, self.size, interpolation=cv2.INTER_LINEAR)
        k = self.cfg.blur
        return cv2.GaussianBlur(grey, (k, k), 0) if k > 1 else grey

    def _keep_mask(self, size: tuple[int, int]) -> np.ndarray | None:
        if not self.cfg.masks:
            return None
        w, h = size
        keep = np.full((h, w), 255, np.uint8)
        for poly in self.cfg.masks:
            pts = np.array([[x * (w - 1), y * (h - 1)] for x, y in poly], np.int32)
            cv2.fillPoly(keep, [pts], 0)
        return keep

    def detect(self, frame: np.ndarray, now: float) -> MotionResult:
        """Compare a frame (BGR or grey, any size) taken at `now` (seconds) with the background, then learn."""
        grey = self.prepare(frame)
        self.last = grey                           # what the camera sees now (its tamper check reads it)
        cur = grey.astype(np.float32)
        if self.bg is None:
            self.bg, self.prev = cur, grey
            self.noise = np.full_like(cur, 1.0)
            self.still = np.full(grey.shape, now, np.float64)
            self.activity = np.zeros_like(cur)
            self.seen = 1
            self.last_time = now
            return MotionResult(False, reason="learning")

        bg, cfg = self.bg, self.cfg
        # 1. Overall brightness ratio: the median per-pixel ratio of a sparse sample (robust to a
        #    person in view, and unlike a ratio of medians, to a scene of two brightnesses).
        gain = float(np.median((cur[::6, ::6] + 4.0) / (bg[::6, ::6] + 4.0)))
        ref = bg * gain if abs(gain - 1.0) > 0.01 else bg
        diff = cv2.absdiff(cur, ref)

        # 2. Per-pixel threshold: the fixed one, or more where the pixel is always changing.
        #    (The threshold map follows the slow noise model, so it is rebuilt every few frames.)
        if self.limit is None or self.seen % REFRESH_EVERY == 0:
            self.limit = np.maximum(self.noise * cfg.noise_factor, np.float32(cfg.threshold))
        changed = cv2.compare(diff, self.limit, cv2.CMP_GT)
        if self.keep is not None:
            changed &= self.keep
        # Opening removes 1-2 px slivers: the edges a shaking mount or compression moves.
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, self.kernel)
        n_changed = cv2.countNonZero(changed)
        total = changed.size
        min_px = cfg.min_area * total

        result = MotionResult(False, mask=changed)
        lit = None
        if n_changed >= min_px * 0.5:
            objects_mask, boxes, area_px, lit = self._objects(cur, ref, changed, min_px)
            if objects_mask is None:
                result.reason = "lighting"
                if n_changed > total * cfg.max_area:
                    # Most of the picture changed and none of it is an object: re-learn at once.
                    self.bg = cur.copy()
            else:
                self._note_activity(now, objects_mask)
                mask, counted, area_px = self._outside_busy(objects_mask, boxes, min_px)
                earlier = self._earlier()
                stirring = [b for b in counted if self._stirs(grey, earlier, b, mask, min_px)]
                if len(stirring) < len(counted):
                    mask, area_px = self._only(mask, stirring)
                result.mask, result.boxes, result.area = mask, stirring, area_px / total
                result.motion = bool(stirring)
                if not result.motion:
                    result.reason = "still" if counted else ("busy" if boxes else "noise")
        elif n_changed:
            result.reason = "noise"
        if self.last_time != now:
            self._note_activity(now, None)

        self._learn(now, cur, grey, diff, result.mask if result.motion else None)
        if lit is not None:
            # Light that changed where no object is (a bank of lights, a shadow, a dimmed room)
            # is the background now: it must not linger for an object to merge with.
            if objects_mask is not None:
                lit &= objects_mask == 0
            self.bg[lit] = cur[lit]
        return result

    def _note_activity(self, now: float, moving: np.ndarray | None) -> None:
        """Raise the activity map where objects moved this frame; let it fade everywhere."""
        dt = min(max(now - self.last_time, 0.0), 1.0)   # a gap in the frames is not activity
        self.last_time = now
        if dt <= 0:
            return
        self.activity *= float(np.exp(-dt / BUSY_FADE_S))
        if moving is not None:
            m = moving > 0
            self.activity[m] += (1.0 - float(np.exp(-dt / BUSY_RISE_S))) * (1.0 - self.activity[m])

    def _stirs(self, grey, earlier, box, mask, min_px) -> bool:
        """Whether a blob changed in the last STIR_S: a step of light stays put once it has
        happened, someone in view keeps stirring (a still one is absorbed after absorb_s anyway)."""
        x, y, w, h = box
        now, before = grey[y:y + h, x:x + w], earlier[y:y + h, x:x + w]
        step = cv2.compare(cv2.absdiff(now, before), self.limit[y:y + h, x:x + w].astype(np.uint8), cv2.CMP_GT)
        return cv2.countNonZero(step & mask[y:y + h, x:x + w]) >= STIR_SHARE * min_px

    @staticmethod
    def _only(mask, boxes):
        """The mask cut down to these boxes, and its area in pixels."""
        kept = np.zeros_like(mask)
        for x, y, w, h in boxes:
            kept[y:y + h, x:x + w] = mask[y:y + h, x:x + w]
        return kept, int(cv2.countNonZero(kept))

    def _outside_busy(self, mask, boxes, min_px):
        """The blobs that still count once busy places are left out: mostly, and min_px, outside them."""
        busy = (self.activity > BUSY).astype(np.uint8)
        if not busy.any():
            return mask, boxes, int(cv2.countNonZero(mask))
        # The edge of a busy place moves less often than its middle, but belongs to it.
        busy = cv2.dilate(busy, self.kernel, iterations=BUSY_EDGE) > 0
        kept_mask = np.zeros_like(mask)
        kept, area = [], 0
        for x, y, w, h in boxes:
            blob = mask[y:y + h, x:x + w] > 0
            fresh = np.count_nonzero(blob & ~busy[y:y + h, x:x + w])
            if fresh >= min_px and fresh >= FRESH_SHARE * np.count_nonzero(blob):
                kept.append((x, y, w, h))
                kept_mask[y:y + h, x:x + w] |= mask[y:y + h, x:x + w]
                area += int(np.count_nonzero(blob))
        return kept_mask, kept, area

    def _objects(self, cur, ref, changed, min_px):
        """Blobs of changed pixels that a lighting change cannot explain (None: all lighting).

        Works inside the bounding box of the changed pixels (grown to whole tiles plus room for
        dilation): usually a small part of the frame, which keeps the Pi's CPU for other work.
        """
        h, w = changed.shape
        x, y, bw, bh = cv2.boundingRect(changed)
        pad = TILE * (1 + self.cfg.dilate // TILE)
        x0, y0 = max(0, (x - pad) // TILE * TILE), max(0, (y - pad) // TILE * TILE)
        x1, y1 = min(w, x + bw + pad), min(h, y + bh + pad)
        tw, th = (x1 - x0) // TILE, (y1 - y0) // TILE
        if tw == 0 or th == 0:
            return None, [], 0, None
        cx1, cy1 = x0 + tw * TILE, y0 + th * TILE  # whole tiles: INTER_AREA is fast at integer ratios
        c, r = cur[y0:cy1, x0:cx1], ref[y0:cy1, x0:cx1]
        # Per-tile least-squares fit cur ~ a * ref + b; the residual says whether the texture survived.
        small = lambda img: cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        m_c, m_r = small(c), small(r)
        v_r = small(r * r) - m_r * m_r
        v_c = small(c * c) - m_c * m_c
        cov = small(c * r) - m_c * m_r
        resid = v_c - cov * cov / np.maximum(v_r, 1.0)
        # A tile is an object when its residual is large, or when it gained contrast where the
        # background was flat (a shape appearing on a plain wall). A light dims or brightens
        # texture; it does not erase it (slope near 0) or invert it.
        slope = cov / np.maximum(v_r, 1.0)
        structural = (((resid > FIT_NOISE ** 2) & (resid > FIT_SHARE * v_c)) | ((v_r < 4.0) & (v_c > 16.0))
                      | ((v_r >= 4.0) & ((slope < MIN_SLOPE) | (slope > 1 / MIN_SLOPE))))
        # Light that changes across a tile (a penumbra, the edge of a lit zone) fits no single gain,
        # but leaves the ratio of frame to background smooth; an object puts its texture in it.
        if structural.any():
            ratio = cv2.log((c + 4.0) / (r + 4.0))
            rough = small(cv2.absdiff(ratio, cv2.blur(ratio, (5, 5))) ** 2)
            structural &= rough > GAIN_ROUGH
        # Where the light went (almost) out, or came on in the dark, texture vanishes or appears by
        # itself: the tile says nothing either way (a room dimmed to dark, a bank of lights).
        structural &= np.minimum(m_c, m_r) >= DARK
        touched = small(changed[y0:cy1, x0:cx1]) > 32
        objects = structural & touched
        lit = np.zeros((h, w), bool)       # changed pixels in tiles a lighting change explains
        lit[y0:cy1, x0:cx1] = cv2.resize((touched & ~structural).astype(np.uint8), (cx1 - x0, cy1 - y0),
                                         interpolation=cv2.INTER_NEAREST) > 0
        lit &= changed > 0
        if not objects.any():
            return None, [], 0, lit
        # Whole blobs of changed pixels count as one object when enough of them sits in object
        # tiles: a person's plain shirt fits "lighting" on its own, but belongs to the person.
        part = changed[y0:y1, x0:x1]
        fg = cv2.dilate(part, self.kernel, iterations=self.cfg.dilate) if self.cfg.dilate else part
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        in_object = np.zeros(fg.shape, bool)
        in_object[:cy1 - y0, :cx1 - x0] = cv2.resize(
            objects.astype(np.uint8), (cx1 - x0, cy1 - y0), interpolation=cv2.INTER_NEAREST) > 0
        object_px = np.bincount(labels[in_object & (fg > 0)], minlength=n)
        keep = np.zeros(n, bool)
        boxes, area = [], 0
        for i in range(1, n):
            bx, by, bw, bh, a = stats[i]
            if a >= min_px and object_px[i] >= OBJECT_SHARE * a:
                keep[i] = True
                boxes.append((int(bx + x0), int(by + y0), int(bw), int(bh)))
                area += int(a)
        mask = np.zeros((h, w), np.uint8)
        mask[y0:y1, x0:x1] = keep[labels].astype(np.uint8) * 255
        return mask, boxes, area, lit

    def _learn(self, now, cur, grey, diff, moving_mask) -> None:
        """Update the running average and the noise model; moving pixels learn slowly.

        The noise model is an upper envelope of each pixel's difference from the background,
        learned everywhere (so a tree flagged as moving still learns that it always moves) and
        capped, so a person passing raises it only a little. Foreground that has not changed for `absorb_s` seconds is taken into the
        background at once: a parked object or the ghost a person leaves where they stood.
        """
        # While the model is young, both averages are plain means of the frames seen so far,
        # so a fresh background is not just the first frame and noise is known within seconds.
        self.seen += 1
        rate = max(self.cfg.learning_rate, 1.0 / self.seen)
        young = 1.0 / self.seen
        if young > NOISE_RATE or self.seen % 2 == 0:
            # Rises fast where a pixel keeps changing, fades slowly in lulls (every other frame:
            # it moves slowly anyway, and the Pi's CPU is better spent elsewhere).
            capped = cv2.min(diff, NOISE_CAP)
            rising = cv2.compare(capped, self.noise, cv2.CMP_GT)
            cv2.accumulateWeighted(capped, self.noise, max(NOISE_RISE, young), mask=rising)
            cv2.accumulateWeighted(capped, self.noise, max(NOISE_RATE, young), mask=cv2.bitwise_not(rising))
        if moving_mask is None:
            cv2.accumulateWeighted(cur, self.bg, rate)
            self.still.fill(now)
        else:
            cv2.accumulateWeighted(cur, self.bg, rate, mask=cv2.bitwise_not(moving_mask))
            cv2.accumulateWeighted(cur, self.bg, rate * SLOW_FACTOR, mask=moving_mask)
            static = (moving_mask > 0) & (cv2.absdiff(grey, self.prev) < self.cfg.threshold)
            self.still[~static] = now
            settled = static & (now - self.still >= self.cfg.absorb_s - EPS)
            if settled.any():
                self.bg[settled] = cur[settled]
                self.still[settled] = now
        self.prev = grey
        # Stirring is judged against the frame STIR_S ago, whatever the frame rate (at 30 fps a
        # person moves little from one frame to the next).
        self.past.append((now, grey))
        while len(self.past) > 1 and elapsed(now, self.past[1][0], STIR_S):
            self.past.popleft()     # the next frame compares with past[0] or a newer one

    def _earlier(self) -> np.ndarray:
        """The newest kept frame at least STIR_S older than the one being judged (else the oldest)."""
        now = self.last_time
        for t, frame in reversed(self.past):
            if elapsed(now, t, STIR_S):
                return frame
        return self.past[0][1] if self.past else self.prev
