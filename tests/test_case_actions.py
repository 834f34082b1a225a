"""Case actions and their custody entries, on a real evidence home with a real P-384 key.

Every action must write exactly one entry (``clean`` one per leftover, ``repair`` one for
the cut and one per recovered item) with the details of FORMAT.md section 10, onto a chain
that still verifies; and an action that cannot be logged must change nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from cases.actions import (
    Repair,
    case_events,
    case_for_capture,
    check_case_loggable,
    clean_case,
    close_case,
    item_events,
    log_capture_refused,
    log_captured,
    note_item,
    open_case,
    publish_capture,
    repair_case,
    transfer_item,
    unlogged_items,
    verify_and_log,
)
from cases.custody import append_event
from cases.staging import ItemStaging
from cases.store import EvidenceStore
from cases.summary import item_summary
from chain_of_custody.custody import ACTIONS, verify_chain
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, Refused, UsageError
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import seal_item
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import verify_item

CASE = "2026-0142"
OTHER_CASE = "2026-0143"
OPERATOR = "Det. A. Example"
REQUESTED = "https://social.example/post/1"
FINAL = "https://social.example/p/1"
# A pid above Linux's pid_max (4194304 at most), so it can never belong to a live process.
DEAD_PID = 999_999_999
TORN = b'{"action":"captured","actor":"Det. A. Exa'
CASE_FIELDS = {
    "title": "Missing teenager, Riverside",
    "category": "missing-person",
    "investigator": "Det. A. Example",
    "authority": "Policy IV.B.1(a); supervisor approval 2026-11-20",
}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator=OPERATOR, private_key=generate_private_key())


@pytest.fixture
def store(tmp_path: Path, signer: Signer) -> EvidenceStore:
    store = EvidenceStore(tmp_path / "evidence")
    open_case(store, CASE, signer=signer, **CASE_FIELDS)
    return store


def _log_path(store: EvidenceStore, case_id: str = CASE) -> Path:
    return store.case_dir(case_id) / "custody.jsonl"


def _entries(store: EvidenceStore, case_id: str = CASE) -> list[dict[str, Any]]:
    lines = _log_path(store, case_id).read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def _assert_chain_ok(store: EvidenceStore, case_id: str = CASE) -> None:
    report = verify_chain(case_id, _log_path(store, case_id).read_bytes())
    assert report.ok, report.problems


def _assert_one_new_entry(
    store: EvidenceStore, before: int, action: str, item_id: str | None, details: dict[str, Any]
) -> dict[str, Any]:
    entries = _entries(store)
    assert len(entries) == before + 1
    entry = entries[-1]
    assert entry["seq"] == before + 1
    assert entry["case_id"] == CASE
    assert entry["actor"] == OPERATOR
    assert entry["action"] == action
    assert entry["item_id"] == item_id
    assert entry["details"] == details
    _assert_chain_ok(store)
    return entry


def _tear(store: EvidenceStore) -> bytes:
    with _log_path(store).open("ab") as log:
        log.write(TORN)
    return _log_path(store).read_bytes()


def _sealed_staging(
    store: EvidenceStore,
    signer: Signer,
    *,
    case_id: str = CASE,
    manifest_case: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> tuple[ItemStaging, str]:
    """A signed item still in staging, and its manifest's SHA-256."""
    staging = store.new_item(case_id)
    (staging.path / "text.txt").write_text("the post's visible text\n", encoding="utf-8")
    (staging.path / "dom.html").write_text("<html><body>post</body></html>\n", encoding="utf-8")
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=manifest_case or case_id,
        status="partial",
        provenance=provenance or {"requested_url": REQUESTED, "final_url": FINAL},
        signer=signer,
    )
    return staging, sealed.manifest_sha256


def _seal(
    store: EvidenceStore,
    signer: Signer,
    *,
    case_id: str = CASE,
    manifest_case: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """A published, signed item with no custody entry yet: (item id, manifest SHA-256)."""
    staging, sha = _sealed_staging(
        store, signer, case_id=case_id, manifest_case=manifest_case, provenance=provenance
    )
    staging.finalize()
    return staging.item_id, sha


def _log_capture(store: EvidenceStore, signer: Signer, item_id: str, sha: str) -> dict[str, Any]:
    return log_captured(
        store,
        CASE,
        item_id=item_id,
        manifest_sha256=sha,
        requested_url=REQUESTED,
        final_url=FINAL,
        status="partial",
        files=2,
        signer=signer,
    )


# -- the vocabulary ------------------------------------------------------------------------


def test_unknown_action_is_refused_and_the_log_is_unchanged(
    store: EvidenceStore, signer: Signer
) -> None:
    log_before = _log_path(store).read_bytes()
    head_before = (store.case_dir(CASE) / "custody.head").read_bytes()
    with pytest.raises(ValueError, match="unknown custody action 'deleted'"):
        append_event(
            store.case_dir(CASE),
            case_id=CASE,
            actor=signer.operator,
            action="deleted",
            item_id=None,
            details={},
            signer=signer,
        )
    assert _log_path(store).read_bytes() == log_before
    assert (store.case_dir(CASE) / "custody.head").read_bytes() == head_before


def test_reserved_actions_are_in_the_vocabulary(store: EvidenceStore, signer: Signer) -> None:
    assert {"exported", "timestamped"} <= set(ACTIONS)
    entry = append_event(
        store.case_dir(CASE),
        case_id=CASE,
        actor=signer.operator,
        action="timestamped",
        item_id=None,
        details={},
        signer=signer,
    )
    assert entry["action"] == "timestamped"
    _assert_chain_ok(store)


# -- cases ---------------------------------------------------------------------------------


def test_open_case_writes_case_opened_as_the_first_entry(store: EvidenceStore) -> None:
    [entry] = _entries(store)
    assert entry["seq"] == 1
    assert entry["actor"] == OPERATOR
    assert entry["action"] == "case-opened"
    assert entry["item_id"] is None
    assert entry["details"] == CASE_FIELDS
    assert json.loads((store.case_dir(CASE) / "case.json").read_text())["status"] == "open"
    _assert_chain_ok(store)


def test_close_case_writes_case_closed(store: EvidenceStore, signer: Signer) -> None:
    case = close_case(store, CASE, signer=signer)
    assert case.status == "closed"
    assert json.loads((store.case_dir(CASE) / "case.json").read_text())["status"] == "closed"
    _assert_one_new_entry(store, 1, "case-closed", None, {})


def test_close_case_refuses_a_torn_log_before_closing(store: EvidenceStore, signer: Signer) -> None:
    record = (store.case_dir(CASE) / "case.json").read_bytes()
    torn = _tear(store)
    with pytest.raises(CustodyLogDamaged, match="ends in an incomplete line"):
        close_case(store, CASE, signer=signer)
    assert (store.case_dir(CASE) / "case.json").read_bytes() == record
    assert _log_path(store).read_bytes() == torn


def test_close_case_of_an_unknown_case(store: EvidenceStore, signer: Signer) -> None:
    with pytest.raises(UsageError, match="no case 'NOPE-1'"):
        close_case(store, "NOPE-1", signer=signer)
    assert not (store.home / "NOPE-1").exists()


def _make_leftovers(store: EvidenceStore) -> tuple[Path, Path]:
    case_dir = store.case_dir(CASE)
    staging = case_dir / "items" / ".staging-20261125T120000Z-0a1b2c3d"
    staging.mkdir()
    (staging / "page.warc.gz").write_bytes(b"w" * 1000)
    temp = case_dir / f".tmp-{DEAD_PID}-abcdefgh-case.json"
    temp.write_bytes(b"{}")
    return staging, temp


def test_clean_case_logs_one_entry_per_leftover(store: EvidenceStore, signer: Signer) -> None:
    staging, temp = _make_leftovers(store)
    expected = store.leftovers(CASE)
    removed = clean_case(store, CASE, signer=signer)
    assert removed == expected
    assert not staging.exists() and not temp.exists()
    entries = _entries(store)
    assert len(entries) == 1 + len(removed) == 3
    for leftover, entry in zip(removed, entries[1:], strict=True):
        assert entry["action"] == "leftover-removed"
        assert entry["item_id"] == leftover.item_id
        assert entry["details"] == {
            "path": str(leftover.path),
            "kind": leftover.kind,
            "size_bytes": leftover.size_bytes,
            "modified": leftover.modified,
        }
    assert {e["details"]["kind"] for e in entries[1:]} == {"staging", "temp"}
    staging_entry = next(e for e in entries[1:] if e["details"]["kind"] == "staging")
    assert staging_entry["item_id"] == "20261125T120000Z-0a1b2c3d"
    assert staging_entry["details"]["size_bytes"] == 1000
    _assert_chain_ok(store)


def test_clean_case_refuses_a_torn_log_before_removing(
    store: EvidenceStore, signer: Signer
) -> None:
    staging, temp = _make_leftovers(store)
    torn = _tear(store)
    with pytest.raises(CustodyLogDamaged):
        clean_case(store, CASE, signer=signer)
    assert staging.exists() and temp.exists()
    assert _log_path(store).read_bytes() == torn


def test_clean_case_without_leftovers_logs_nothing(store: EvidenceStore, signer: Signer) -> None:
    assert clean_case(store, CASE, signer=signer) == []
    assert len(_entries(store)) == 1


def test_check_case_loggable(store: EvidenceStore) -> None:
    check_case_loggable(store, CASE)
    _tear(store)
    with pytest.raises(CustodyLogDamaged) as damaged:
        check_case_loggable(store, CASE)
    assert damaged.value.hint == f"run `osint-capture custody repair {CASE}`"


# -- captures ------------------------------------------------------------------------------


def test_log_captured(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    entry = _log_capture(store, signer, item_id, sha)
    written = _assert_one_new_entry(
        store,
        1,
        "captured",
        item_id,
        {
            "manifest_sha256": sha,
            "requested_url": REQUESTED,
            "final_url": FINAL,
            "status": "partial",
            "files": 2,
        },
    )
    assert entry == written
    assert verify_item(store.item_dir(CASE, item_id)).ok
    assert unlogged_items(store, CASE) == []


def test_log_capture_refused(store: EvidenceStore, signer: Signer) -> None:
    url = "https://REDACTED@social.example/private"
    entry = log_capture_refused(store, CASE, url=url, reason="not public", signer=signer)
    written = _assert_one_new_entry(
        store, 1, "capture-refused", None, {"url": url, "reason": "not public"}
    )
    assert entry == written


# -- items ---------------------------------------------------------------------------------


def test_transfer_item(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    logged = transfer_item(
        store, item_id, to="  Evidence room B  ", reason=" disclosure ", signer=signer
    )
    assert (logged.case_id, logged.item_id) == (CASE, item_id)
    written = _assert_one_new_entry(
        store, 2, "transferred", item_id, {"to": "Evidence room B", "reason": "disclosure"}
    )
    assert logged.entry == written


def test_note_item(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    logged = note_item(store, item_id, text=" shown to the witness \n", signer=signer)
    written = _assert_one_new_entry(store, 2, "note", item_id, {"text": "shown to the witness"})
    assert logged.entry == written


@pytest.mark.parametrize(
    ("to", "reason", "text"), [(" ", "disclosure", "x"), ("room B", "", "x"), ("a", "b", "\t")]
)
def test_empty_transfer_or_note_is_refused(
    store: EvidenceStore, signer: Signer, to: str, reason: str, text: str
) -> None:
    item_id, _ = _seal(store, signer)
    before = _log_path(store).read_bytes()
    if not to.strip() or not reason.strip():
        with pytest.raises(UsageError) as refused:
            transfer_item(store, item_id, to=to, reason=reason, signer=signer)
        assert refused.value.message == "--to and --reason must not be empty"
    else:
        with pytest.raises(UsageError) as refused:
            note_item(store, item_id, text=text, signer=signer)
        assert refused.value.message == "--text must not be empty"
    assert _log_path(store).read_bytes() == before


def test_an_unknown_item_is_a_usage_error(store: EvidenceStore, signer: Signer) -> None:
    item_id = "20261125T120000Z-0a1b2c3d"
    with pytest.raises(UsageError) as missing:
        note_item(store, item_id, text="hello", signer=signer)
    assert missing.value.message == f"no item '{item_id}' in {store.home}"
    assert missing.value.hint == "`osint-capture case show CASE_ID` lists items"
    assert len(_entries(store)) == 1


def test_find_item_searches_every_case(store: EvidenceStore, signer: Signer) -> None:
    open_case(store, OTHER_CASE, signer=signer, **CASE_FIELDS)
    item_id, _ = _seal(store, signer, case_id=OTHER_CASE)
    assert store.find_item(item_id) == (OTHER_CASE, store.item_dir(OTHER_CASE, item_id))


def test_verify_and_log_a_good_item(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    exam = verify_and_log(store, item_id, trusted=None, signer=signer)
    assert exam.report.ok
    assert (exam.case_id, exam.item_dir) == (CASE, store.item_dir(CASE, item_id))
    written = _assert_one_new_entry(
        store, 2, "verified", item_id, {"ok": True, "failed_steps": [], "manifest_sha256": sha}
    )
    assert exam.entry == written


def test_verify_and_log_an_altered_file(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    (store.item_dir(CASE, item_id) / "text.txt").write_text("edited\n", encoding="utf-8")
    exam = verify_and_log(store, item_id, trusted=[signer.fingerprint], signer=signer)
    assert not exam.report.ok
    assert exam.report.first_failure is not None and exam.report.first_failure.number == 4
    _assert_one_new_entry(
        store, 2, "verified", item_id, {"ok": False, "failed_steps": [4], "manifest_sha256": sha}
    )


def test_verify_and_log_with_an_untrusted_key(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    exam = verify_and_log(store, item_id, trusted=["ab" * 32], signer=signer)
    failed = [step.number for step in exam.report.steps if not step.ok]
    assert 3 in failed
    assert exam.entry["details"]["failed_steps"] == failed


def test_verify_and_log_without_a_custody_log(store: EvidenceStore, signer: Signer) -> None:
    item_id, _ = _seal(store, signer)
    log = _log_path(store)
    log.unlink()
    with pytest.raises(IntegrityError) as missing:
        verify_and_log(store, item_id, trusted=None, signer=signer)
    assert missing.value.message == f"case {CASE} has no custody log ({log} is missing)"
    assert not log.exists()


# -- reading the log -----------------------------------------------------------------------


def test_item_events_and_case_events(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    other_id, other_sha = _seal(store, signer)
    _log_capture(store, signer, item_id, sha)
    _log_capture(store, signer, other_id, other_sha)
    note_item(store, item_id, text="hello", signer=signer)
    case_id, events = item_events(store, item_id)
    assert case_id == CASE
    assert [(e["seq"], e["action"]) for e in events] == [(2, "captured"), (4, "note")]
    assert case_events(store, CASE) == _entries(store)
    with pytest.raises(UsageError, match="no case 'NOPE-1'"):
        case_events(store, "NOPE-1")


# -- recovery ------------------------------------------------------------------------------


def test_repair_case_recovers_a_sealed_but_unlogged_item(
    store: EvidenceStore, signer: Signer
) -> None:
    item_id, sha = _seal(store, signer)
    assert unlogged_items(store, CASE) == [item_id]
    assert not verify_item(store.item_dir(CASE, item_id)).ok  # step 7: not logged
    repair = repair_case(store, CASE, signer=signer)
    assert repair == Repair(log_entry=None, recovered=(item_id,), refused=())
    with pytest.raises(ValueError):
        repair.refusal_error()
    manifest = json.loads((store.item_dir(CASE, item_id) / "manifest.json").read_bytes())
    _assert_one_new_entry(
        store,
        1,
        "captured",
        item_id,
        {
            "manifest_sha256": sha,
            "requested_url": REQUESTED,
            "final_url": FINAL,
            "status": "partial",
            "files": 2,
            "recovered": "logged after an interruption between publishing and logging",
            "manifest_created": manifest["created"],
            "manifest_signer": signer.fingerprint,
        },
    )
    assert verify_item(store.item_dir(CASE, item_id)).ok
    assert unlogged_items(store, CASE) == []


def test_repair_case_refuses_a_tampered_item(store: EvidenceStore, signer: Signer) -> None:
    good, _ = _seal(store, signer)
    bad, _ = _seal(store, signer)
    (store.item_dir(CASE, bad) / "dom.html").write_text("<html>edited</html>\n")
    repair = repair_case(store, CASE, signer=signer)
    assert (repair.recovered, repair.refused) == ((good,), (bad,))
    error = repair.refusal_error()
    reason = (
        "fails verification step 4 (listed files match size and SHA-256): "
        "dom.html is 20 bytes, the manifest lists 31"
    )
    assert repair.refused_reasons == ((bad, reason),)
    assert error.message == (
        f"item(s) {bad} have no 'captured' entry and do not verify; "
        f"they are not logged automatically (logged: 1): {bad} {reason}"
    )
    assert error.hint == "examine them with `osint-capture verify ITEM_ID`"
    assert [e["item_id"] for e in _entries(store)[1:]] == [good]
    assert unlogged_items(store, CASE) == [bad]
    _assert_chain_ok(store)


def test_repair_case_refuses_an_item_of_another_case(store: EvidenceStore, signer: Signer) -> None:
    stray, _ = _seal(store, signer, manifest_case=OTHER_CASE)
    repair = repair_case(store, CASE, signer=signer)
    assert (repair.recovered, repair.refused) == ((), (stray,))
    assert len(_entries(store)) == 1


def test_repair_case_cuts_a_torn_tail_then_recovers(store: EvidenceStore, signer: Signer) -> None:
    item_id, sha = _seal(store, signer)
    intact_size = len(_log_path(store).read_bytes())
    _tear(store)
    repair = repair_case(store, CASE, signer=signer)
    assert repair.log_entry is not None
    assert repair.log_entry["action"] == "log-repaired"
    assert repair.log_entry["details"]["removed_sha256"] == sha256_bytes(TORN)
    assert repair.log_entry["details"]["truncated_at"] == intact_size
    assert repair.recovered == (item_id,)
    entries = _entries(store)
    assert [e["action"] for e in entries] == ["case-opened", "log-repaired", "captured"]
    assert entries[1] == repair.log_entry
    assert entries[2]["details"]["manifest_sha256"] == sha
    _assert_chain_ok(store)


def test_repair_case_leaves_an_item_still_being_logged(
    store: EvidenceStore, signer: Signer
) -> None:
    staging, _ = _sealed_staging(store, signer)
    staging.finalize(keep_lock=True)
    try:
        assert unlogged_items(store, CASE) == []
        assert repair_case(store, CASE, signer=signer) == Repair(None, (), ())
        assert len(_entries(store)) == 1
    finally:
        staging.release()
    assert unlogged_items(store, CASE) == [staging.item_id]


def _forge_copy(store: EvidenceStore, genuine: str, key: Signer) -> str:
    """A genuine item copied to a new item ID, edited and re-signed by ``key``."""
    staging = store.new_item(CASE)
    for name in ("text.txt", "dom.html"):
        shutil.copy(store.item_dir(CASE, genuine) / name, staging.path / name)
    (staging.path / "text.txt").write_text("words the author never posted\n", encoding="utf-8")
    seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=CASE,
        status="partial",
        provenance={"requested_url": REQUESTED, "final_url": FINAL},
        signer=key,
    )
    staging.finalize()
    return staging.item_id


def test_repair_case_refuses_an_item_signed_by_a_key_the_case_does_not_know(
    store: EvidenceStore, signer: Signer
) -> None:
    genuine, sha = _seal(store, signer)
    _log_capture(store, signer, genuine, sha)
    other = Signer(operator=OPERATOR, private_key=generate_private_key())  # same name
    forged = _forge_copy(store, genuine, other)
    crashed, _ = _seal(store, signer)  # a genuine item an interruption left unlogged
    assert verify_item(store.item_dir(CASE, forged), custody_log=None).steps[3].ok
    before = _log_path(store).read_bytes()

    repair = repair_case(store, CASE, signer=signer)
    assert (repair.recovered, repair.refused) == ((crashed,), (forged,))
    [(item_id, reason)] = repair.refused_reasons
    assert item_id == forged
    assert reason == (
        f"is signed by key {other.fingerprint} ({OPERATOR}), which neither opened this case "
        f"nor logged a capture in it (if it is a key you trust, repeat with "
        f"--trust {other.fingerprint})"
    )
    message = repair.refusal_error().message
    assert message.startswith(
        f"item(s) {forged} have no 'captured' entry and do not verify; "
        "they are not logged automatically (logged: 1): "
    )
    assert f"{forged} is signed by key {other.fingerprint}" in message
    entries = _entries(store)
    assert len(entries) == len(before.splitlines()) + 1  # only the genuine one
    assert entries[-1]["item_id"] == crashed
    assert unlogged_items(store, CASE) == [forged]
    assert not verify_item(store.item_dir(CASE, forged)).ok

    # Given with trusted=..., the key is accepted (in any form a person types it).
    typed = ":".join(other.fingerprint.upper()[i : i + 2] for i in range(0, 64, 2))
    repair = repair_case(store, CASE, signer=signer, trusted=[typed])
    assert repair == Repair(None, (forged,), (), ())
    entry = _entries(store)[-1]
    assert entry["item_id"] == forged
    assert entry["details"]["manifest_signer"] == other.fingerprint
    assert entry["signer"]["fingerprint"] == signer.fingerprint
    _assert_chain_ok(store)


def test_repair_case_trusts_a_key_that_logged_a_capture(
    store: EvidenceStore, signer: Signer
) -> None:
    second = Signer(operator="Det. B. Second", private_key=generate_private_key())
    logged, sha = _seal(store, second)
    log_captured(
        store,
        CASE,
        item_id=logged,
        manifest_sha256=sha,
        requested_url=REQUESTED,
        final_url=FINAL,
        status="partial",
        files=2,
        signer=second,
    )
    crashed, _ = _seal(store, second)
    # A key that only wrote a note (anyone can) does not vouch for evidence.
    noted = Signer(operator="Someone", private_key=generate_private_key())
    note_item(store, logged, text="looked at it", signer=noted)
    stray, _ = _seal(store, noted)
    repair = repair_case(store, CASE, signer=signer)
    assert (repair.recovered, repair.refused) == ((crashed,), (stray,))


def test_repair_case_refuses_a_malformed_trusted_fingerprint(
    store: EvidenceStore, signer: Signer
) -> None:
    with pytest.raises(UsageError, match="--trust: not a SHA-256 key fingerprint"):
        repair_case(store, CASE, signer=signer, trusted=["abc"])
    assert len(_entries(store)) == 1


def test_repair_case_logs_no_capture_into_a_closed_case(
    store: EvidenceStore, signer: Signer
) -> None:
    crashed, _ = _seal(store, signer)
    close_case(store, CASE, signer=signer)
    repair = repair_case(store, CASE, signer=signer)
    assert repair.refused_reasons == (
        (
            crashed,
            f"cannot be logged: case '{CASE}' is closed, and no 'captured' entry may follow "
            "its 'case-closed' entry",
        ),
    )
    assert _entries(store)[-1]["action"] == "case-closed"


# -- the signed state of a case, and publishing under the case lock ------------------------


def _edit_case_json(store: EvidenceStore, case_id: str = CASE, **changes: Any) -> None:
    path = store.case_dir(case_id) / "case.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _publish(store: EvidenceStore, staging: ItemStaging, sha: str, signer: Signer) -> Path:
    return publish_capture(
        store,
        CASE,
        staging,
        manifest_sha256=sha,
        requested_url=REQUESTED,
        final_url=FINAL,
        status="partial",
        files=2,
        signer=signer,
    )


def _check_capture_rules(store: EvidenceStore, signer: Signer) -> Any:
    """Step 1 of the real capture pipeline (no browser is started by it)."""
    from osint_capture.capture import _check_rules
    from osint_capture.engine.model import CaptureOptions

    # A loopback target, allowed as in the lab: the rules then need no DNS.
    options = CaptureOptions(allow_private_network=True)
    return _check_rules(store, CASE, "http://127.0.0.1:9/post", options, signer)


def test_case_for_capture_is_the_case_the_log_states(store: EvidenceStore, signer: Signer) -> None:
    case = case_for_capture(store, CASE)
    record = store.get_case(CASE)
    assert case.status == "open" and case.closed_at is None
    for name, value in CASE_FIELDS.items():
        assert getattr(case, name) == value == getattr(record, name)
    assert case.opened_at == _entries(store)[0]["time"]
    capture = _check_capture_rules(store, signer)
    assert capture.case == case  # the manifest's case facts come from here

    close_case(store, CASE, signer=signer)
    closed = case_for_capture(store, CASE)
    assert closed.status == "closed"
    assert closed.closed_at == _entries(store)[-1]["time"]


def test_case_json_edited_back_to_open_lets_no_capture_in(
    store: EvidenceStore, signer: Signer
) -> None:
    close_case(store, CASE, signer=signer)
    log = _log_path(store).read_bytes()
    _edit_case_json(store, status="open", closed_at=None)
    with pytest.raises(IntegrityError) as info:
        case_for_capture(store, CASE)
    path = store.case_dir(CASE) / "case.json"
    assert info.value.message == (
        f"case record {path} disagrees with the signed custody log of case '{CASE}': "
        "status is 'open' in case.json but 'closed' in the log"
    )
    assert info.value.hint is not None and "have it examined" in info.value.hint
    with pytest.raises(IntegrityError, match=r"case\.json"):
        _check_capture_rules(store, signer)
    # case.json now lets a staging folder be made, but nothing is published from it.
    staging, sha = _sealed_staging(store, signer)
    with staging, pytest.raises(IntegrityError, match=r"case\.json"):
        _publish(store, staging, sha, signer)
    assert store.list_items(CASE) == []
    assert not staging.path.exists()  # discarded, as any capture that fails
    assert _log_path(store).read_bytes() == log
    with pytest.raises(UsageError, match="already closed"):
        close_case(store, CASE, signer=signer)


@pytest.mark.parametrize(
    ("field", "forged"),
    [
        ("authority", "Forged approval 99-999"),
        ("category", "gang-activity"),
        ("title", "Another title"),
        ("investigator", "Det. Nobody"),
    ],
)
def test_case_json_with_other_case_facts_is_refused(
    store: EvidenceStore, signer: Signer, field: str, forged: str
) -> None:
    _edit_case_json(store, **{field: forged})
    with pytest.raises(IntegrityError) as info:
        case_for_capture(store, CASE)
    assert "case.json" in info.value.message
    assert f"{field} is {forged!r} in case.json but {CASE_FIELDS[field]!r} in the log" in (
        info.value.message
    )
    with pytest.raises(IntegrityError, match=r"case\.json"):
        _check_capture_rules(store, signer)
    assert len(_entries(store)) == 1  # not logged: nothing was attempted


def test_a_closed_case_refuses_a_capture_without_logging_after_case_closed(
    store: EvidenceStore, signer: Signer
) -> None:
    close_case(store, CASE, signer=signer)
    with pytest.raises(Refused) as info:
        _check_capture_rules(store, signer)
    assert info.value.message == f"case '{CASE}' is closed; it accepts no new captures"
    assert info.value.hint == "open a new case with its own authority"
    assert _entries(store)[-1]["action"] == "case-closed"


def test_a_case_without_a_signed_log_takes_no_capture(store: EvidenceStore) -> None:
    store.open_case("2026-0999", **CASE_FIELDS)  # case.json only, as a crash could leave it
    with pytest.raises(IntegrityError, match="has no signed custody log"):
        case_for_capture(store, "2026-0999")


def test_close_case_finishes_an_interrupted_close(store: EvidenceStore, signer: Signer) -> None:
    with store.case_lock(CASE):
        store.mark_closed(CASE)  # a crash here: case.json closed, no case-closed entry
    with pytest.raises(IntegrityError) as info:
        case_for_capture(store, CASE)
    assert (
        info.value.hint
        == f"a `case close` was interrupted; run `osint-capture case close {CASE}` to finish it"
    )
    closed_at = store.get_case(CASE).closed_at
    case = close_case(store, CASE, signer=signer)
    assert case.closed_at == closed_at
    _assert_one_new_entry(store, 1, "case-closed", None, {})
    assert case_for_capture(store, CASE).status == "closed"


def test_publish_capture_publishes_and_logs(store: EvidenceStore, signer: Signer) -> None:
    staging, sha = _sealed_staging(store, signer)
    with staging:
        final = _publish(store, staging, sha, signer)
    assert final == store.item_dir(CASE, staging.item_id)
    assert not staging.lock_path.exists()
    _assert_one_new_entry(
        store,
        1,
        "captured",
        staging.item_id,
        {
            "manifest_sha256": sha,
            "requested_url": REQUESTED,
            "final_url": FINAL,
            "status": "partial",
            "files": 2,
        },
    )
    assert verify_item(final).ok


def test_a_capture_published_after_the_close_is_refused_and_left_as_a_leftover(
    store: EvidenceStore, signer: Signer
) -> None:
    staging, sha = _sealed_staging(store, signer)  # the capture started while open
    close_case(store, CASE, signer=signer)
    log = _log_path(store).read_bytes()
    with staging, pytest.raises(Refused) as info:
        _publish(store, staging, sha, signer)
    assert info.value.message == (
        f"case '{CASE}' was closed while this capture ran; its files are kept as a leftover: "
        f"items/.staging-{staging.item_id} (the refusal is not logged: a closed case's log "
        "takes no capture entries)"
    )
    assert info.value.hint == f"`osint-capture case clean {CASE}` removes it"
    assert _log_path(store).read_bytes() == log
    assert _entries(store)[-1]["action"] == "case-closed"
    assert store.list_items(CASE) == []
    assert (staging.path / "manifest.json").is_file()  # kept, not discarded
    [leftover] = store.leftovers(CASE)
    assert (leftover.kind, leftover.item_id, leftover.path) == (
        "staging",
        staging.item_id,
        staging.path,
    )
    assert [removed.path for removed in clean_case(store, CASE, signer=signer)] == [staging.path]
    assert not staging.path.exists()
    assert store.leftovers(CASE) == []


@pytest.mark.parametrize("round_number", range(6))
def test_closing_while_publishing_never_logs_a_capture_after_case_closed(
    tmp_path: Path, signer: Signer, round_number: int
) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    open_case(store, CASE, signer=signer, **CASE_FIELDS)
    stagings = [_sealed_staging(store, signer) for _ in range(3)]
    start = threading.Barrier(len(stagings) + 1)
    outcomes: dict[str, str] = {}

    def publish(staging: ItemStaging, sha: str) -> None:
        start.wait()
        with staging:
            try:
                _publish(store, staging, sha, signer)
                outcomes[staging.item_id] = "published"
            except Refused:
                outcomes[staging.item_id] = "refused"

    def close() -> None:
        start.wait()
        close_case(store, CASE, signer=signer)

    threads = [threading.Thread(target=publish, args=pair) for pair in stagings]
    threads.append(threading.Thread(target=close))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == len(stagings)

    actions = [entry["action"] for entry in _entries(store)]
    closed_at = actions.index("case-closed")
    assert "captured" not in actions[closed_at:]
    assert actions[-1] == "case-closed"
    captured = [e["item_id"] for e in _entries(store) if e["action"] == "captured"]
    published = sorted(item for item, outcome in outcomes.items() if outcome == "published")
    assert sorted(captured) == published == store.list_items(CASE)
    refused = sorted(item for item, outcome in outcomes.items() if outcome == "refused")
    assert sorted(str(left.item_id) for left in store.leftovers(CASE)) == refused
    _assert_chain_ok(store)


# -- summaries -----------------------------------------------------------------------------


def test_item_summary_line(store: EvidenceStore, signer: Signer) -> None:
    provenance = {
        "requested_url": REQUESTED,
        "final_url": FINAL,
        "access": {"allow_private_network": True},
        "robots": {"noarchive": False, "noindex": True},
    }
    item_id, _ = _seal(store, signer, provenance=provenance)
    summary = item_summary(store.item_dir(CASE, item_id))
    assert (summary.status, summary.url, summary.allow_private_network) == ("partial", FINAL, True)
    assert (summary.noarchive, summary.noindex) == (False, True)
    assert summary.line() == f"partial  {FINAL}  [lab only: --allow-private-network]  [noindex]"

    plain, _ = _seal(store, signer, provenance={"requested_url": REQUESTED, "final_url": ""})
    summary = item_summary(store.item_dir(CASE, plain))
    assert summary.allow_private_network is False
    assert summary.line() == f"partial  {REQUESTED}"


def test_item_summary_of_an_unreadable_manifest(store: EvidenceStore, signer: Signer) -> None:
    item_id, _ = _seal(store, signer)
    manifest = store.item_dir(CASE, item_id) / "manifest.json"
    os.chmod(manifest, 0o644)
    manifest.write_bytes(manifest.read_bytes() + b"\n")  # no longer canonical JSON
    summary = item_summary(store.item_dir(CASE, item_id))
    assert summary.allow_private_network is None
    assert summary.line() == "(manifest unreadable)"
    manifest.unlink()
    assert item_summary(store.item_dir(CASE, item_id)).line() == "(manifest unreadable)"
