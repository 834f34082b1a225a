"""A case's custody log is the signed record of the case (issue "Close the integrity holes").

Each attack is played as the issue describes it, on a case written by the real tool
(``cases.actions`` / ``cases.custody.append_event`` on a temporary evidence home, real
P-384 keys), then tampered with by hand (``build_entry`` / ``build_head``):

* the log cut to its first entries, ``custody.head`` and ``case.json`` deleted, verified
  with ``--trust``;
* the log cut, one entry signed by a foreign key appended and a head written with it;
* an entry other than an examination, transfer, note, export, timestamp or repair after
  ``case-closed``;
* a log whose first entry is not the case's ``case-opened``;
* ``case.json`` disagreeing with the signed opening.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cases import actions
from cases.case import new_item_id
from cases.custody import append_event, repair_log
from cases.store import EvidenceStore
from chain_of_custody import AFTER_CLOSE_ACTIONS, CaseFacts, case_facts, verify_case_log
from chain_of_custody.custody import (
    ACTIONS,
    build_entry,
    build_head,
    case_facts_of_entries,
    parse_line,
    split_log,
)
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError
from chain_of_custody.item import seal_item
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import CaseReport, verify_case, verify_item

CASE = "2026-000123"
CASE_FIELDS = {
    "title": "Threats against a witness, Eastside",
    "category": "online-crime",
    "investigator": "Det. A. Example",
    "authority": "Lt. J. Park, approval 26-114",
}
TIME = "2026-11-25T12:30:00.000000Z"
REQUESTED = "https://social.example/post/1"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="Det. A. Example", private_key=generate_private_key())


@pytest.fixture(scope="module")
def intruder() -> Signer:
    return Signer(operator="Someone Else", private_key=generate_private_key())


@pytest.fixture(scope="module")
def technician() -> Signer:
    return Signer(operator="ET M. Lopez", private_key=generate_private_key())


@dataclass(frozen=True)
class RealCase:
    store: EvidenceStore
    case_dir: Path
    item_id: str

    @property
    def log(self) -> Path:
        return self.case_dir / "custody.jsonl"

    @property
    def head(self) -> Path:
        return self.case_dir / "custody.head"

    def lines(self) -> list[bytes]:
        """The log's lines, each with its newline."""
        return self.log.read_bytes().splitlines(keepends=True)


def _capture(case_dir: Path, signer: Signer) -> str:
    """A signed item published in ``items/`` and its ``captured`` entry, as a capture does."""
    item_id = new_item_id()
    item_dir = case_dir / "items" / item_id
    item_dir.mkdir(parents=True)
    (item_dir / "text.txt").write_text("the post's visible text\n", encoding="utf-8")
    (item_dir / "dom.html").write_text("<html><body>post</body></html>\n", encoding="utf-8")
    sealed = seal_item(
        item_dir,
        item_id=item_id,
        case_id=CASE,
        status="partial",
        provenance={"requested_url": REQUESTED, "final_url": REQUESTED},
        signer=signer,
    )
    _append(
        case_dir,
        signer,
        "captured",
        item_id,
        {
            "manifest_sha256": sealed.manifest_sha256,
            "requested_url": REQUESTED,
            "final_url": REQUESTED,
            "status": "partial",
            "files": len(sealed.files),
        },
    )
    return item_id


def _append(
    case_dir: Path, signer: Signer, action: str, item_id: str | None, details: dict[str, Any]
) -> dict[str, Any]:
    return append_event(
        case_dir,
        case_id=CASE,
        actor=signer.operator,
        action=action,
        item_id=item_id,
        details=details,
        signer=signer,
    )


@pytest.fixture
def case(tmp_path: Path, signer: Signer) -> RealCase:
    """An open case: case-opened, captured, transferred, note (4 entries), with its head."""
    store = EvidenceStore(tmp_path / "evidence")
    actions.open_case(store, CASE, signer=signer, **CASE_FIELDS)
    case_dir = store.case_dir(CASE)
    item_id = _capture(case_dir, signer)
    actions.transfer_item(store, item_id, to="ET M. Lopez", reason="intake", signer=signer)
    actions.note_item(store, item_id, text="shown to the witness", signer=signer)
    return RealCase(store, case_dir, item_id)


def _forge(
    lines: list[bytes], signer: Signer, action: str = "note", item_id: str | None = None
) -> bytes:
    """The next entry after ``lines``, signed by ``signer``."""
    return build_entry(
        case_id=CASE,
        prev_line=lines[-1],
        seq=len(lines) + 1,
        time=TIME,
        actor=signer.operator,
        action=action,
        item_id=item_id,
        details={"text": "added by hand"},
        signer=signer,
    )


def _head(lines: list[bytes], signer: Signer) -> bytes:
    return build_head(case_id=CASE, seq=len(lines), last_line=lines[-1], time=TIME, signer=signer)


def _write(case: RealCase, lines: list[bytes], head_signer: Signer) -> None:
    case.log.write_bytes(b"".join(lines))
    case.head.write_bytes(_head(lines, head_signer))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chain_of_custody", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _failed(report: CaseReport) -> list[str]:
    assert not report.ok
    return list(report.problems)


# The real case verifies ----------------------------------------------------------------


def test_valid_real_case_verifies_and_states_its_signed_facts(
    case: RealCase, signer: Signer
) -> None:
    report = verify_case(case.case_dir)
    assert report.ok, report.problems
    assert report.facts == CaseFacts(
        case_id=CASE,
        opened_at=json.loads(case.lines()[0])["time"],
        opened_by=signer.fingerprint,
        **CASE_FIELDS,
    )
    assert verify_case(case.case_dir, trusted_fingerprints=[signer.fingerprint]).ok
    assert case_facts(CASE, case.log.read_bytes()) == report.facts
    result = _cli("verify", str(case.case_dir), "--trust", signer.fingerprint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"authority: {CASE_FIELDS['authority']}" in result.stdout
    assert f"opened {report.facts.opened_at} by key {signer.fingerprint}" in result.stdout
    document = json.loads(_cli("verify", str(case.case_dir), "--json").stdout)
    (log_check,) = [c for c in document["checks"] if c["step"] == 8]
    assert f"authority: {CASE_FIELDS['authority']}" in log_check["detail"]
    assert log_check["detail"].endswith(", open")


def test_valid_case_without_case_json_takes_its_facts_from_the_log(case: RealCase) -> None:
    (case.case_dir / "case.json").unlink()
    report = verify_case(case.case_dir)
    assert report.ok, report.problems
    assert report.facts is not None and report.facts.title == CASE_FIELDS["title"]


# Attack 1: tail cut, head and case.json deleted, verified with --trust -------------------


def test_invalid_cut_tail_without_head_or_case_json_fails_even_with_trust(
    case: RealCase, signer: Signer, tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / CASE
    shutil.copytree(case.case_dir, copy)
    lines = (copy / "custody.jsonl").read_bytes().splitlines(keepends=True)
    (copy / "custody.jsonl").write_bytes(b"".join(lines[:2]))  # case-opened, captured
    (copy / "custody.head").unlink()
    (copy / "case.json").unlink()

    result = _cli("verify", str(copy), "--trust", signer.fingerprint)
    assert result.returncode == 1, result.stdout
    assert "custody.head is missing beside the log" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("FAILED")

    report = verify_case(copy, trusted_fingerprints=[signer.fingerprint])
    assert any("custody.head is missing" in p for p in _failed(report))
    (item,) = report.items
    assert [s.number for s in item.steps if not s.ok] == [7]
    # The item on its own, with the case's log beside it, fails the same way.
    alone = verify_item(copy / "items" / case.item_id, trusted_fingerprints=[signer.fingerprint])
    assert [s.number for s in alone.steps if not s.ok] == [7]
    assert "custody.head is missing" in alone.step(7).detail


def test_invalid_case_log_given_explicitly_without_its_head(case: RealCase) -> None:
    # What `osint-capture verify ITEM_ID` does: the case's own log, named explicitly.
    case.head.unlink()
    report = verify_item(case.case_dir / "items" / case.item_id, custody_log=case.log)
    assert [s.number for s in report.steps if not s.ok] == [7]
    assert "custody.head is missing" in report.step(7).detail


def test_invalid_item_in_a_case_without_case_json_is_still_judged_as_the_cases(
    case: RealCase,
) -> None:
    (case.case_dir / "case.json").unlink()
    item = case.case_dir / "items" / case.item_id
    renamed = item.parent / "20990101T000000Z-deadbeef"
    item.rename(renamed)
    report = verify_item(renamed)
    assert 1 in [s.number for s in report.steps if not s.ok]
    assert "the folder is named 20990101T000000Z-deadbeef" in report.step(1).detail


# Attack 2: tail cut, an entry and a head signed by a foreign key ------------------------


def test_invalid_cut_tail_with_foreign_entry_and_foreign_head(
    case: RealCase, signer: Signer, intruder: Signer
) -> None:
    lines = case.lines()[:2]
    lines.append(_forge(lines, intruder))
    _write(case, lines, intruder)
    (case.case_dir / "case.json").unlink()

    problems = _failed(verify_case(case.case_dir))
    foreign = (
        f"signed by key {intruder.fingerprint}, which did not open the case and is not "
        f"trusted (pass --trust {intruder.fingerprint} if that key is trusted"
    )
    assert any(p.startswith("custody.jsonl line 3: " + foreign) for p in problems), problems
    assert any(p.startswith("custody.jsonl: custody.head is " + foreign) for p in problems)
    step7 = verify_item(case.case_dir / "items" / case.item_id).step(7)
    assert not step7.ok and "line 3: signed by key" in step7.detail

    result = _cli("verify", str(case.case_dir))
    assert result.returncode == 1
    assert f"pass --trust {intruder.fingerprint}" in result.stdout

    # Trusting only the case's key does not let the foreign entry or head pass either.
    trusted = _failed(verify_case(case.case_dir, trusted_fingerprints=[signer.fingerprint]))
    assert any(
        p == f"custody.jsonl line 3: signed by key {intruder.fingerprint}, which is not trusted"
        for p in trusted
    )
    assert any(f"custody.head is signed by key {intruder.fingerprint}" in p for p in trusted)


def test_invalid_head_alone_signed_by_a_foreign_key(
    case: RealCase, signer: Signer, intruder: Signer
) -> None:
    lines = case.lines()[:2]  # entries cut off, a fresh head over what is left
    _write(case, lines, intruder)
    problems = _failed(verify_case(case.case_dir))
    assert problems == [
        f"custody.jsonl: custody.head is signed by key {intruder.fingerprint}, which did not "
        f"open the case and is not trusted (pass --trust {intruder.fingerprint} if that key "
        f"is trusted, with --trust {signer.fingerprint} for the key that opened the case)"
    ]


def test_examination_by_another_key_needs_that_key_trusted(
    case: RealCase, signer: Signer, technician: Signer
) -> None:
    examination = actions.verify_and_log(case.store, case.item_id, trusted=None, signer=technician)
    assert examination.report.ok
    line = len(case.lines())
    problems = _failed(verify_case(case.case_dir))
    assert any(
        p.startswith(
            f"custody.jsonl line {line}: signed by key {technician.fingerprint}, "
            "which did not open the case and is not trusted"
        )
        for p in problems
    ), problems
    both = [signer.fingerprint, technician.fingerprint]
    assert verify_case(case.case_dir, trusted_fingerprints=both).ok
    # With --trust, every key must be trusted, the one that opened the case included.
    only_technician = _failed(
        verify_case(case.case_dir, trusted_fingerprints=[technician.fingerprint])
    )
    assert any(
        p == f"custody.jsonl line 1: signed by key {signer.fingerprint}, which is not trusted"
        for p in only_technician
    )
    result = _cli(
        "verify",
        str(case.case_dir),
        "--trust",
        signer.fingerprint,
        "--trust",
        technician.fingerprint,
    )
    assert result.returncode == 0, result.stdout


# After case-closed ----------------------------------------------------------------------


def _close(case: RealCase, signer: Signer) -> int:
    actions.close_case(case.store, CASE, signer=signer)
    return len(case.lines())


def test_valid_closed_case_with_the_entries_allowed_after_closing(
    case: RealCase, signer: Signer
) -> None:
    closed_line = _close(case, signer)
    actions.verify_and_log(case.store, case.item_id, trusted=None, signer=signer)
    actions.transfer_item(
        case.store, case.item_id, to="Crown Prosecution", reason="disclosure", signer=signer
    )
    actions.note_item(case.store, case.item_id, text="copy made for the defence", signer=signer)
    _append(case.case_dir, signer, "exported", case.item_id, {"bundle": "reserved"})
    _append(case.case_dir, signer, "timestamped", case.item_id, {"token": "reserved"})
    with case.log.open("ab") as log:  # a crash tears the next append …
        log.write(b'{"action":"note","actor":"Det. A. Ex')
    assert repair_log(case.case_dir, case_id=CASE, actor=signer.operator, signer=signer)
    # … and what a capture refused at publish left behind is cleaned up.
    leftover = case.case_dir / "items" / ".staging-20261201T000000Z-0000dead"
    leftover.mkdir()
    (leftover / "archive.warc.gz").write_bytes(b"partial")
    assert actions.clean_case(case.store, CASE, signer=signer)
    actions_after = [json.loads(line)["action"] for line in case.lines()[closed_line:]]
    assert set(actions_after) == set(AFTER_CLOSE_ACTIONS)

    report = verify_case(case.case_dir)
    assert report.ok, report.problems
    assert report.facts is not None and report.facts.closed
    assert report.facts.closed_line == closed_line
    assert report.facts.closed_at == json.loads(case.lines()[closed_line - 1])["time"]
    facts = case_facts(CASE, case.log.read_bytes())
    assert facts.closed and facts.closed_at == report.facts.closed_at
    assert _cli("verify", str(case.case_dir)).returncode == 0


@pytest.mark.parametrize("action", sorted(set(ACTIONS) - set(AFTER_CLOSE_ACTIONS)), ids=lambda a: a)
def test_invalid_entry_after_case_closed(case: RealCase, signer: Signer, action: str) -> None:
    closed_line = _close(case, signer)
    lines = case.lines()
    item_id = case.item_id if action == "captured" else None
    lines.append(_forge(lines, signer, action=action, item_id=item_id))
    _write(case, lines, signer)
    problems = _failed(verify_case(case.case_dir))
    assert (
        f"custody.jsonl line {len(lines)}: {action!r} entry after the case was closed "
        f"(line {closed_line}); only verified, transferred, note, exported, timestamped, "
        "log-repaired, leftover-removed may follow 'case-closed'"
    ) in problems


def test_invalid_capture_logged_after_case_closed_fails_its_item_too(
    case: RealCase, signer: Signer
) -> None:
    closed_line = _close(case, signer)
    late = _capture(case.case_dir, signer)  # an attacker holding the key, not the tool
    line = closed_line + 1
    report = verify_case(case.case_dir)
    assert f"custody.jsonl line {line}: 'captured' entry after the case was closed " in (
        " ".join(_failed(report))
    )
    step7 = verify_item(case.case_dir / "items" / late).step(7)
    assert not step7.ok
    assert f"line {line}: 'captured' entry after the case was closed" in step7.detail
    result = _cli("verify", str(case.case_dir / "items" / late))
    assert result.returncode == 1 and "after the case was closed" in result.stdout


# The opening ----------------------------------------------------------------------------


def _log_of(signer: Signer, entries: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    lines: list[bytes] = []
    for action, details in entries:
        lines.append(
            build_entry(
                case_id=CASE,
                prev_line=lines[-1] if lines else None,
                seq=len(lines) + 1,
                time=TIME,
                actor=signer.operator,
                action=action,
                item_id=None,
                details=details,
                signer=signer,
            )
        )
    return lines


def test_invalid_first_entry_not_case_opened(case: RealCase, signer: Signer) -> None:
    lines = _log_of(signer, [("note", {"text": "no opening"}), ("note", {"text": "more"})])
    _write(case, lines, signer)
    problems = _failed(verify_case(case.case_dir))
    assert (
        "custody.jsonl line 1: the first entry is 'note', not 'case-opened' "
        "(a case's log starts with the signed record of its opening)"
    ) in problems
    with pytest.raises(CustodyLogDamaged, match="line 1: the first entry is 'note'"):
        case_facts(CASE, case.log.read_bytes())
    assert verify_case(case.case_dir).facts is None


def test_invalid_opening_without_its_facts(case: RealCase, signer: Signer) -> None:
    details = {k: v for k, v in CASE_FIELDS.items() if k != "authority"}
    lines = _log_of(signer, [("case-opened", details)])
    _write(case, lines, signer)
    problems = _failed(verify_case(case.case_dir))
    assert "custody.jsonl line 1: the 'case-opened' entry has no authority" in problems
    with pytest.raises(IntegrityError, match="has no authority"):
        case_facts(CASE, case.log.read_bytes())


def test_invalid_second_case_opened(case: RealCase, signer: Signer) -> None:
    lines = case.lines()
    lines.append(
        build_entry(
            case_id=CASE,
            prev_line=lines[-1],
            seq=len(lines) + 1,
            time=TIME,
            actor=signer.operator,
            action="case-opened",
            item_id=None,
            details={**CASE_FIELDS, "authority": "nobody"},
            signer=signer,
        )
    )
    _write(case, lines, signer)
    problems = _failed(verify_case(case.case_dir))
    assert (
        f"custody.jsonl line {len(lines)}: a second 'case-opened' entry "
        "(a case is opened once, on line 1)"
    ) in problems


def test_invalid_empty_log_in_a_case_folder(case: RealCase) -> None:
    case.log.write_bytes(b"")
    case.head.unlink()
    problems = _failed(verify_case(case.case_dir))
    assert any("the log has no entries" in p for p in problems)
    with pytest.raises(CustodyLogDamaged, match="empty"):
        case_facts(CASE, b"")


def test_case_facts_refuses_damage_it_cannot_read_past(case: RealCase) -> None:
    data = case.log.read_bytes()
    with pytest.raises(CustodyLogDamaged, match="incomplete line"):
        case_facts(CASE, data + b'{"seq":5')
    lines, _ = split_log(data)
    with pytest.raises(CustodyLogDamaged, match="line 2"):
        case_facts(CASE, b"\n".join([lines[0], b"garbage", *lines[2:]]) + b"\n")
    with pytest.raises(CustodyLogDamaged, match="genesis"):
        case_facts("2026-000999", data)
    edited = data.replace(CASE_FIELDS["authority"].encode(), b"Lt. J. Park, approval 99-999")
    with pytest.raises(CustodyLogDamaged, match="signature does not verify"):
        case_facts(CASE, edited)


# case.json against the signed opening -----------------------------------------------------


def test_invalid_case_json_edited_is_named(case: RealCase) -> None:
    record_path = case.case_dir / "case.json"
    record = json.loads(record_path.read_text())
    record["authority"] = "Chief of Police, verbal approval"
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    report = verify_case(case.case_dir)
    assert _failed(report) == [
        "case.json says authority 'Chief of Police, verbal approval', but the signed "
        f"'case-opened' entry (custody.jsonl line 1) says {CASE_FIELDS['authority']!r}"
    ]
    assert all(item.ok for item in report.items)
    result = _cli("verify", str(case.case_dir))
    assert result.returncode == 1 and "problem: case.json says authority" in result.stdout


def test_invalid_case_json_status_disagrees_with_the_log(case: RealCase, signer: Signer) -> None:
    closed_line = _close(case, signer)
    record_path = case.case_dir / "case.json"
    record = json.loads(record_path.read_text())
    record.update(status="open", closed_at=None, category="missing-person")
    record_path.write_text(json.dumps(record))
    problems = _failed(verify_case(case.case_dir))
    assert sorted(problems) == [
        "case.json says category 'missing-person', but the signed 'case-opened' entry "
        "(custody.jsonl line 1) says 'online-crime'",
        "case.json says status 'open', but the signed custody log records the case as "
        f"closed (custody.jsonl line {closed_line})",
    ]


def test_invalid_case_json_unreadable_is_named(case: RealCase) -> None:
    (case.case_dir / "case.json").write_text("{not json")
    problems = _failed(verify_case(case.case_dir))
    assert len(problems) == 1 and problems[0].startswith("case.json cannot be read")


# The shared log check ---------------------------------------------------------------------


def test_verify_case_log_is_what_both_the_case_and_step_7_use(
    case: RealCase, signer: Signer, intruder: Signer
) -> None:
    data, head = case.log.read_bytes(), case.head.read_bytes()
    good = verify_case_log(CASE, data, head)
    assert good.ok and good.facts is not None and good.entries == 4
    assert not verify_case_log(CASE, data, None).ok
    assert verify_case_log(CASE, data, None, head_required=False).ok
    lines = case.lines()
    lines.append(_forge(lines, intruder))
    forged = verify_case_log(CASE, b"".join(lines), _head(lines, intruder))
    assert not forged.ok
    assert len(forged.problems) == 2
    assert forged.problems[0].startswith(f"line 5: signed by key {intruder.fingerprint}, ")
    assert forged.problems[1].startswith(f"custody.head is signed by key {intruder.fingerprint}, ")
    assert parse_line(lines[-1])["signer"]["fingerprint"] == intruder.fingerprint


def test_case_facts_of_entries_already_parsed_are_case_facts(
    case: RealCase, signer: Signer
) -> None:
    def both() -> tuple[CaseFacts, CaseFacts]:
        data = case.log.read_bytes()
        lines, _ = split_log(data)
        parsed = [parse_line(line) for line in lines]
        return case_facts_of_entries(CASE, lines[0], parsed), case_facts(CASE, data)

    of_entries, facts = both()
    assert of_entries == facts and not facts.closed
    closed_line = _close(case, signer)
    of_entries, facts = both()
    assert of_entries == facts and facts.closed and facts.closed_line == closed_line
    # The opening is checked on line 1's own bytes, whatever was parsed of it.
    first = case.lines()[0]
    edited = first.replace(CASE_FIELDS["authority"].encode(), b"Lt. J. Park, approval 99-999")
    with pytest.raises(CustodyLogDamaged, match="signature does not verify"):
        case_facts_of_entries(CASE, edited, [parse_line(first)])
