"""Appending to the custody log: chaining, concurrency across processes, torn tails, repair."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import cases.custody as custody_module
from cases.custody import (
    REPAIR_BASE64_LIMIT,
    append_event,
    check_log_writable,
    events_for_item,
    read_events,
    repair_log,
)
from cases.store import EvidenceStore
from chain_of_custody.custody import verify_chain
from chain_of_custody.errors import CustodyLogDamaged, UsageError
from chain_of_custody.signing import Signer, encrypt_private_key, generate_private_key

CASE = "2026-0142"
ITEM = "20261125T120000Z-0a1b2c3d"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="Det. A. Example", private_key=generate_private_key())


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    store = EvidenceStore(tmp_path / "evidence")
    store.open_case(
        CASE,
        title="Cyberstalking complaint",
        category="online-crime",
        investigator="Det. A. Example",
        authority="Policy IV.B.1(d)",
    )
    return store.case_dir(CASE)


def _append(
    case_dir: Path, signer: Signer, action: str = "note", **details: str
) -> dict[str, object]:
    return append_event(
        case_dir,
        case_id=CASE,
        actor=signer.operator,
        action=action,
        item_id=None,
        details=details,
        signer=signer,
    )


def _log(case_dir: Path) -> bytes:
    return (case_dir / "custody.jsonl").read_bytes()


def _assert_verifies(case_dir: Path, signer: Signer, entries: int) -> None:
    report = verify_chain(CASE, _log(case_dir), trusted_fingerprints=[signer.fingerprint])
    assert report.problems == ()
    assert report.ok
    assert report.entries == entries


def test_three_appends_chain_and_verify(case_dir: Path, signer: Signer) -> None:
    first = append_event(
        case_dir,
        case_id=CASE,
        actor="Det. A. Example",
        action="case-opened",
        item_id=None,
        details={"title": "Cyberstalking complaint"},
        signer=signer,
    )
    second = append_event(
        case_dir,
        case_id=CASE,
        actor="Det. A. Example",
        action="captured",
        item_id=ITEM,
        details={"url": "https://example.org/post/1"},
        signer=signer,
    )
    third = _append(case_dir, signer, text="reviewed with supervisor")

    assert [first["seq"], second["seq"], third["seq"]] == [1, 2, 3]
    assert second["item_id"] == ITEM
    assert read_events(case_dir) == [first, second, third]
    assert events_for_item(case_dir, ITEM) == [second]
    assert events_for_item(case_dir, "20261125T120000Z-ffffffff") == []
    _assert_verifies(case_dir, signer, 3)


def test_reading_an_absent_log(case_dir: Path) -> None:
    assert read_events(case_dir) == []
    assert not (case_dir / "custody.jsonl").exists()


def test_missing_case_dir_is_not_created(tmp_path: Path, signer: Signer) -> None:
    missing = tmp_path / "evidence" / "NOPE"
    with pytest.raises(UsageError, match="no case directory"):
        append_event(
            missing,
            case_id="NOPE",
            actor="x",
            action="note",
            item_id=None,
            details={},
            signer=signer,
        )
    assert not missing.exists()


def test_tail_longer_than_a_read_chunk(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="a" * 200_000)
    _append(case_dir, signer, text="b" * 70_000)
    third = _append(case_dir, signer, text="short")
    assert third["seq"] == 3
    _assert_verifies(case_dir, signer, 3)


# -- concurrency ---------------------------------------------------------------------------

_WRITER = """
import sys
from pathlib import Path
from cases.custody import append_event
from chain_of_custody.signing import Signer, load_private_key

case_dir, case_id, key_file, passphrase, writer = sys.argv[1:6]
signer = Signer(operator=f"writer-{writer}",
                private_key=load_private_key(Path(key_file).read_bytes(), passphrase))
sys.stdout.write("ready\\n")
sys.stdout.flush()
sys.stdin.readline()  # start line: every writer begins at once
for n in range(5):
    append_event(Path(case_dir), case_id=case_id, actor=signer.operator, action="note",
                 item_id=None, details={"writer": writer, "n": n}, signer=signer)
"""


def test_eight_concurrent_writers(case_dir: Path, signer: Signer, tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(encrypt_private_key(signer.private_key, PASSPHRASE))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(case_dir), CASE, str(key_file), PASSPHRASE, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline() == "ready\n"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()

    events = read_events(case_dir)
    assert [e["seq"] for e in events] == list(range(1, 41))
    for i in range(8):
        mine = [e["details"]["n"] for e in events if e["details"]["writer"] == str(i)]
        assert mine == [0, 1, 2, 3, 4]
    _assert_verifies(case_dir, signer, 40)


# -- torn tails and repair -----------------------------------------------------------------


def test_a_log_read_again_parses_only_what_was_appended(
    case_dir: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(case_dir, signer, text="one")
    assert read_events(case_dir)[-1]["details"] == {"text": "one"}
    _append(case_dir, signer, text="two")
    parsed: list[bytes] = []
    real = custody_module.parse_line

    def counted(line: bytes) -> dict[str, object]:
        parsed.append(line)
        return real(line)

    monkeypatch.setattr(custody_module, "parse_line", counted)
    events = read_events(case_dir)
    assert [e["details"].get("text") for e in events[-2:]] == ["one", "two"]
    assert len(parsed) == 1  # only the appended line
    assert read_events(case_dir) == events and len(parsed) == 1  # nothing new, nothing parsed
    events[-1]["details"]["text"] = "changed by a caller"  # the caller's own copy
    assert read_events(case_dir)[-1]["details"] == {"text": "two"}

    # A line changed in place, even to as many bytes, is read as it now is: every line
    # is parsed again, not taken from what was read before.
    log = case_dir / "custody.jsonl"
    log.write_bytes(_log(case_dir).replace(b'"text":"one"', b'"text":"onf"'))
    again = read_events(case_dir)
    assert [e["details"].get("text") for e in again[-2:]] == ["onf", "two"]
    assert len(parsed) == 1 + len(again)

    # A malformed line appended after a read is named by its number in the whole log.
    with log.open("ab") as out:
        out.write(b"not an entry\n")
    with pytest.raises(CustodyLogDamaged, match=f"line {len(again) + 1}:") as info:
        read_events(case_dir)
    assert info.value.hint == f"run `osint-capture custody repair {CASE}`"


def test_torn_tail_blocks_appends_and_leaves_file_unchanged(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    _append(case_dir, signer, text="two")
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(b'{"action":"captured","actor":"Det. A. Exa')
    before = _log(case_dir)

    with pytest.raises(CustodyLogDamaged) as info:
        _append(case_dir, signer, text="three")
    assert info.value.hint == f"run `osint-capture custody repair {CASE}`"
    assert _log(case_dir) == before
    with pytest.raises(CustodyLogDamaged):
        read_events(case_dir)


def test_unparsable_last_line_blocks_appends(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(b"\x00\x00\x00garbage\n")
    before = _log(case_dir)
    with pytest.raises(CustodyLogDamaged, match="unreadable") as info:
        _append(case_dir, signer, text="two")
    assert info.value.hint == f"run `osint-capture custody repair {CASE}`"
    assert _log(case_dir) == before


def test_repair_cuts_the_torn_tail_and_records_it(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    _append(case_dir, signer, text="two")
    good = _log(case_dir)
    torn = b'{"action":"captured","actor":"Det. A. Exa'
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(torn)

    entry = repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer)

    assert entry is not None
    assert entry["action"] == "log-repaired"
    assert entry["seq"] == 3
    details = entry["details"]
    assert details["removed_size"] == len(torn)
    assert details["removed_sha256"] == hashlib.sha256(torn).hexdigest()
    assert base64.b64decode(details["removed_base64"]) == torn
    assert details["removed_base64_truncated"] is False
    assert details["truncated_at"] == len(good)
    assert _log(case_dir).startswith(good)
    _assert_verifies(case_dir, signer, 3)

    assert repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer) is None
    assert _append(case_dir, signer, text="after repair")["seq"] == 4
    _assert_verifies(case_dir, signer, 4)


def test_repair_removes_an_unparsable_last_line(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    damage = b'{"seq":2,"half":"\x00\x00\x00\x00\x00"}\n{"seq":3,'
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(damage)
    entry = repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer)
    assert entry is not None and entry["seq"] == 2
    assert base64.b64decode(entry["details"]["removed_base64"]) == damage
    _assert_verifies(case_dir, signer, 2)


def test_repair_of_a_torn_first_line(case_dir: Path, signer: Signer) -> None:
    (case_dir / "custody.jsonl").write_bytes(b'{"seq":1,"ti')
    entry = repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer)
    assert entry is not None and entry["seq"] == 1
    assert entry["details"]["truncated_at"] == 0
    _assert_verifies(case_dir, signer, 1)


def test_repair_keeps_only_64_kib_of_a_huge_tail(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    torn = bytes(range(256)).replace(b"\n", b" ") * 1000  # 256,000 bytes, no newline
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(torn)
    entry = repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer)
    assert entry is not None
    details = entry["details"]
    assert details["removed_size"] == len(torn)
    assert details["removed_sha256"] == hashlib.sha256(torn).hexdigest()
    assert base64.b64decode(details["removed_base64"]) == torn[:REPAIR_BASE64_LIMIT]
    assert details["removed_base64_truncated"] is True
    _assert_verifies(case_dir, signer, 2)


def test_repair_refuses_damage_deeper_than_the_last_line(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(b"not json\nnot json either\n")
    before = _log(case_dir)
    with pytest.raises(CustodyLogDamaged, match="not repaired automatically"):
        repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer)
    assert _log(case_dir) == before


def test_repair_of_a_healthy_or_absent_log_does_nothing(case_dir: Path, signer: Signer) -> None:
    assert repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer) is None
    assert not (case_dir / "custody.jsonl").exists()
    _append(case_dir, signer, text="one")
    before = _log(case_dir)
    assert repair_log(case_dir, case_id=CASE, actor=signer.operator, signer=signer) is None
    assert _log(case_dir) == before


def test_log_of_another_case_is_not_continued(case_dir: Path, signer: Signer) -> None:
    _append(case_dir, signer, text="one")
    with pytest.raises(CustodyLogDamaged, match="entry of case '2026-0142'"):
        append_event(
            case_dir,
            case_id="OTHER-1",
            actor="x",
            action="note",
            item_id=None,
            details={},
            signer=signer,
        )


def test_check_log_writable(case_dir: Path, signer: Signer) -> None:
    check_log_writable(case_dir, case_id=CASE)
    assert not (case_dir / "custody.jsonl").exists()
    _append(case_dir, signer, text="one")
    check_log_writable(case_dir, case_id=CASE)
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(b'{"seq":2')
    before = _log(case_dir)
    with pytest.raises(CustodyLogDamaged) as info:
        check_log_writable(case_dir, case_id=CASE)
    assert info.value.hint == f"run `osint-capture custody repair {CASE}`"
    assert _log(case_dir) == before


def _append_n(case_dir: Path, signer: Signer, n: int) -> None:
    for i in range(n):
        append_event(
            case_dir,
            case_id=CASE,
            actor=signer.operator,
            action="note",
            item_id=None,
            details={"n": i},
            signer=signer,
        )


def test_valid_signed_head_matches_the_log(case_dir: Path, signer: Signer) -> None:
    from chain_of_custody.custody import check_head

    _append_n(case_dir, signer, 3)
    data = (case_dir / "custody.jsonl").read_bytes()
    assert check_head(CASE, data, (case_dir / "custody.head").read_bytes()) == []


def test_invalid_entries_cut_off_the_end_are_detected(case_dir: Path, signer: Signer) -> None:
    from chain_of_custody.custody import check_head

    _append_n(case_dir, signer, 3)
    log = case_dir / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    cut = b"".join(lines[:-1])
    assert verify_chain(CASE, cut).ok, "the chain alone cannot see it"
    problems = check_head(CASE, cut, (case_dir / "custody.head").read_bytes())
    assert problems and "removed from its end" in problems[0]


def test_valid_head_one_entry_behind_after_a_crash(case_dir: Path, signer: Signer) -> None:
    from chain_of_custody.custody import check_head

    _append_n(case_dir, signer, 2)
    old_head = (case_dir / "custody.head").read_bytes()
    _append_n(case_dir, signer, 1)  # as if the process died before replacing the head
    data = (case_dir / "custody.jsonl").read_bytes()
    assert check_head(CASE, data, old_head) == []


def test_invalid_forged_head_is_detected(case_dir: Path, signer: Signer) -> None:
    from chain_of_custody.custody import check_head

    _append_n(case_dir, signer, 2)
    head = (case_dir / "custody.head").read_bytes().replace(b'"seq":2', b'"seq":1')
    data = (case_dir / "custody.jsonl").read_bytes()
    problems = check_head(CASE, data, head)
    assert any("signature does not verify" in p for p in problems)


def test_invalid_head_signed_by_an_outside_key_is_detected(case_dir: Path, signer: Signer) -> None:
    from chain_of_custody.custody import build_head, check_head

    _append_n(case_dir, signer, 3)
    lines = (case_dir / "custody.jsonl").read_bytes().splitlines(keepends=True)
    cut = b"".join(lines[:-1])
    intruder = Signer(operator="someone else", private_key=generate_private_key())
    forged = build_head(
        case_id=CASE,
        seq=2,
        last_line=lines[1],
        time="2026-11-25T12:00:00.000000Z",
        signer=intruder,
    )
    assert check_head(CASE, cut, forged) == [], "on its own the forged head is consistent"
    problems = check_head(CASE, cut, forged, {signer.fingerprint})
    assert any("signed no entry" in p for p in problems)


def test_the_log_is_never_written_through_a_symbolic_link(tmp_path: Path) -> None:
    from cases.custody import append_event as append

    case_dir = tmp_path / "CASE-LINK"
    case_dir.mkdir()
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(b"not the log\n")
    (case_dir / "custody.jsonl").symlink_to(elsewhere)
    signer = Signer(operator="Det. Test", private_key=generate_private_key())
    with pytest.raises(CustodyLogDamaged, match="symbolic link"):
        append(
            case_dir,
            case_id="CASE-LINK",
            actor=signer.operator,
            action="note",
            item_id=None,
            details={"text": "x"},
            signer=signer,
        )
    assert elsewhere.read_bytes() == b"not the log\n"
