"""The event store: ids that cannot escape the folder, atomic files, retention."""
import os
import time

from config import EventsConfig
from app.storage.events import EventStore, event_files, is_event_id, new_event_id


def test_event_ids_are_safe_and_sortable():
    a = new_event_id(1_700_000_000)
    assert is_event_id(a)
    for bad in ["../../etc/passwd", "20261124-015300-ABCDEF", "x", None, 5, a + "/"]:
        assert not is_event_id(bad)


def test_save_writes_images_then_metadata(tmp_path):
    store = EventStore(tmp_path, EventsConfig())
    meta = store.save({"id": new_event_id(), "area": 0.1}, b"jpeg", b"clean")
    files = event_files(tmp_path, meta["id"])
    assert files["snapshot"].read_bytes() == b"jpeg" and files["clean"].read_bytes() == b"clean"
    assert store.load(meta["id"])["snapshot"] == meta["snapshot"]
    assert not [p for p in files["meta"].parent.iterdir() if p.name.endswith(".tmp")]
    assert store.load("../x") is None


def make_event(store, when, size):
    meta = store.save({"id": new_event_id(when)}, b"x" * size, b"")
    for f in event_files(store.data_dir, meta["id"]).values():
        os.utime(f, (when, when))
    return meta["id"]


def test_retention_by_age(tmp_path):
    store = EventStore(tmp_path, EventsConfig(retention_days=1))
    now = time.time()
    old = make_event(store, now - 3 * 86400, 10)
    new = make_event(store, now - 60, 10)
    assert store.enforce_retention(now) == 1
    assert store.load(old) is None and store.load(new) is not None


def test_retention_by_total_size_deletes_oldest_first(tmp_path):
    store = EventStore(tmp_path, EventsConfig(max_total_mb=0.25))
    now = time.time()
    ids = [make_event(store, now - 100 + i, 100_000) for i in range(4)]
    store.enforce_retention(now)
    kept = [i for i in ids if store.load(i) is not None]
    assert kept == ids[-2:]
