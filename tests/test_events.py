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
        if f.exists():
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


def test_clips_count_towards_the_size_cap_and_go_with_their_event(tmp_path):
    store = EventStore(tmp_path, EventsConfig(max_total_mb=0.01))     # 10 kB
    first = make_event(store, time.time() - 10, 1000)
    clip = event_files(tmp_path, first)["clip"]
    clip.write_bytes(b"c" * 6000)                   # its clip, recorded once the event ended
    store.update(store.load(first))
    assert store.total >= 7000
    assert EventStore(tmp_path, EventsConfig()).scan().total == store.total   # a restart counts it too
    second = make_event(store, time.time(), 4000)   # no room for both: the oldest goes, clip and all
    assert store.load(first) is None and not clip.exists()
    assert store.load(second) is not None


def test_events_written_during_the_scan_are_counted_once_and_nothing_is_evicted_before_it(tmp_path):
    """The camera writes (even on a full card) while its store is scanned on a thread: nothing is
    deleted on a partial view, and the scan's result counts every event exactly once."""
    from app.storage.events import EventStore, new_event_id
    from config import EventsConfig
    cfg = EventsConfig(max_total_mb=0.004)          # room for one event of 4 KB
    old = EventStore(tmp_path, cfg)
    first = old.save({"id": new_event_id(time.time() - 60)}, b"s" * 1000, b"c" * 1000)["id"]
    store = EventStore(tmp_path, cfg)
    store.scanning = True
    scan = store.scan()
    second = store.save({"id": new_event_id()}, b"s" * 1000, b"c" * 1000)["id"]
    assert not store.evict_oldest() and store.enforce_retention() == 0      # no partial view acted on
    store.install(scan)
    on_disk = sum(f.stat().st_size for f in store.root.rglob("*") if f.is_file())
    assert list(store.index) == [first, second] and store.total == on_disk
    assert store.enforce_retention() == 1 and list(store.index) == [second]  # the cap, from now on
