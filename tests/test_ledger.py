"""The S3 upload ledger: one appended line per confirmation, whatever its size; nothing lost to a crash."""
from app.storage import ledger
from app.storage.ledger import Ledger

TARGET = {"endpoint": None, "bucket": "pycam-test"}


def entry(n: int) -> dict:
    return {"key": f"pycam/door/events/{n}.jpg", "size": n, "sha256": "ab" * 32, "md5": "cd" * 16, "time": 1.0}


def test_a_confirmation_appends_a_line_and_never_rewrites_the_ledger(tmp_path):
    book = Ledger(tmp_path, TARGET)
    for n in range(2000):                       # a large ledger, folded once into its snapshot
        book.record("events", f"e{n:05d}", entry(n))
    book.fold()
    snapshot = (tmp_path / "uploads.json").stat()
    for n in range(2000, 2100):
        book.record("events", f"e{n:05d}", entry(n))
    book.sync()
    assert (tmp_path / "uploads.json").stat().st_mtime_ns == snapshot.st_mtime_ns   # untouched
    assert len((tmp_path / "uploads.log").read_text().splitlines()) == 100
    assert len(ledger.read(tmp_path, TARGET)[0]["events"]) == 2100


def test_a_restart_after_a_torn_line_keeps_every_whole_one(tmp_path):
    book = Ledger(tmp_path, TARGET)
    book.record("events", "e1", entry(1))
    book.record("training", "t1", entry(2))
    book.record("manifest", None, entry(3))
    book.record("events", "e1", None)             # retention removed it: forgotten
    book.record("events", "e2", entry(4))
    book.close()
    with open(tmp_path / "uploads.log", "a") as f:
        f.write('{"section": "events", "id": "e3", "en')          # power cut mid-line
    again = Ledger(tmp_path, TARGET)
    assert again.entries["events"] == {"e2": entry(4)}
    assert again.entries["training"] == {"t1": entry(2)} and again.entries["manifest"] == entry(3)
    # Folded at start: one snapshot holds it all, and the journal starts empty.
    assert (tmp_path / "uploads.log").read_text() == ""
    assert ledger.read(tmp_path, TARGET)[0] == again.entries


def test_the_journal_is_folded_once_it_outgrows_the_ledger(tmp_path):
    book = Ledger(tmp_path, TARGET)
    for n in range(ledger.MIN_FOLD_LINES + 1):
        book.record("events", "same", entry(n))  # one entry, rewritten: the journal grows, the ledger not
    assert book.lines == 0 and len(book.entries["events"]) == 1
    assert ledger.read(tmp_path, TARGET)[0]["events"]["same"] == entry(ledger.MIN_FOLD_LINES)


def test_another_bucket_starts_a_new_ledger(tmp_path):
    Ledger(tmp_path, TARGET).record("events", "e1", entry(1))
    other = Ledger(tmp_path, {"endpoint": None, "bucket": "elsewhere"})
    assert other.entries["events"] == {}


def test_a_large_ledger_is_folded_only_once_its_journal_is_longer(tmp_path):
    """Rewrites stay rare: a ledger of 1,500 entries is rewritten after 1,500 more lines, not 1,000."""
    book = Ledger(tmp_path, TARGET)
    for n in range(1500):
        book.entries["events"][f"e{n:05d}"] = entry(n)
    book.fold()
    for n in range(1200):
        book.record("training", "relabelled", entry(n))      # one sample, moved again and again
    assert book.lines == 1200                       # past the floor, short of the ledger: appended
    for n in range(1200, 1600):
        book.record("training", "relabelled", entry(n))
    assert book.lines < 400                         # folded once it outgrew the ledger
    assert ledger.read(tmp_path, TARGET)[0]["training"] == {"relabelled": entry(1599)}
