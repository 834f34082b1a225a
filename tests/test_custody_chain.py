"""The custody log: a valid chain verifies; every kind of tampering is found and located."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection

import pytest

from chain_of_custody.canonical import canonical_json, is_canonical
from chain_of_custody.custody import (
    ACTIONS,
    build_entry,
    genesis_hash,
    line_sha256,
    parse_line,
    split_log,
    verify_chain,
)
from chain_of_custody.errors import CustodyLogDamaged
from chain_of_custody.signing import Signer, generate_private_key

CASE = "CASE-2026-0042"
OTHER_CASE = "CASE-2026-0043"
TIMES = [f"2026-11-25T12:00:0{n}.000000Z" for n in range(10)]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="DC Jane Doe", private_key=generate_private_key())


@pytest.fixture(scope="module")
def intruder() -> Signer:
    return Signer(operator="not in the case", private_key=generate_private_key())


def _log(signer: Signer, case_id: str = CASE, count: int = 5) -> list[bytes]:
    """``count`` complete lines (each ending in a newline) of a valid log."""
    actions = ["case-opened", "captured", "note", "verified", "exported", "note", "note"]
    lines: list[bytes] = []
    for seq in range(1, count + 1):
        lines.append(
            build_entry(
                case_id=case_id,
                prev_line=lines[-1] if lines else None,
                seq=seq,
                time=TIMES[seq],
                actor=signer.operator,
                action=actions[seq - 1],
                item_id=f"item-{seq}" if actions[seq - 1] == "captured" else None,
                details={"seq_note": f"entry {seq}", "text": "مرحبا 📸"},
                signer=signer,
            )
        )
    return lines


@pytest.fixture(scope="module")
def valid_lines(signer: Signer) -> list[bytes]:
    return _log(signer)


def _problems(
    data: bytes, case_id: str = CASE, trusted_fingerprints: Collection[str] | None = None
) -> list[str]:
    report = verify_chain(case_id, data, trusted_fingerprints)
    assert not report.ok
    assert report.problems
    return list(report.problems)


# The valid log --------------------------------------------------------------------------


def test_valid_log_verifies(valid_lines: list[bytes], signer: Signer) -> None:
    data = b"".join(valid_lines)
    report = verify_chain(CASE, data)
    assert report.ok, report.problems
    assert report.entries == 5
    assert report.problems == ()
    assert report.head_sha256 == line_sha256(valid_lines[-1])
    assert verify_chain(CASE, data, trusted_fingerprints=[signer.fingerprint]).ok


def test_entries_have_the_documented_fields(valid_lines: list[bytes], signer: Signer) -> None:
    first = parse_line(valid_lines[0])
    assert set(first) == {
        "seq",
        "time",
        "case_id",
        "actor",
        "action",
        "item_id",
        "details",
        "prev_sha256",
        "signer",
        "signature",
    }
    assert first["seq"] == 1
    assert first["prev_sha256"] == genesis_hash(CASE)
    assert first["signer"] == {
        "fingerprint": signer.fingerprint,
        "public_key": signer.public_key_pem,
    }
    assert first["details"]["text"] == "مرحبا 📸"
    second = parse_line(valid_lines[1])
    assert second["prev_sha256"] == line_sha256(valid_lines[0])
    assert second["item_id"] == "item-2"
    for line in valid_lines:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert is_canonical(line[:-1])
        base64.b64decode(json.loads(line)["signature"], validate=True)


def test_genesis_hash_binds_the_case() -> None:
    assert genesis_hash(CASE) != genesis_hash(OTHER_CASE)
    assert len(genesis_hash(CASE)) == 64


def test_actions_are_documented() -> None:
    assert "captured" in ACTIONS and "log-repaired" in ACTIONS and len(ACTIONS) == 11
    assert "exported" in ACTIONS and "timestamped" in ACTIONS  # reserved for their issues


def test_an_empty_log_is_a_valid_empty_chain() -> None:
    report = verify_chain(CASE, b"")
    assert report.ok and report.entries == 0
    assert report.head_sha256 == genesis_hash(CASE)


# Tampering ----------------------------------------------------------------------------


def test_invalid_deleted_line(valid_lines: list[bytes]) -> None:
    data = b"".join(valid_lines[:2] + valid_lines[3:])
    problems = _problems(data)
    assert any(p.startswith("line 3: seq is 4, expected 3") for p in problems)
    assert any(p.startswith("line 3: prev_sha256 does not match line 2") for p in problems)
    # Found where it happened, not smeared over every later line.
    assert all(p.startswith("line 3:") for p in problems)


def test_invalid_deleted_first_line(valid_lines: list[bytes]) -> None:
    problems = _problems(b"".join(valid_lines[1:]))
    assert any("line 1: prev_sha256 is not the genesis hash" in p for p in problems)


def test_invalid_edited_byte_in_details(valid_lines: list[bytes]) -> None:
    edited = valid_lines[2].replace(b"entry 3", b"entry 8")
    assert edited != valid_lines[2] and len(edited) == len(valid_lines[2])
    problems = _problems(b"".join([*valid_lines[:2], edited, *valid_lines[3:]]))
    assert "line 3: signature does not verify (the entry was changed after signing)" in problems
    assert any(p.startswith("line 4: prev_sha256 does not match line 3") for p in problems)


def test_invalid_inserted_line_even_when_validly_signed(
    valid_lines: list[bytes], signer: Signer
) -> None:
    # An insider with the key forges an entry that chains onto line 2 …
    forged = build_entry(
        case_id=CASE,
        prev_line=valid_lines[1],
        seq=3,
        time=TIMES[3],
        actor=signer.operator,
        action="note",
        item_id=None,
        details={"text": "added later"},
        signer=signer,
    )
    problems = _problems(b"".join([*valid_lines[:2], forged, *valid_lines[2:]]))
    # … but the original line 3 (now line 4) no longer chains onto it.
    assert any(p.startswith("line 4: prev_sha256 does not match line 3") for p in problems)
    assert any(p.startswith("line 4: seq is 3, expected 4") for p in problems)


def test_invalid_reordered_lines(valid_lines: list[bytes]) -> None:
    swapped = [valid_lines[0], valid_lines[2], valid_lines[1], *valid_lines[3:]]
    problems = _problems(b"".join(swapped))
    assert any(p.startswith("line 2: seq is 3, expected 2") for p in problems)
    assert any(p.startswith("line 2: prev_sha256") for p in problems)
    assert any(p.startswith("line 3: prev_sha256") for p in problems)
    assert any(p.startswith("line 4: prev_sha256") for p in problems)


def test_invalid_duplicated_line(valid_lines: list[bytes]) -> None:
    problems = _problems(b"".join([*valid_lines[:3], valid_lines[2], *valid_lines[3:]]))
    assert any(p.startswith("line 4: seq is 3, expected 4") for p in problems)


def test_invalid_log_of_another_case(signer: Signer) -> None:
    other = b"".join(_log(signer, case_id=OTHER_CASE))
    problems = _problems(other, case_id=CASE)
    assert any("line 1: prev_sha256 is not the genesis hash" in p for p in problems)
    assert f"line 1: case_id is '{OTHER_CASE}', not '{CASE}'" in problems


def test_invalid_swapped_case_id_in_one_entry(valid_lines: list[bytes]) -> None:
    edited = valid_lines[1].replace(CASE.encode(), OTHER_CASE.encode())
    problems = _problems(b"".join([*valid_lines[:1], edited, *valid_lines[2:]]))
    assert f"line 2: case_id is '{OTHER_CASE}', not '{CASE}'" in problems
    assert "line 2: signature does not verify (the entry was changed after signing)" in problems


def test_invalid_torn_tail(valid_lines: list[bytes]) -> None:
    torn = valid_lines[4][:40]
    data = b"".join(valid_lines[:4]) + torn
    problems = _problems(data)
    assert problems == [
        f"line 5: torn line of {len(torn)} bytes with no newline "
        "(an interrupted write, or text appended by hand)"
    ]
    lines, tail = split_log(data)
    assert len(lines) == 4 and tail == torn


def test_invalid_signature(valid_lines: list[bytes], intruder: Signer) -> None:
    entry = json.loads(valid_lines[3])
    entry["signature"] = base64.b64encode(intruder.sign(b"something else")).decode()
    resigned = canonical_json(entry) + b"\n"
    problems = _problems(b"".join([*valid_lines[:3], resigned, *valid_lines[4:]]))
    assert "line 4: signature does not verify (the entry was changed after signing)" in problems


def test_invalid_fingerprint_that_is_not_the_keys(
    valid_lines: list[bytes], signer: Signer, intruder: Signer
) -> None:
    # Signed correctly by `signer`, but claiming the intruder's fingerprint.
    entry = json.loads(valid_lines[0])
    del entry["signature"]
    entry["signer"]["fingerprint"] = intruder.fingerprint
    entry["signature"] = base64.b64encode(signer.sign(canonical_json(entry))).decode()
    line = canonical_json(entry) + b"\n"
    problems = _problems(line)
    assert problems == ["line 1: signer fingerprint does not match the public key in the entry"]


def test_invalid_untrusted_signer(valid_lines: list[bytes], intruder: Signer) -> None:
    data = b"".join(valid_lines)
    problems = _problems(data, trusted_fingerprints=[intruder.fingerprint])
    assert len(problems) == 5
    assert all("which is not trusted" in p for p in problems)


def test_invalid_not_json_and_not_canonical(valid_lines: list[bytes]) -> None:
    pretty = json.dumps(json.loads(valid_lines[1]), indent=1).replace("\n", " ").encode() + b"\n"
    data = valid_lines[0] + pretty + b"garbage\n" + b"".join(valid_lines[3:])
    problems = _problems(data)
    assert any(p.startswith("line 2: custody entry is not canonical JSON") for p in problems)
    assert any(p.startswith("line 3: custody entry is not canonical JSON") for p in problems)
    # Line 4 follows the damaged lines by position, so its seq is not flagged again.
    assert not any(p.startswith("line 4: seq") for p in problems)


def test_cut_off_tail_is_invisible_to_the_chain_alone(valid_lines: list[bytes]) -> None:
    # The documented limit of any hash chain: the remaining prefix is itself valid.
    # The head hash changes, which is why exports and manifests anchor it elsewhere.
    report = verify_chain(CASE, b"".join(valid_lines[:3]))
    assert report.ok
    assert report.head_sha256 != verify_chain(CASE, b"".join(valid_lines)).head_sha256


def test_clock_going_backwards_is_a_warning_not_a_failure(signer: Signer) -> None:
    first = build_entry(
        case_id=CASE,
        prev_line=None,
        seq=1,
        time=TIMES[5],
        actor="a",
        action="note",
        item_id=None,
        details={},
        signer=signer,
    )
    second = build_entry(
        case_id=CASE,
        prev_line=first,
        seq=2,
        time=TIMES[1],
        actor="a",
        action="note",
        item_id=None,
        details={},
        signer=signer,
    )
    report = verify_chain(CASE, first + second)
    assert report.ok
    assert len(report.warnings) == 1 and report.warnings[0].startswith("line 2:")


# Appending -------------------------------------------------------------------------


def test_build_entry_refuses_to_chain_onto_damage(valid_lines: list[bytes], signer: Signer) -> None:
    with pytest.raises(CustodyLogDamaged):
        build_entry(
            case_id=CASE,
            prev_line=b"not json",
            seq=2,
            time=TIMES[1],
            actor="a",
            action="note",
            item_id=None,
            details={},
            signer=signer,
        )
    with pytest.raises(ValueError, match="does not follow"):
        build_entry(
            case_id=CASE,
            prev_line=valid_lines[4],
            seq=9,
            time=TIMES[1],
            actor="a",
            action="note",
            item_id=None,
            details={},
            signer=signer,
        )
    with pytest.raises(ValueError, match="seq 1"):
        build_entry(
            case_id=CASE,
            prev_line=None,
            seq=2,
            time=TIMES[1],
            actor="a",
            action="note",
            item_id=None,
            details={},
            signer=signer,
        )
    with pytest.raises(TypeError, match="float"):
        build_entry(
            case_id=CASE,
            prev_line=None,
            seq=1,
            time=TIMES[1],
            actor="a",
            action="note",
            item_id=None,
            details={"ratio": 0.5},
            signer=signer,
        )


def test_appended_entry_extends_a_valid_chain(valid_lines: list[bytes], signer: Signer) -> None:
    data = b"".join(valid_lines)
    prev, seq = valid_lines[-1], 6
    line = build_entry(
        case_id=CASE,
        prev_line=prev,
        seq=seq,
        time=TIMES[7],
        actor=signer.operator,
        action="transferred",
        item_id=None,
        details={"to": "DS Smith"},
        signer=signer,
    )
    report = verify_chain(CASE, data + line)
    assert report.ok and report.entries == 6
    assert report.head_sha256 == line_sha256(line)


def test_parse_line_rejects_malformed_entries(valid_lines: list[bytes]) -> None:
    entry = json.loads(valid_lines[0])
    del entry["actor"]
    with pytest.raises(CustodyLogDamaged, match="malformed"):
        parse_line(canonical_json(entry))
    with pytest.raises(CustodyLogDamaged, match="canonical"):
        parse_line(b"[1,2")
    assert parse_line(valid_lines[0]) == parse_line(valid_lines[0][:-1])
