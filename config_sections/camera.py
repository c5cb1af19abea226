"""Camera, motion detection, event trigger, event store, pan-tilt and verifier settings."""
from __future__ import annotations

from typing import Literal

from config_sections.model import Field, field_validator

from config_sections.base import Section


class CameraConfig(Section):
    name: str = Field("pycam", pattern=r"^[A-Za-z0-9_-]{1,40}\Z",
                      description="Camera name, used in S3 keys and Slack messages.")
    source: str = Field("auto", min_length=1, description=(
        "auto (the Pi camera where picamera2 is installed, else USB camera 0) | picamera2 | picamera | "
        "a USB device index (0) | an rtsp:// or http:// URL | a video file | an image sequence pattern "
        "such as input/in%06d.jpg. `make run` plays the bundled sample clip instead."))
    width: int = Field(1280, ge=160, le=4056, description="Snapshot (main stream) width for Pi/USB cameras.")
    height: int = Field(720, ge=120, le=3040, description="Snapshot (main stream) height for Pi/USB cameras.")
    fps: float = Field(10.0, gt=0, le=60, description="Frame rate requested from Pi/USB cameras.")
    realtime: bool = Field(True, description="Play a file at its own frame rate (as a live camera would).")
    loop: bool = Field(True, description="Start a file again from the beginning when it ends (the demo).")
    reopen_max_s: float = Field(30.0, ge=1, le=3600, description="Longest wait between attempts to reopen a lost source.")


class MotionConfig(Section):
    width: int = Field(320, ge=80, le=1280, description="Working width in pixels; frames are scaled down to it.")
    blur: int = Field(5, ge=1, le=51, description="Gaussian blur kernel size (odd) applied before differencing.")
    learning_rate: float = Field(0.02, gt=0, le=1, description="Weight of each new frame in the running-average background.")
    threshold: int = Field(20, ge=1, le=255, description="Minimum grey-level difference from the background for a pixel to count.")
    noise_factor: float = Field(4.0, ge=0, le=20, description=(
        "Per-pixel threshold also grows with that pixel's own recent variability times this factor, "
        "so swaying trees and flicker do not count; 0 disables."))
    dilate: int = Field(2, ge=0, le=10, description="Dilation iterations that join the parts of one moving object.")
    min_area: float = Field(0.001, gt=0, le=1, description="Smallest moving blob that counts, as a fraction of the frame.")
    max_area: float = Field(0.6, gt=0, le=1, description=(
        "A change covering more than this fraction of the frame is a global lighting change, not motion."))
    lighting_ratio: float = Field(0.5, ge=0, le=1, description=(
        "A frame is a lighting change when at least this share of its changed pixels changed brightness "
        "the same way everywhere (gain correction fails to explain it otherwise)."))
    absorb_s: float = Field(1.5, ge=0.1, le=3600, description=(
        "Foreground that stays unchanged this many seconds joins the background (a parked object, "
        "the ghost a person leaves where they stood), ending its event."))
    masks: list[list[tuple[float, float]]] = Field(default_factory=list, description=(
        "Ignore polygons, each a list of [x, y] points as fractions of the frame width and height."))

    @field_validator("blur")
    @classmethod
    def _odd_blur(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be an odd number")
        return v

    @field_validator("masks")
    @classmethod
    def _mask_points(cls, v):
        for poly in v:
            if len(poly) < 3:
                raise ValueError("each mask needs at least 3 points")
            for x, y in poly:
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    raise ValueError("mask points are fractions of the frame, between 0 and 1")
        return v


class TriggerConfig(Section):
    min_motion_frames: int = Field(3, ge=1, le=100, description="Consecutive-ish moving frames needed before an alert.")
    window_frames: int = Field(5, ge=1, le=300, description="Window in which min_motion_frames must be seen.")
    cooldown_s: float = Field(5.0, ge=0, le=86400, description="Least time between two alerts.")
    end_after_s: float = Field(1.5, ge=0.5, le=600, description="An event ends after this long without motion.")
    warmup_s: float = Field(3.0, ge=0, le=120, description="Background learning time after start, re-arm or a camera move, with no alerts.")


class EventsConfig(Section):
    retention_days: float = Field(30, gt=0, le=3650, description="Events older than this are deleted.")
    max_total_mb: float = Field(2000, gt=0, description="Oldest events are deleted while the events folder is larger than this.")
    jpeg_quality: int = Field(85, ge=30, le=100, description="Snapshot JPEG quality.")
    stream_maxlen: int = Field(10000, ge=100, description="Approximate cap on the Redis `events` stream.")


class ClipsConfig(Section):
    enabled: bool = Field(True, description="Record a short clip of each event, posted in its Slack thread.")
    pre_s: float = Field(2.0, ge=0, le=10, description="Seconds before the trigger kept in memory and put in the clip.")
    post_s: float = Field(3.0, ge=0, le=30, description="Seconds recorded after the motion ends.")
    max_s: float = Field(30.0, ge=2, le=300, description=(
        "A clip ends at most this long after its trigger (the pre-roll comes on top): a longer event is cut here."))
    width: int = Field(640, ge=160, le=1920, description="Clip width in pixels (the height follows the camera's).")
    fps: float = Field(10.0, gt=0, le=30, description="Clip frame rate (frames are dropped or repeated to keep time).")
    encoder: Literal["auto", "h264_v4l2m2m", "libx264", "gif"] = Field("auto", description=(
        "auto: the Pi's hardware H.264 encoder through ffmpeg where there is one, else ffmpeg's "
        "libx264, else an animated GIF (no ffmpeg installed)."))


class PanTiltConfig(Section):
    enabled: Literal["auto", "on", "off"] = Field("auto", description="auto: use the HAT when one answers on I2C.")
    settle_s: float = Field(1.0, ge=0, le=10, description="Wait after a move before re-learning the background.")


class VerifierConfig(Section):
    kind: list[Literal["none", "hog", "onnx", "trained"]] = Field(default_factory=lambda: ["none"], description=(
        "Verification stages run on each event before notifying, in order."))
    hog_threshold: float = Field(0.5, ge=0, le=10, description=(
        "hog: least people-detector score (SVM margin) that counts as a person."))
    hog_person_px: int = Field(160, ge=128, le=512, description=(
        "hog: the motion region is scaled so the moving object is about this tall (the window is 128)."))
    hog_max_upscale: float = Field(2.0, ge=1, le=4, description="hog: never enlarge the region more than this.")
    hog_max_pixels: int = Field(120_000, ge=20_000, le=2_000_000, description=(
        "hog: cap on the scaled region's area (its cost on a Pi grows with it)."))
    region_pad: float = Field(0.2, ge=0, le=1, description="hog/onnx: context added around the motion boxes, as a fraction of their size.")
    hog_edge_px: int = Field(32, ge=0, le=128, description="hog: margin (edge pixels repeated) where the region meets the frame edge.")
    hog_stride: int = Field(8, ge=8, le=32, description="hog: window stride in pixels (multiple of 8; larger is faster).")
    hog_scale: float = Field(1.05, gt=1, le=2, description="hog: image pyramid step (larger is faster, misses more).")
    model_path: str | None = Field(None, description="ONNX detector file for the onnx stage (relative: to data_dir).")
    input_size: int = Field(300, ge=32, le=1280, description="onnx: the model's square input size in pixels.")
    input_scale: float = Field(1 / 255, gt=0, le=1, description="onnx: pixel multiplier (1/255 for YOLO, 1/127.5 for MobileNet-SSD).")
    input_mean: float = Field(0.0, ge=0, le=255, description="onnx: subtracted from each pixel before scaling (127.5 for MobileNet-SSD).")
    swap_rb: bool = Field(True, description="onnx: feed RGB (most exports) rather than OpenCV's BGR.")
    output: Literal["auto", "ssd", "yolo5", "yolo8"] = Field("auto", description=(
        "onnx: output layout: ssd [1,1,N,7], yolo5 [1,N,5+C], yolo8 [1,4+C,N]; auto picks by shape."))
    class_ids: list[int] | None = Field(None, description=(
        "onnx: class ids that count; unset means person: 1 for SSD (0 is background), 0 for YOLO."))
    score_threshold: float = Field(0.5, gt=0, lt=1, description="onnx: least detection score that counts.")
    trained_path: str | None = Field(None, description="trained: classifier file; unset means <data_dir>/models/trained.npz.")
    trained_threshold: float = Field(0.5, gt=0, lt=1, description="trained: least 'occupied' probability that passes.")

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [s.strip() for s in v.split(",")] if isinstance(v, str) else v

    @field_validator("hog_stride")
    @classmethod
    def _stride_multiple_of_8(cls, v: int) -> int:
        if v % 8:
            raise ValueError("must be a multiple of 8 (the HOG block stride)")
        return v
