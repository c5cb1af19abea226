"""The training labels: one reader and writer of labels.json that the Slack app, s3_upload and
app.camera.train all go through, so they agree on what a valid entry is."""
import json
import threading

import pytest

from app.storage import events, labels
from config import EventsConfig

A, B, C = "20261124-010000-aaaaaa", "20261124-020000-bbbbbb", "20261125-030000-cccccc"


def add_event(data_dir, event_id):
    store = events.EventStore(data_dir, EventsConfig())
    return store.save({"id": event_id, "time": 1.0, "camera": "door"}, b"snap", b"clean-" + event_id.encode())


def test_only_well_formed_labels_count():
    good, bad = labels.valid_labels({
        A: {"label": "occupied"}, B: {"label": "maybe"}, "../../etc": {"label": "occupied"}, C: "x"})
    assert good == {A: "occupied"}
    assert len(bad) == 3
    assert labels.valid_labels(["not", "a", "dict"]) == ({}, [])


def test_every_reader_sees_what_the_writer_wrote(tmp_path):
    add_event(tmp_path, A)
    entry = labels.record_label(tmp_path, A, "occupied", "U1", "alice", now=5.0)
    assert entry["camera"] == "door" and entry["labelled_at"] == 5.0
    assert labels.image_path(tmp_path, A).read_bytes() == b"clean-" + A.encode()
    manifest = labels.read_manifest(tmp_path)
    assert manifest.labels == {A: "occupied"} and manifest.error is None
    assert json.loads(manifest.raw)[A]["user_name"] == "alice"
    labels.record_label(tmp_path, A, "unoccupied", "U2", "bob")    # a second click changes it in place
    assert labels.read_manifest(tmp_path).labels == {A: "unoccupied"}


def test_bad_input_changes_nothing(tmp_path):
    add_event(tmp_path, A)
    with pytest.raises(ValueError):
        labels.record_label(tmp_path, A, "maybe", "U1", "alice")
    with pytest.raises(ValueError):
        labels.record_label(tmp_path, "../../etc/passwd", "occupied", "U1", "alice")
    with pytest.raises(FileNotFoundError):
        labels.record_label(tmp_path, B, "occupied", "U1", "alice")    # no such event
    assert not labels.training_dir(tmp_path).joinpath(labels.MANIFEST).exists()
    with pytest.raises(ValueError):
        labels.image_path(tmp_path, "../x")


def test_an_unreadable_manifest_says_why(tmp_path):
    assert labels.read_manifest(tmp_path).raw is None              # none yet: empty, no error
    folder = labels.training_dir(tmp_path)
    folder.mkdir()
    (folder / labels.MANIFEST).write_text("[1, 2]")
    assert "not a JSON object" in labels.read_manifest(tmp_path).error
    (folder / labels.MANIFEST).write_text("{broken")
    assert "cannot read" in labels.read_manifest(tmp_path).error


def test_concurrent_writers_lose_no_label(tmp_path):
    ids = [f"20261124-0100{i:02d}-aaaaaa" for i in range(20)]
    for event_id in ids:
        add_event(tmp_path, event_id)
    threads = [threading.Thread(target=labels.record_label, args=(tmp_path, e, "occupied", "U", "u")) for e in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(labels.read_manifest(tmp_path).labels) == ids
