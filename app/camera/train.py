"""Fit the owner's own "is someone there?" classifier from the Slack labels: `python3 -m app.camera.train`.

Reads training/<event id>.jpg and training/labels.json (written by the Slack app), computes cheap
features (a gradient-orientation histogram grid and a tiny normalised grey image of the whole
frame), fits an L2-regularised logistic regression with numpy (no GPU, no extra dependency),
reports cross-validated precision and recall for "occupied", and saves the model as an .npz of
plain arrays (loaded with allow_pickle=False) for the `trained` verifier stage.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import config
from app import utils
from app.storage import labels

log = logging.getLogger(__name__)

FORMAT = "pycam-trained-v1"
GRID = (128, 72)      # the frame is reduced to this (w, h) for the gradient histograms
CELL = 8              # pixels per histogram cell
BINS = 9              # unsigned orientation bins
THUMB = (32, 18)      # tiny grey image (w, h)


class TooFewLabels(Exception):
    """Not enough labelled images of one kind to learn anything."""


def features(frame: np.ndarray) -> np.ndarray:
    """A fixed-length float32 vector describing a whole BGR (or grey) frame of any size."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, GRID, interpolation=cv2.INTER_AREA).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=1)
    mag, ang = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    bins = (np.mod(ang, 180.0) * (BINS / 180.0)).astype(int) % BINS
    ch, cw = GRID[1] // CELL, GRID[0] // CELL
    # Sum magnitudes per (cell row, cell col, bin): one histogram per 8x8 cell.
    rows = np.arange(GRID[1])[:, None] // CELL
    cols = np.arange(GRID[0])[None, :] // CELL
    index = (rows * cw + cols) * BINS + bins
    hist = np.bincount(index.ravel(), weights=mag.ravel(), minlength=ch * cw * BINS).astype(np.float32)
    # Square-root and normalise, so a brighter or darker exposure of the same scene looks the same.
    hist = np.sqrt(hist)
    hist /= np.linalg.norm(hist) + 1e-6
    thumb = cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-6)
    return np.concatenate([hist * np.sqrt(hist.size), thumb * 0.5]).astype(np.float32)


@dataclass
class Model:
    """Logistic regression on standardised features: p(occupied) = sigmoid(w . (x - mean) / std + b)."""
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    std: np.ndarray
    info: dict

    def probability(self, x: np.ndarray) -> np.ndarray:
        """p(occupied) for each row of a feature matrix."""
        z = ((x - self.mean) / self.std) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def predict(self, frame: np.ndarray) -> float:
        """p(occupied) for one frame."""
        return float(self.probability(features(frame)[None, :])[0])

    def to_bytes(self) -> bytes:
        """The model as an .npz of plain arrays (no pickled objects)."""
        buf = io.BytesIO()
        np.savez(buf, format=np.array(FORMAT), weights=self.weights.astype(np.float32),
                 bias=np.array(self.bias, dtype=np.float64), mean=self.mean.astype(np.float32),
                 std=self.std.astype(np.float32), info=np.array(json.dumps(self.info)))
        return buf.getvalue()


def load_model(path: Path) -> Model:
    """Read a model saved by this module; ValueError with the reason when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise ValueError(f"not a {FORMAT} model (format {str(z['format'])!r})")
            model = Model(z["weights"].astype(np.float32), float(z["bias"]), z["mean"].astype(np.float32),
                          z["std"].astype(np.float32), json.loads(str(z["info"])))
    except ValueError:
        raise
    except Exception as e:  # zip, key and JSON errors all mean "not our file"
        raise ValueError(f"not a trained model file ({type(e).__name__}: {e})") from None
    n = len(features(np.zeros((GRID[1], GRID[0]), np.uint8)))
    if model.weights.shape != (n,) or model.mean.shape != (n,) or model.std.shape != (n,):
        raise ValueError(f"model expects {model.weights.shape} features, this version makes {n}: retrain")
    return model


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 300) -> Model:
    """L2-regularised logistic regression by full-batch gradient descent, classes weighted equally."""
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-3
    xs = (x - mean) / std
    n, d = xs.shape
    # Each class carries half the loss, so a pile of "unoccupied" labels cannot drown the others.
    sample_w = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, n - y.sum()))
    w = np.zeros(d, dtype=np.float64)
    b = 0.0
    # Step size from the Lipschitz bound of the weighted loss (largest eigenvalue / 4), so no tuning.
    lipschitz = 0.25 * np.linalg.norm(xs * np.sqrt(sample_w)[:, None], 2) ** 2 + l2 / n
    lr = 1.0 / lipschitz
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w + b, -30, 30)))
        g = (p - y) * sample_w
        w -= lr * (xs.T @ g + (l2 / n) * w)
        b -= lr * g.sum()
    return Model(w.astype(np.float32), float(b), mean.astype(np.float32), std.astype(np.float32), {})


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, **kw) -> dict:
    """Stratified k-fold precision and recall of "occupied" at p >= 0.5."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold_of[idx] = np.arange(len(idx)) % folds
    tp = fp = fn = tn = 0
    for k in range(folds):
        test = fold_of == k
        model = fit(x[~test], y[~test], **kw)
        pred = model.probability(x[test]) >= 0.5
        truth = y[test] == 1
        tp += int(np.sum(pred & truth))
        fp += int(np.sum(pred & ~truth))
        fn += int(np.sum(~pred & truth))
        tn += int(np.sum(~pred & ~truth))
    return {"folds": folds, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0}


def load_dataset(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature matrix, labels (1 = occupied) and event ids of every readable labelled image."""
    manifest = labels.read_manifest(data_dir)
    where = labels.training_dir(data_dir) / labels.MANIFEST
    if manifest.raw is None:
        raise TooFewLabels(f"no readable labels file at {where}: label events with the Occupied / "
                           "Unoccupied buttons in Slack first (training mode)")
    for bad in manifest.bad:
        log.warning("Skipping label entry %r: bad event id or label", bad)
    xs, ys, ids = [], [], []
    for event_id, label in sorted(manifest.labels.items()):
        image = cv2.imread(str(labels.image_path(data_dir, event_id)))
        if image is None:
            log.warning("Skipping %s: its image is missing or unreadable", event_id)
            continue
        xs.append(features(image))
        ys.append(1 if label == "occupied" else 0)
        ids.append(event_id)
    if not xs:
        return np.zeros((0, 0), np.float32), np.zeros(0, int), ids
    return np.stack(xs), np.array(ys), ids


def train(data_dir: Path, out: Path, min_labels: int = 10, folds: int = 5) -> dict:
    """Load the data dir's training data, cross-validate, fit on everything and save atomically."""
    start = time.monotonic()
    x, y, ids = load_dataset(data_dir)
    occupied, unoccupied = int(np.sum(y == 1)), int(np.sum(y == 0))
    if occupied < min_labels or unoccupied < min_labels:
        raise TooFewLabels(
            f"too few labelled images to train: {occupied} occupied and {unoccupied} unoccupied in "
            f"{labels.training_dir(data_dir)}; at least {min_labels} of each are needed. Turn on training mode "
            "(/training_on in Slack) and press Occupied / Unoccupied on more alerts.")
    folds = max(2, min(folds, occupied, unoccupied))
    cv = cross_validate(x, y, folds=folds)
    model = fit(x, y)
    seconds = time.monotonic() - start
    model.info = {"trained_at": time.time(), "occupied": occupied, "unoccupied": unoccupied,
                  "cv_precision": cv["precision"], "cv_recall": cv["recall"], "folds": folds,
                  "train_seconds": round(seconds, 3)}
    utils.atomic_write_bytes(out, model.to_bytes())
    return {**model.info, **cv, "path": str(out)}


def trained_model_path(cfg: config.VerifierConfig, data_dir: Path) -> Path:
    """Where this module saves and the `trained` verifier stage loads the classifier."""
    return resolve(cfg.trained_path, data_dir) if cfg.trained_path else Path(data_dir) / "models" / "trained.npz"


def resolve(path: str, data_dir: Path) -> Path:
    """A model path from the settings: relative paths are inside the data dir."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(data_dir) / p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m app.camera.train", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to save the model (default: verifier.trained_path "
                                             "or <data_dir>/models/trained.npz)")
    ap.add_argument("--min-labels", type=int, default=10, help="least labels of each kind (default 10)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    args = ap.parse_args(argv)
    settings = config.load_or_exit()
    utils.setup_logging("train", settings.log_level)
    out = args.out or trained_model_path(settings.verifier, settings.data_dir)
    try:
        report = train(settings.data_dir, out, min_labels=max(2, args.min_labels), folds=args.folds)
    except TooFewLabels as e:
        print(f"pycam train: {e}", file=sys.stderr)
        return 2
    print(f"trained on {report['occupied']} occupied + {report['unoccupied']} unoccupied images "
          f"in {report['train_seconds']:.1f} s")
    print(f"{report['folds']}-fold cross-validated: precision {report['precision']:.2f}, "
          f"recall {report['recall']:.2f} (occupied = positive; tp {report['tp']} fp {report['fp']} "
          f"fn {report['fn']} tn {report['tn']})")
    print(f"saved {report['path']}; use it with verifier.kind: [hog, trained] (or PYCAM_VERIFIER=hog,trained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
