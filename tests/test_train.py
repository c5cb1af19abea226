"""`python3 -m app.camera.train`: fits the owner's classifier from a labelled training folder made here."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import config
from app import utils
from app.camera import train, verifier
from tests.conftest import ROOT

# The bundled sample clip: a person is visible in these frame intervals, the room is empty elsewhere.
SAMPLE = ROOT / "sample" / "one-by-one-person-detection.mp4"
INTERVALS = [(60, 199), (227, 449), (502, 700), (744, 869)]
LAST = 900


def label_of(i: int) -> str | None:
    """occupied / unoccupied, or None for frames too near an edge of an interval to be sure."""
    if any(s + 10 <= i <= e - 10 for s, e in INTERVALS):
        return "occupied"
    if all(i < s - 5 or i > e + 5 for s, e in INTERVALS):
        return "unoccupied"
    return None


@pytest.fixture(scope="module")
def sample_frames() -> dict[int, np.ndarray]:
    """Every 6th frame of the sample clip up to LAST, at half size (enough for a whole-frame classifier)."""
    if not SAMPLE.is_file():
        pytest.skip("sample/one-by-one-person-detection.mp4 is missing from the checkout")
    cap = cv2.VideoCapture(str(SAMPLE))
    frames, i = {}, 0
    while i <= LAST:
        ok, frame = cap.read()
        if not ok:
            break
        if i % 6 == 0:
            frames[i] = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2))
        i += 1
    return frames


def make_training_folder(folder, frames: dict[int, np.ndarray], ids: list[int]) -> None:
    """training/<id>.jpg and labels.json as the Slack app writes them, for the chosen frame numbers."""
    labels = {}
    for n, i in enumerate(ids):
        event_id = f"20260102-03{n // 60:02d}{n % 60:02d}-{i:06x}"
        ok, jpg = cv2.imencode(".jpg", frames[i])
        utils.atomic_write_bytes(folder / f"{event_id}.jpg", jpg.tobytes())
        labels[event_id] = {"event_id": event_id, "label": label_of(i), "user_id": "U0TEST",
                            "user_name": "owner", "labelled_at": 1767322800.0 + n,
                            "event_time": 1767322800.0 + n, "camera": "pycam"}
    utils.atomic_write_json(folder / "labels.json", labels)


def split(frames):
    """Labelled frame numbers for training, and a few held out, of each kind."""
    occupied = [i for i in frames if label_of(i) == "occupied"]
    empty = [i for i in frames if label_of(i) == "unoccupied"]
    held = occupied[5::12] + empty[3::8]
    return [i for i in occupied + empty if i not in held], held


def test_train_learns_the_owner_labels_and_the_trained_stage_uses_them(tmp_path, sample_frames):
    folder = tmp_path / "training"
    train_ids, held = split(sample_frames)
    make_training_folder(folder, sample_frames, train_ids)
    out = tmp_path / "models" / "trained.npz"
    report = train.train(tmp_path, out)
    assert report["occupied"] >= 10 and report["unoccupied"] >= 10
    assert report["precision"] >= 0.8 and report["recall"] >= 0.8, report
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["trained.npz"]  # no temp left
    # The saved file is plain arrays: it loads without pickle.
    with np.load(out, allow_pickle=False) as z:
        assert str(z["format"]) == train.FORMAT
    stage = verifier.build_verifier(config.VerifierConfig(kind="trained"), tmp_path)
    assert stage.name == "trained"
    right = [stage.verify([sample_frames[i]], []).passed == (label_of(i) == "occupied") for i in held]
    assert sum(right) >= len(held) - 1, f"held-out frames {held}: {right}"


def test_too_few_labels_of_one_kind_is_refused_and_nothing_is_saved(tmp_path, sample_frames, capsys,
                                                                    clean_env):
    folder = tmp_path / "data" / "training"
    occupied = [i for i in sample_frames if label_of(i) == "occupied"][:15]
    empty = [i for i in sample_frames if label_of(i) == "unoccupied"][:4]
    make_training_folder(folder, sample_frames, occupied + empty)
    with pytest.raises(train.TooFewLabels, match="15 occupied and 4 unoccupied"):
        train.train(tmp_path / "data", tmp_path / "model.npz")
    clean_env.setenv("PYCAM_DATA_DIR", str(tmp_path / "data"))
    assert train.main([]) == 2
    assert "at least 10 of each" in capsys.readouterr().err
    assert not (tmp_path / "data" / "models").exists()


def test_missing_labels_file_is_a_clear_refusal(tmp_path):
    with pytest.raises(train.TooFewLabels, match="no readable labels file"):
        train.train(tmp_path, tmp_path / "model.npz")


def test_bad_entries_are_skipped_not_followed(tmp_path, sample_frames):
    folder = tmp_path / "training"
    make_training_folder(folder, sample_frames, [i for i in sample_frames if label_of(i)][:6])
    labels = json.loads((folder / "labels.json").read_text())
    labels["../../etc/passwd"] = {"label": "occupied"}
    labels["20260102-030000-ffffff"] = {"label": "maybe"}
    labels["20260102-030001-eeeeee"] = {"label": "occupied"}   # labelled but its image is missing
    utils.atomic_write_json(folder / "labels.json", labels)
    x, y, ids = train.load_dataset(tmp_path)
    assert len(ids) == 6 and "../../etc/passwd" not in ids and x.shape[0] == 6


def test_command_line_trains_and_reports(tmp_path, sample_frames):
    train_ids, _held = split(sample_frames)
    make_training_folder(tmp_path / "data" / "training", sample_frames, train_ids[::2])
    env = {"PATH": os.environ.get("PATH", ""), "PYCAM_DATA_DIR": str(tmp_path / "data"), "PYCAM_ENV_FILE": "",
           "PYCAM_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    run = subprocess.run([sys.executable, "-m", "app.camera.train"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "cross-validated: precision" in run.stdout and "recall" in run.stdout
    assert (tmp_path / "data" / "models" / "trained.npz").is_file()
