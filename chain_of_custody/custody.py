"""The custody log: a hash-chained, signed, append-only record of everything done in a case.

``<home>/<CASE_ID>/custody.jsonl`` holds one canonical-JSON entry per line, each line ended
by ``\\n``. Every entry carries

* ``seq`` — 1, 2, 3 … in file order;
* ``prev_sha256`` — the SHA-256 of the previous line's bytes (without its newline), or for
  the first entry :func:`genesis_hash` of the case, which binds the log to its case;
* ``signer`` and ``signature`` — the operator's public key and a DER ECDSA-SHA256
  signature (base64) over the canonical JSON of the entry without ``signature``.

Editing, deleting, inserting or reordering a line therefore breaks the chain at that
point, and altering an entry's content breaks its signature. What a chain cannot show on
its own is that lines were cut off the *end*: the last remaining line still verifies. So
every append also replaces ``custody.head`` (see :func:`build_head`): the signed sequence
number and hash of the newest entry. A log shorter than its signed head, or whose entry at
that number differs, has lost entries from its end. (Rolling back *both* files to an older
genuine pair is only caught by a hash recorded elsewhere: an export, a report, a copy.)

A log is also the signed record of its case: line 1 is the ``case-opened`` entry (title,
category, investigator, authority), signed by the key that opened the case, and
:func:`case_facts` reads those facts from it. :func:`verify_case_log` holds a case's log to
the rules that follow from that (see its docstring), on top of :func:`verify_chain` and
:func:`check_head`.

This module defines the format and checks it; appending under a file lock is done by
:mod:`cases`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from chain_of_custody.canonical import canonical_json, parse_canonical
from chain_of_custody.errors import CustodyLogDamaged
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import CUSTODY_LOG_NAME
from chain_of_custody.signing import (
    Signer,
    fingerprint_of,
    load_public_key,
    normalize_fingerprint,
    verify_signature,
)
from chain_of_custody.timeutil import parse_utc

__all__ = [
    "ACTIONS",
    "AFTER_CLOSE_ACTIONS",
    "CASE_OPENED_DETAILS",
    "CUSTODY_LOG_NAME",
    "HEAD_NAME",
    "CaseFacts",
    "ChainReport",
    "build_entry",
    "build_head",
    "case_facts",
    "case_facts_of_entries",
    "check_head",
    "genesis_hash",
    "head_entry_in_log",
    "line_sha256",
    "parse_line",
    "split_log",
    "verify_case_log",
    "verify_chain",
]


ACTIONS = (
    "case-opened",
    "case-closed",
    "captured",
    "capture-refused",
    "verified",
    "transferred",
    "exported",
    "note",
    "leftover-removed",
    "log-repaired",
    "timestamped",
)

# What may follow a case's `case-closed` entry: examinations, transfers, notes, exports and
# timestamps of what was captured before, and the repair of a line a crash tore while one
# of those was being written (it removes only bytes that are no entry, and records them).
AFTER_CLOSE_ACTIONS = (
    "verified",
    "transferred",
    "note",
    "exported",
    "timestamped",
    "log-repaired",
    # Removing what an interrupted capture left (never evidence): a capture refused at
    # publish because the case closed meanwhile leaves exactly that.
    "leftover-removed",
)

# The details of a `case-opened` entry: the case's signed facts.
CASE_OPENED_DETAILS = ("title", "category", "investigator", "authority")

_GENESIS_PREFIX = "osint-capture custody genesis "
_ENTRY_KEYS = frozenset(
    {
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
)
_SIGNER_KEYS = frozenset({"fingerprint", "public_key"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def genesis_hash(case_id: str) -> str:
    """The ``prev_sha256`` of a case's first entry: ties the log to ``case_id``."""
    return sha256_bytes((_GENESIS_PREFIX + case_id).encode("utf-8"))


def line_sha256(line: bytes) -> str:
    """SHA-256 of a log line without its newline: the next entry's ``prev_sha256``."""
    return sha256_bytes(line.removesuffix(b"\n"))


def build_entry(
    *,
    case_id: str,
    prev_line: bytes | None,
    seq: int,
    time: str,
    actor: str,
    action: str,
    item_id: str | None,
    details: Mapping[str, Any],
    signer: Signer,
) -> bytes:
    """The complete, signed log line (ending in ``\\n``) to append after ``prev_line``.

    ``prev_line`` is the last line now in the log (with or without its newline), or None
    when this is the first entry (``seq`` 1). Raises CustodyLogDamaged if ``prev_line`` is
    not a valid entry — appending would chain onto damage — and ValueError if ``seq`` or
    ``case_id`` do not continue it, or a field is malformed.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq must be an integer starting at 1")
    if prev_line is None:
        if seq != 1:
            raise ValueError(f"seq {seq} needs the previous line; only seq 1 starts a log")
        prev_sha256 = genesis_hash(case_id)
    else:
        previous = parse_line(prev_line)
        if previous["case_id"] != case_id:
            raise ValueError(
                f"the previous line belongs to case {previous['case_id']!r}, not {case_id!r}"
            )
        if seq != previous["seq"] + 1:
            raise ValueError(f"seq {seq} does not follow the previous entry's {previous['seq']}")
        prev_sha256 = line_sha256(prev_line)
    for name, value in (("case_id", case_id), ("actor", actor), ("action", action)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    parse_utc(time)
    unsigned: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "case_id": case_id,
        "actor": actor,
        "action": action,
        "item_id": item_id,
        "details": dict(details),
        "prev_sha256": prev_sha256,
        "signer": {"fingerprint": signer.fingerprint, "public_key": signer.public_key_pem},
    }
    signature = signer.sign(canonical_json(unsigned))
    line = canonical_json({**unsigned, "signature": base64.b64encode(signature).decode("ascii")})
    # Refuse to hand out a line that our own reader would reject.
    parse_line(line)
    return line + b"\n"


def parse_line(line: bytes) -> dict[str, Any]:
    """One log line (trailing newline optional) as a dict; CustodyLogDamaged if malformed.

    Checks form only — canonical JSON, the fields and their types. Signatures and chaining
    are checked by :func:`verify_chain`.
    """
    try:
        entry = parse_canonical(line.removesuffix(b"\n"))
    except ValueError as exc:
        raise CustodyLogDamaged(f"custody entry is not canonical JSON: {exc}") from None
    try:
        _check_entry(entry)
    except (ValueError, TypeError) as exc:
        raise CustodyLogDamaged(f"custody entry is malformed: {exc}") from None
    result: dict[str, Any] = entry
    return result


def _check_entry(entry: object) -> None:
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    if entry.keys() != _ENTRY_KEYS:
        missing = sorted(_ENTRY_KEYS - entry.keys())
        extra = sorted(entry.keys() - _ENTRY_KEYS)
        raise ValueError(f"fields missing: {missing or 'none'}; unknown fields: {extra or 'none'}")
    seq = entry["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq must be a positive integer")
    for name in ("time", "case_id", "actor", "action", "signature"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise ValueError(f"{name} must be a non-empty string")
    parse_utc(entry["time"])
    if entry["item_id"] is not None and not isinstance(entry["item_id"], str):
        raise ValueError("item_id must be a string or null")
    if not isinstance(entry["details"], dict):
        raise ValueError("details must be an object")
    if not isinstance(entry["prev_sha256"], str) or not _SHA256_HEX.fullmatch(entry["prev_sha256"]):
        raise ValueError("prev_sha256 must be 64 lowercase hex digits")
    signer = entry["signer"]
    if not isinstance(signer, dict) or signer.keys() != _SIGNER_KEYS:
        raise ValueError("signer must have exactly the fields fingerprint and public_key")
    if not all(isinstance(signer[name], str) for name in _SIGNER_KEYS):
        raise ValueError("signer.fingerprint and signer.public_key must be strings")


def split_log(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without newlines) and the torn tail after the last newline (or b"")."""
    end = data.rfind(b"\n")
    if end == -1:
        return [], data
    return data[:end].split(b"\n"), data[end + 1 :]


HEAD_NAME = "custody.head"


def build_head(*, case_id: str, seq: int, last_line: bytes, time: str, signer: Signer) -> bytes:
    """The signed head record of a log whose newest entry (number ``seq``) is ``last_line``."""
    unsigned = {
        "case_id": case_id,
        "seq": seq,
        "head_sha256": line_sha256(last_line),
        "time": time,
        "signer": {"fingerprint": signer.fingerprint, "public_key": signer.public_key_pem},
    }
    signature = base64.b64encode(signer.sign(canonical_json(unsigned))).decode("ascii")
    return canonical_json({**unsigned, "signature": signature}) + b"\n"


def head_entry_in_log(head: bytes, data: bytes) -> tuple[int, str, bool]:
    """The entry a custody head copy names (a stamp's data: its ``seq`` and
    ``head_sha256``), and whether the log bytes ``data`` hold it (that number, that line
    hash). Raises ValueError for bytes that are not a custody head."""
    try:
        record = parse_canonical(head.rstrip(b"\n"))
        seq, recorded = int(record["seq"]), str(record["head_sha256"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a custody head") from None
    lines, _ = split_log(data)
    return seq, recorded, 1 <= seq <= len(lines) and line_sha256(lines[seq - 1]) == recorded


def check_head(
    case_id: str, data: bytes, head: bytes, signers: Collection[str] | None = None
) -> list[str]:
    """Problems (sentences) with a signed head against the log bytes ``data``; [] if none.

    ``signers``: the fingerprints allowed to sign the head — those that signed the
    log's own entries (or the trusted keys), so nobody can cut entries off and sign a
    fresh head with a key of their own. (:func:`verify_case_log` holds the head of a
    case's log to the key that opened the case instead.)

    A log *longer* than its head is accepted: a crash between appending an entry and
    replacing the head leaves exactly that, and the extra entries are still chained.
    """

    def signer_problem(fingerprint: str) -> str | None:
        if signers is None or fingerprint in signers:
            return None
        return f"{HEAD_NAME} is signed by key {fingerprint}, which signed no entry of the log"

    return _check_head(case_id, data, head, signer_problem)


def _check_head(
    case_id: str, data: bytes, head: bytes, signer_problem: Callable[[str], str | None]
) -> list[str]:
    try:
        record = parse_canonical(head.removesuffix(b"\n"))
        unsigned = {k: v for k, v in record.items() if k != "signature"}
        seq, head_sha, signer = record["seq"], record["head_sha256"], record["signer"]
        signature = base64.b64decode(record["signature"], validate=True)
        public_key = signer["public_key"]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return [f"{HEAD_NAME} is not a valid head record"]
    problems = []
    if not verify_signature(public_key, canonical_json(unsigned), signature):
        problems.append(f"{HEAD_NAME} signature does not verify")
    try:
        actual = fingerprint_of(load_public_key(public_key))
    except ValueError:
        actual = ""
    if actual != signer.get("fingerprint"):
        problems.append(f"{HEAD_NAME} names a fingerprint that is not its key's")
    elif (problem := signer_problem(actual)) is not None:
        problems.append(problem)
    if record.get("case_id") != case_id:
        problems.append(f"{HEAD_NAME} belongs to case {record.get('case_id')!r}, not {case_id!r}")
    lines, _ = split_log(data)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        problems.append(f"{HEAD_NAME} has no valid sequence number")
    elif seq > len(lines):
        problems.append(
            f"the log has {len(lines)} entries but its signed head records entry {seq}: "
            "entries were removed from its end"
        )
    elif line_sha256(lines[seq - 1]) != head_sha:
        problems.append(f"entry {seq} is not the entry the signed head records")
    return problems


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`.

    ``head_sha256`` is the ``prev_sha256`` the next entry must carry: the hash of the
    last complete line, or the genesis hash for an empty log. ``warnings`` are oddities
    that are not proof of tampering (a clock stepping backwards). ``facts`` (only from
    :func:`verify_case_log`) are the case's facts from its signed opening entry, or None
    when line 1 is not a valid one.
    """

    ok: bool
    entries: int
    problems: tuple[str, ...]
    head_sha256: str
    warnings: tuple[str, ...] = ()
    facts: CaseFacts | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "head_sha256": self.head_sha256,
            "case": None if self.facts is None else self.facts.to_dict(),
        }


def verify_chain(
    case_id: str,
    data: bytes,
    trusted_fingerprints: Collection[str] | None = None,
) -> ChainReport:
    """Check every line of a custody log of case ``case_id``; never raises for bad content.

    Finds torn tails, malformed lines, seq gaps/duplicates/reordering, broken hash links
    (edits, deletions, insertions, reordering), bad signatures, fingerprints that do not
    match their key, signers outside ``trusted_fingerprints`` (when given) and entries of
    another case. Problems are sentences naming the 1-based line number.

    This is the chain alone. A case's log is checked with :func:`verify_case_log`, which
    adds its head and the rules of a case (its opening, its signer, its closing).
    """
    trusted = None if trusted_fingerprints is None else _normalized(trusted_fingerprints)
    lines, tail = split_log(data)
    problems: list[str] = []
    warnings: list[str] = []
    expected_prev = genesis_hash(case_id)
    highest_seq = 0
    previous_time = None
    for number, line in enumerate(lines, start=1):
        link = expected_prev
        expected_prev = line_sha256(line)
        try:
            entry = parse_line(line)
        except CustodyLogDamaged as exc:
            problems.append(f"line {number}: {exc.message}")
            # Assume the damaged line held the next seq, so later lines are not all flagged.
            highest_seq += 1
            continue
        # Compare with the highest seq so far: one moved or missing line is reported
        # where it happens instead of making every later line look out of place.
        seq = entry["seq"]
        if seq != highest_seq + 1:
            problems.append(
                f"line {number}: seq is {seq}, expected {highest_seq + 1} "
                "(an entry is missing, repeated or out of order)"
            )
        highest_seq = max(highest_seq, seq)
        if entry["prev_sha256"] != link:
            if number == 1:
                problems.append(
                    f"line 1: prev_sha256 is not the genesis hash of case {case_id!r} "
                    "(the log's start was removed, or the log belongs to another case)"
                )
            else:
                problems.append(
                    f"line {number}: prev_sha256 does not match line {number - 1} "
                    "(a line before it was edited, removed, inserted or moved)"
                )
        if entry["case_id"] != case_id:
            problems.append(f"line {number}: case_id is {entry['case_id']!r}, not {case_id!r}")
        problems.extend(f"line {number}: {p}" for p in _signature_problems(entry, trusted))
        moment = parse_utc(entry["time"])
        if previous_time is not None and moment < previous_time:
            warnings.append(f"line {number}: time {entry['time']} is earlier than the line before")
        previous_time = moment
    if tail:
        problems.append(
            f"line {len(lines) + 1}: torn line of {len(tail)} bytes with no newline "
            "(an interrupted write, or text appended by hand)"
        )
    return ChainReport(
        ok=not problems,
        entries=len(lines),
        problems=tuple(problems),
        head_sha256=expected_prev,
        warnings=tuple(warnings),
    )


def _signature_problems(entry: Mapping[str, Any], trusted: frozenset[str] | None) -> list[str]:
    signer = entry["signer"]
    problems = []
    try:
        key = load_public_key(signer["public_key"])
    except ValueError as exc:
        return [f"signer public key is unusable: {exc}"]
    actual = fingerprint_of(key)
    if actual != signer["fingerprint"]:
        problems.append("signer fingerprint does not match the public key in the entry")
    # Trust is decided on the key that verifies the signature, not on the label beside it.
    if trusted is not None and actual not in trusted:
        problems.append(f"signed by key {actual}, which is not trusted")
    try:
        signature = base64.b64decode(entry["signature"], validate=True)
    except (binascii.Error, ValueError):
        problems.append("signature is not valid base64")
        return problems
    unsigned = {name: value for name, value in entry.items() if name != "signature"}
    if not verify_signature(signer["public_key"], canonical_json(unsigned), signature):
        problems.append("signature does not verify (the entry was changed after signing)")
    return problems


def _normalized(fingerprints: Collection[str]) -> frozenset[str]:
    if isinstance(fingerprints, str):
        # A lone string is one fingerprint, not a collection of 64 characters.
        fingerprints = (fingerprints,)
    result = set()
    for text in fingerprints:
        try:
            result.add(normalize_fingerprint(text))
        except ValueError:
            # A malformed fingerprint trusts nothing; the caller validates user input.
            continue
    return frozenset(result)


# The case a log records --------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """A case's facts as its custody log records them, under signature.

    ``title``, ``category``, ``investigator``, ``authority``, ``opened_at`` (the entry's
    ``time``) and ``opened_by`` (the fingerprint of the key that signed it) come from the
    ``case-opened`` entry on line 1; ``closed``, ``closed_at`` and ``closed_line`` (its
    line number) from the first ``case-closed`` entry, if any. Unlike ``case.json``
    (unsigned, rewritten on close), this is what the case's identity, purpose and state
    are taken from.
    """

    case_id: str
    title: str
    category: str
    investigator: str
    authority: str
    opened_at: str
    opened_by: str
    closed: bool = False
    closed_at: str | None = None
    closed_line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def case_facts(case_id: str, data: bytes) -> CaseFacts:
    """The signed facts of case ``case_id`` from the bytes of its custody log.

    Raises CustodyLogDamaged (an IntegrityError) when the log is empty or line 1 is not a
    valid opening of this case: a well-formed ``case-opened`` entry with ``seq`` 1, the
    genesis hash of ``case_id``, no ``item_id``, non-empty string details ``title``,
    ``category``, ``investigator`` and ``authority``, and a signature that verifies with
    the key it names. Also raises when any later line is malformed or the log ends in a
    torn line: whether such a log closed the case cannot be told, so it is not guessed.

    Reads the log, it does not verify it: the signatures after line 1 and the chain are
    :func:`verify_case_log`'s to check. A ``case-closed`` entry counts as closing the
    case even if it was not validly signed, so a damaged log never reads as more open
    than it is.
    """
    lines, tail = split_log(data)
    prefix = f"the custody log of case {case_id!r}"
    if tail:
        raise CustodyLogDamaged(f"{prefix} ends in an incomplete line")
    if not lines:
        raise CustodyLogDamaged(f"{prefix} is empty: it has no 'case-opened' entry")
    facts = _opening_facts(case_id, lines[0])
    later = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            later.append(parse_line(line))
        except CustodyLogDamaged as exc:
            raise CustodyLogDamaged(f"{prefix}, line {number}: {exc.message}") from None
    return _closed_by(facts, later)


def case_facts_of_entries(
    case_id: str, first_line: bytes, entries: Sequence[Mapping[str, Any]]
) -> CaseFacts:
    """:func:`case_facts` of a log its reader has already split and parsed.

    ``first_line`` is the bytes of line 1 (the opening is checked on them, signature
    included) and ``entries`` every complete line parsed by :func:`parse_line`, in order,
    line 1 first: for a reader that keeps what it parsed of a log that only grows, so it
    parses each line once. What it finds is what :func:`case_facts` finds.
    """
    return _closed_by(_opening_facts(case_id, first_line), entries[1:])


def _closed_by(facts: CaseFacts, later: Sequence[Mapping[str, Any]]) -> CaseFacts:
    """``facts`` with the first ``case-closed`` of the entries after line 1 (``later``)."""
    for number, entry in enumerate(later, start=2):
        if entry["action"] == "case-closed":
            return replace(facts, closed=True, closed_at=entry["time"], closed_line=number)
    return facts


def _opening_facts(case_id: str, line: bytes) -> CaseFacts:
    """The facts line 1 records; CustodyLogDamaged unless it is a valid signed opening."""
    prefix = f"the custody log of case {case_id!r} does not start with its valid opening"
    try:
        entry = parse_line(line)
    except CustodyLogDamaged as exc:
        raise CustodyLogDamaged(f"{prefix}: line 1: {exc.message}") from None
    problems = _opening_problems(entry)
    if entry["seq"] != 1:
        problems.append(f"seq is {entry['seq']}, not 1")
    if entry["prev_sha256"] != genesis_hash(case_id):
        problems.append(f"prev_sha256 is not the genesis hash of case {case_id!r}")
    if entry["case_id"] != case_id:
        problems.append(f"case_id is {entry['case_id']!r}, not {case_id!r}")
    problems.extend(_signature_problems(entry, None))
    if problems:
        raise CustodyLogDamaged(f"{prefix}: line 1: {'; '.join(problems)}")
    details = entry["details"]
    return CaseFacts(
        case_id=case_id,
        title=details["title"],
        category=details["category"],
        investigator=details["investigator"],
        authority=details["authority"],
        opened_at=entry["time"],
        opened_by=entry["signer"]["fingerprint"],
    )


def _opening_problems(entry: Mapping[str, Any]) -> list[str]:
    """What keeps a (well-formed) first entry from being a case's opening."""
    if entry["action"] != "case-opened":
        return [
            f"the first entry is {entry['action']!r}, not 'case-opened' "
            "(a case's log starts with the signed record of its opening)"
        ]
    problems = []
    if entry["item_id"] is not None:
        problems.append("the 'case-opened' entry names an item")
    details = entry["details"]
    for name in CASE_OPENED_DETAILS:
        value = details.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"the 'case-opened' entry has no {name}")
    return problems


def verify_case_log(
    case_id: str,
    data: bytes,
    head: bytes | None,
    trusted_fingerprints: Collection[str] | None = None,
    *,
    head_required: bool = True,
) -> ChainReport:
    """Check the custody log of case ``case_id`` and its signed head; never raises.

    Everything :func:`verify_chain` checks, and:

    * the log is not empty, and line 1 is the case's opening: a ``case-opened`` entry
      (``seq`` 1, chained to the genesis hash, of this case, with no ``item_id`` and
      non-empty ``title``, ``category``, ``investigator`` and ``authority``); no later
      line is another ``case-opened``;
    * signers: without ``trusted_fingerprints``, every entry and the head are signed by
      the key that signed line 1; with them, every entry and the head by a trusted key
      (the opening's included), and the head by a key that also signed an entry;
    * after the first ``case-closed`` entry only :data:`AFTER_CLOSE_ACTIONS` follow;
    * the head (``head``: the bytes of ``custody.head``, None if there is none) passes
      :func:`check_head`'s checks; a missing head is a problem when ``head_required``
      (always, for a log in a case folder) and the log is not empty.

    ``facts`` in the report are :class:`CaseFacts` from line 1 when it is a valid signed
    opening (else None); ``closed`` then reflects the first well-formed ``case-closed``.
    """
    trusted = None if trusted_fingerprints is None else _normalized(trusted_fingerprints)
    chain = verify_chain(case_id, data, trusted)
    lines, _ = split_log(data)
    problems = list(chain.problems)
    facts: CaseFacts | None = None
    if not lines:
        problems.append("the log has no entries: a case's log starts with its 'case-opened' entry")
    else:
        with contextlib.suppress(CustodyLogDamaged):
            facts = _opening_facts(case_id, lines[0])
    rules = _CaseRules(trusted)
    for number, line in enumerate(lines, start=1):
        try:
            entry = parse_line(line)
        except CustodyLogDamaged:
            continue  # the chain reports it
        problems.extend(f"line {number}: {p}" for p in rules.check(number, entry))
    if facts is not None and rules.closed_line is not None:
        closed = parse_line(lines[rules.closed_line - 1])
        facts = replace(facts, closed=True, closed_at=closed["time"], closed_line=rules.closed_line)
    if head is None:
        if head_required and lines:
            problems.append(
                f"{HEAD_NAME} is missing beside the log (the signed head is what shows "
                "entries cut off the log's end)"
            )
    else:
        problems.extend(_check_head(case_id, data, head, rules.head_signer_problem))
    return replace(chain, ok=not problems, problems=tuple(problems), facts=facts)


class _CaseRules:
    """The rules of a case's log, applied line by line (see :func:`verify_case_log`)."""

    def __init__(self, trusted: frozenset[str] | None) -> None:
        self.trusted = trusted
        self.opener: str | None = None
        self.closed_line: int | None = None
        self.signers: set[str] = set()
        self._fingerprints: dict[str, str | None] = {}

    def _fingerprint(self, entry: Mapping[str, Any]) -> str | None:
        pem = entry["signer"]["public_key"]
        if pem not in self._fingerprints:
            try:
                self._fingerprints[pem] = fingerprint_of(load_public_key(pem))
            except ValueError:
                self._fingerprints[pem] = None  # the chain reports the unusable key
        return self._fingerprints[pem]

    def check(self, number: int, entry: Mapping[str, Any]) -> list[str]:
        problems = []
        action = entry["action"]
        actual = self._fingerprint(entry)
        if actual is not None:
            self.signers.add(actual)
        if number == 1:
            problems.extend(_opening_problems(entry))
            self.opener = actual
        elif action == "case-opened":
            problems.append("a second 'case-opened' entry (a case is opened once, on line 1)")
        if self.closed_line is not None and action not in AFTER_CLOSE_ACTIONS:
            problems.append(
                f"{action!r} entry after the case was closed (line {self.closed_line}); "
                f"only {', '.join(AFTER_CLOSE_ACTIONS)} may follow 'case-closed'"
            )
        elif self.closed_line is None and action == "case-closed":
            self.closed_line = number
        # With trusted keys, verify_chain has already judged every signer.
        if (
            self.trusted is None
            and number > 1
            and self.opener is not None
            and actual is not None
            and actual != self.opener
        ):
            problems.append(f"signed by key {actual}, {self._foreign(actual)}")
        return problems

    def _foreign(self, fingerprint: str) -> str:
        return (
            f"which did not open the case and is not trusted (pass --trust {fingerprint} "
            f"if that key is trusted, with --trust {self.opener} for the key that opened "
            "the case)"
        )

    def head_signer_problem(self, fingerprint: str) -> str | None:
        if self.trusted is not None:
            if fingerprint not in self.trusted:
                return f"{HEAD_NAME} is signed by key {fingerprint}, which is not trusted"
        elif self.opener is not None and fingerprint != self.opener:
            return f"{HEAD_NAME} is signed by key {fingerprint}, {self._foreign(fingerprint)}"
        if fingerprint not in self.signers:
            return f"{HEAD_NAME} is signed by key {fingerprint}, which signed no entry of the log"
        return None
