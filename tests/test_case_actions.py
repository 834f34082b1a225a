"""Case actions and their custody entries, on a real evidence home with a real P-384 key.

Every action must write exactly one entry (``clean`` one per leftover, ``repair`` one for
the cut and one per recovered item) with the details of FORMAT.md section 10, onto a chain
that still verifies; and an action that cannot be logged must change nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cases.actions import (
    Repair,
    case_events,
    check_case_loggable,
    clean_case,
    close_case,
    item_events,
    log_capture_refused,
    log_captured,
    note_item,
    open_case,
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
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, UsageError
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
    assert error.message == (
        f"item(s) {bad} have no 'captured' entry and do not verify; "
        "they are not logged automatically (logged: 1)"
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
