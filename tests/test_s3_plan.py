"""The uploader's pure planning: keys, what to send or move, what retention may delete."""
from app.storage import plan
from app.storage.s3 import mismatch

A, B, C = "20261124-010000-aaaaaa", "20261124-020000-bbbbbb", "20261125-030000-cccccc"


def test_keys_are_stable_and_readable():
    assert plan.training_key("pycam", "door", "occupied", A) == f"pycam/door/training/occupied/{A}.jpg"
    assert plan.manifest_key("pycam", "door") == "pycam/door/training/labels.json"
    assert plan.event_key("pycam", "door", C) == f"pycam/door/events/2026-11-25/{C}.jpg"
    assert plan.event_key("", "door", C) == f"door/events/2026-11-25/{C}.jpg"


def test_plan_sends_labelled_images_oldest_first_and_skips_confirmed_ones():
    key_a = plan.training_key("p", "cam", "occupied", A)
    done = {A: {"key": key_a, "size": 10}}
    todo = plan.plan_training({C: "unoccupied", A: "occupied", B: "occupied"},
                                  {A: 10, B: 20, C: 30}, done, "p", "cam")
    assert [u.event_id for u in todo] == [B, C]
    assert all(not u.copy and u.old_key is None for u in todo)


def test_a_relabel_is_a_move_and_a_copy_when_the_image_is_gone():
    old = plan.training_key("p", "cam", "occupied", A)
    done = {A: {"key": old, "size": 10}}
    [move] = plan.plan_training({A: "unoccupied"}, {A: 10}, done, "p", "cam")
    assert move.key == plan.training_key("p", "cam", "unoccupied", A) and move.old_key == old
    assert not move.copy
    [copy] = plan.plan_training({A: "unoccupied"}, {}, done, "p", "cam")
    assert copy.copy and copy.old_key == old
    # Never sent and no image: nothing to do.
    assert plan.plan_training({B: "occupied"}, {}, {}, "p", "cam") == []


def test_retention_only_touches_images_confirmed_under_their_current_label():
    key_a = plan.training_key("p", "cam", "occupied", A)
    key_b = plan.training_key("p", "cam", "occupied", B)
    done = {A: {"key": key_a, "size": 10}, B: {"key": key_b, "size": 20}}
    labels = {A: "occupied", B: "unoccupied", C: "occupied"}   # B relabelled, C never sent
    assert plan.plan_retention(labels, {A: 10, B: 20, C: 30}, done, "p", "cam") == [A]
    assert plan.plan_retention(labels, {A: 11}, done, "p", "cam") == []   # changed size


def test_ledger_for_another_bucket_is_not_trusted():
    target = {"endpoint": None, "bucket": "one"}
    ledger = plan.new_ledger(target)
    ledger["training"][A] = {"key": "k"}
    assert plan.checked_ledger(ledger, target) == (ledger, None)
    fresh, why = plan.checked_ledger(ledger, {"endpoint": None, "bucket": "two"})
    assert fresh["training"] == {} and "bucket" in why
    fresh, why = plan.checked_ledger(["garbage"], target)
    assert fresh["training"] == {} and "unreadable" in why


def test_confirmation_needs_same_size_and_checksum():
    md5 = "0" * 32
    assert mismatch({"ContentLength": 5, "ChecksumSHA256": "abc="}, 5, "abc=", md5) is None
    assert "SHA-256" in mismatch({"ContentLength": 5, "ChecksumSHA256": "xyz="}, 5, "abc=", md5)
    assert "bytes" in mismatch({"ContentLength": 4, "ChecksumSHA256": "abc="}, 5, "abc=", md5)
    assert mismatch({"ContentLength": 5, "ETag": f'"{md5}"'}, 5, "abc=", md5) is None
    assert "ETag" in mismatch({"ContentLength": 5, "ETag": '"' + "1" * 32 + '"'}, 5, "abc=", md5)
    assert "no checksum" in mismatch({"ContentLength": 5, "ETag": '"abc-2"'}, 5, "abc=", md5)
