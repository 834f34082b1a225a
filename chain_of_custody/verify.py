"""Verify a captured item (or a whole case) from the files alone.

Everything needed is in the item directory and the case's custody log: the signer's public
key is embedded, so verification works offline, on another machine, years later. Passing
``trusted_fingerprints`` additionally pins which keys are acceptable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from chain_of_custody.canonical import check_depth
from chain_of_custody.custody import (
    CASE_OPENED_DETAILS,
    CUSTODY_LOG_NAME,
    HEAD_NAME,
    CaseFacts,
    ChainReport,
    parse_line,
    split_log,
    verify_case_log,
)
from chain_of_custody.durable import TEMP_PREFIX
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, UsageError
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import (
    CASE_RECORD_NAME,
    ITEMS_DIR_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    STAMP_NAME,
    SUMS_NAME,
    UNLISTED_NAMES,
    FileEntry,
    load_manifest,
    manifest_files,
)
from chain_of_custody.regular import NotRegularFile, not_regular, read_regular_file
from chain_of_custody.signing import (
    fingerprint_of,
    load_public_key,
    normalize_fingerprint,
    verify_signature,
)
from chain_of_custody.timeutil import parse_utc
from chain_of_custody.warccheck import (
    WarcCheck,
    check_warc,
    hash_regular_file,
    is_gzipped_warc,
    is_warc,
)
from chain_of_custody.warccheck import one_line as _one_line

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = [
    "HEAD_STAMP_STEP",
    "STAMP_STEP",
    "STEP_NAMES",
    "CaseReport",
    "ItemReport",
    "NotRegularFile",
    "StepResult",
    "is_case_dir",
    "is_item_dir",
    "normalize_trusted",
    "read_regular_file",
    "verify_case",
    "verify_item",
]

STEP_NAMES = {
    1: "manifest is canonical and well-formed",
    2: "manifest signature verifies",
    3: "signer key matches its fingerprint",
    4: "listed files match size and SHA-256",
    5: "no unlisted files",
    6: "WARC record digests verify",
    7: "custody log records this capture",
    13: "RFC 3161 timestamp verifies",
}
# Step 13 (an item's manifest.json.sig.tsr) is listed only for an item that has a stamp,
# step 14 (custody.head.tsr, timestamps/*.tsr) only for a case that has one: an item or
# case without one is "not timestamped", which is not a failure.
STAMP_STEP = 13
HEAD_STAMP_STEP = (14, "custody head timestamp verifies")
# A stamp this long after the manifest was made is flagged (an item stamped later by
# `osint-capture timestamp` is one); one before the capture started, beyond this margin
# for the two clocks, is flagged too: the workstation clock was ahead.
_STAMP_LATE = timedelta(hours=24)
_STAMP_EARLY = timedelta(minutes=5)

_DETAIL_PROBLEMS = 3


@dataclass(frozen=True)
class StepResult:
    """One numbered verification step. ``skipped`` steps could not run (and are not ok,
    except step 7 when there is simply no custody log to check)."""

    number: int
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "detail": self.detail,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ItemReport:
    """The outcome of :func:`verify_item`: ok only if every step is."""

    ok: bool
    item_id: str
    steps: tuple[StepResult, ...]
    path: str = ""

    def step(self, number: int) -> StepResult:
        return next(s for s in self.steps if s.number == number)

    @property
    def timestamped(self) -> bool:
        """True when the item has a stamp (step 13, which may still fail)."""
        return any(s.number == STAMP_STEP for s in self.steps)

    @property
    def first_failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "item_id": self.item_id,
            "path": self.path,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class CaseReport:
    """The outcome of :func:`verify_case`: the log, every item, and case-level problems
    (items the log says were captured but that are missing, stray entries in items/,
    ``case.json`` disagreeing with the signed log)."""

    ok: bool
    case_id: str
    chain: ChainReport | None
    items: tuple[ItemReport, ...]
    problems: tuple[str, ...]
    path: str = ""
    # Step 14 for each custody head stamp found (custody.head.tsr, timestamps/*.tsr); a
    # failed one is also among ``problems``, named by its file.
    head_stamps: tuple[StepResult, ...] = ()

    @property
    def facts(self) -> CaseFacts | None:
        """The case's facts from its signed ``case-opened`` entry (None if there is none)."""
        return None if self.chain is None else self.chain.facts

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "case_id": self.case_id,
            "path": self.path,
            "custody_log": None if self.chain is None else self.chain.to_dict(),
            "problems": list(self.problems),
            "items": [item.to_dict() for item in self.items],
        }


@dataclass
class _CustodyLog:
    """A custody log read once, verified (with its head) at most once per case id.

    Shared by all items of a case so a big log is not re-verified for every item, and so
    the case and each item's step 7 judge it by the same rules (:func:`verify_case_log`).
    ``head_required``: the log is a case's own (in a case folder), so ``custody.head``
    must be beside it; only a log examined on its own elsewhere may lack one.
    """

    path: Path
    data: bytes
    trusted: frozenset[str] | None
    head_required: bool = True
    _reports: dict[str, ChainReport] = field(default_factory=dict)
    _entries: list[tuple[int, dict[str, Any]]] | None = None

    def report(self, case_id: str) -> ChainReport:
        if case_id not in self._reports:
            head: bytes | None = None
            read_problems: list[str] = []
            try:
                head = read_regular_file(self.path.parent / HEAD_NAME)
            except FileNotFoundError:
                pass
            except NotRegularFile as exc:
                read_problems.append(_only_regular(HEAD_NAME, exc, "the case folder"))
            except OSError as exc:
                read_problems.append(f"cannot read {HEAD_NAME}: {exc.strerror}")
            chain = verify_case_log(
                case_id,
                self.data,
                head,
                self.trusted,
                head_required=self.head_required and not read_problems,
            )
            if read_problems:
                chain = replace(chain, ok=False, problems=(*chain.problems, *read_problems))
            self._reports[case_id] = chain
        return self._reports[case_id]

    def entries(self) -> list[tuple[int, dict[str, Any]]]:
        """(line number, entry) of every well-formed line; damaged lines are the chain's
        to report."""
        if self._entries is None:
            lines, _ = split_log(self.data)
            self._entries = []
            for number, line in enumerate(lines, start=1):
                with contextlib.suppress(CustodyLogDamaged):
                    self._entries.append((number, parse_line(line)))
        return self._entries


@dataclass
class _Context:
    """What the steps of one item learn and pass on."""

    item_dir: Path
    trusted: frozenset[str] | None
    custody: _CustodyLog | None
    # The case folder the item sits in (``<case>/items/<ITEM_ID>``), or None.
    case_dir: Path | None = None
    # The TSA roots a stamp must chain to (None: the reply's own, reported as weaker).
    tsa_roots: Sequence[Certificate] | None = None
    manifest_bytes: bytes = b""
    manifest: Mapping[str, Any] | None = None
    files: tuple[FileEntry, ...] = ()
    intact: set[str] = field(default_factory=set)
    # Step 4's one read of each WARC it found the listed size, by path: step 6 reports it.
    warc_checks: dict[str, WarcCheck] = field(default_factory=dict)


def normalize_trusted(fingerprints: Collection[str] | None) -> frozenset[str] | None:
    """Trusted fingerprints in canonical form; UsageError names any malformed one."""
    if fingerprints is None:
        return None
    if isinstance(fingerprints, str):
        fingerprints = (fingerprints,)
    try:
        return frozenset(normalize_fingerprint(fp) for fp in fingerprints)
    except ValueError as exc:
        raise UsageError(f"--trust: {exc}") from None


def is_item_dir(path: Path) -> bool:
    """True if ``path`` is a directory holding a manifest or its signature."""
    return path.is_dir() and any(
        os.path.lexists(path / name) for name in (MANIFEST_NAME, SIGNATURE_NAME)
    )


def is_case_dir(path: Path) -> bool:
    """True if ``path`` looks like a case: an ``items`` directory or a custody log."""
    return path.is_dir() and (
        (path / ITEMS_DIR_NAME).is_dir() or (path / CUSTODY_LOG_NAME).is_file()
    )


def verify_item(
    item_dir: Path,
    *,
    trusted_fingerprints: Collection[str] | None = None,
    custody_log: Path | None = None,
    tsa_roots: Sequence[Certificate] | None = None,
) -> ItemReport:
    """Verify one captured item, in these steps:

    1. ``manifest.json`` is canonical JSON with every required field and a sorted,
       duplicate-free list of safe relative paths.
    2. ``manifest.json.sig`` verifies over the exact bytes of ``manifest.json`` with the
       public key embedded in the manifest.
    3. The manifest's signer fingerprint is that of the embedded key, and — if
       ``trusted_fingerprints`` is given — one of them.
    4. Every listed file exists as a regular file with the listed size and SHA-256
       (streamed, so large files are fine; a WARC is hashed in the same read that step 6
       checks it in, so each of its bytes is read once).
    5. The item holds no files (or links) the manifest does not list, apart from
       ``manifest.json``, ``manifest.json.sig`` and ``SHA256SUMS``.
    6. In every listed ``*.warc.gz`` / ``*.warc`` file, each record's
       ``WARC-Block-Digest`` and ``WARC-Payload-Digest`` (``sha256:``) verify, a
       ``.warc.gz`` is whole gzip members with valid CRCs, one per record, and the bytes
       parsed are the bytes whose SHA-256 the manifest lists. A problem names the record
       (:mod:`chain_of_custody.warccheck`).
    7. The custody log (``custody_log``, or by default ``../../custody.jsonl`` when it
       exists) verifies as the log of the manifest's case (:func:`verify_case_log`: the
       chain, its signed opening, one signing key unless others are trusted, nothing but
       examinations, transfers, notes, exports, timestamps and repairs after the case was
       closed, and ``custody.head`` beside it, which a log in a case folder must have), and
       has a ``captured`` entry for this item whose ``details.manifest_sha256`` is the
       SHA-256 of ``manifest.json``.

    13. Only when the item has ``manifest.json.sig.tsr``: it is a granted RFC 3161 stamp
        of the SHA-256 of ``manifest.json.sig``, signed by a TSA whose certificate chains
        to ``tsa_roots`` (None: to the roots the reply carries, reported as weaker); its
        genTime is reported beside the manifest's ``created``, and flagged when before
        the capture started or long after.

    Integrity problems are returned in the report, never raised. Raises UsageError when
    ``item_dir`` is not an item, a trusted fingerprint is malformed, or an explicitly
    given custody log does not exist.
    """
    if not is_item_dir(item_dir):
        raise UsageError(
            f"{item_dir} is not a captured item (no {MANIFEST_NAME} in it)",
            hint="give an item directory (…/items/ITEM_ID) or a case directory",
        )
    trusted = normalize_trusted(trusted_fingerprints)
    if custody_log is None:
        # abspath, not the path as given: for "." the parent of the parent is still ".".
        default = Path(os.path.abspath(item_dir)).parent.parent / CUSTODY_LOG_NAME
        # Found beside the item's case folder, it is the case's log: its head must be there.
        custody = _read_custody(default, trusted, head_required=True) if default.is_file() else None
    else:
        if not custody_log.is_file():
            raise UsageError(f"custody log {custody_log} does not exist")
        folder = Path(os.path.abspath(custody_log)).parent
        in_case = (folder / ITEMS_DIR_NAME).is_dir() or (folder / CASE_RECORD_NAME).is_file()
        custody = _read_custody(custody_log, trusted, head_required=in_case)
    return _verify_item(item_dir, trusted, custody, _case_layout(item_dir), tsa_roots)


def verify_case(
    case_dir: Path,
    *,
    trusted_fingerprints: Collection[str] | None = None,
    tsa_roots: Sequence[Certificate] | None = None,
) -> CaseReport:
    """Verify a case directory: its custody log once, then every ``items/*/`` against it.

    The case id is the directory's name (``<home>/<CASE_ID>/``); the log must be that
    case's (:func:`verify_case_log`), with ``custody.head`` beside it, whether or not
    ``case.json`` is there. The case's facts come from the log's signed ``case-opened``
    entry, never from ``case.json``; where ``case.json`` disagrees with them (case id,
    title, category, investigator, authority, status) that is a problem naming it. Every
    item is judged as an item of this case. Besides each item's report, finds items the
    log records as captured whose directory is missing, and entries of ``items/`` that
    are not items. What an interrupted capture or write leaves (``items/.staging-*``
    and its lock, ``.tmp-*``) is named as that, with the ``case clean`` that removes it,
    and fails the case until it is gone (a capture still running is named as one).
    Files the case is judged by are read only if they are regular files (never through
    a link, never a FIFO). Raises UsageError if ``case_dir`` is not a case directory.
    """
    if not is_case_dir(case_dir):
        raise UsageError(
            f"{case_dir} is not a case directory (no items/ and no {CUSTODY_LOG_NAME})",
            hint="give a case directory or an item directory",
        )
    trusted = normalize_trusted(trusted_fingerprints)
    case_id = case_dir.resolve().name
    problems: list[str] = []
    log_path = case_dir / CUSTODY_LOG_NAME
    custody: _CustodyLog | None = None
    chain: ChainReport | None = None
    try:
        log_mode: int | None = log_path.lstat().st_mode
    except FileNotFoundError:
        log_mode = None
    if log_mode is not None and not stat.S_ISREG(log_mode):
        # Never followed nor read: a link could lead out of the case, a FIFO would block.
        problems.append(
            _only_regular(CUSTODY_LOG_NAME, not_regular(log_path, log_mode), "the case folder")
        )
    elif log_mode is not None:
        custody = _read_custody(log_path, trusted, head_required=True)
        chain = custody.report(case_id)
        problems.extend(
            f"{CUSTODY_LOG_NAME} {p}" if p.startswith("line ") else f"{CUSTODY_LOG_NAME}: {p}"
            for p in chain.problems
        )
        if chain.facts is not None:
            problems.extend(_case_record_problems(case_dir / CASE_RECORD_NAME, chain.facts))
    else:
        problems.append(f"the case has no {CUSTODY_LOG_NAME}")

    items: list[ItemReport] = []
    present: set[str] = set()
    items_dir = case_dir / ITEMS_DIR_NAME
    children: list[Path] = []
    if items_dir.is_symlink():
        problems.append(f"{ITEMS_DIR_NAME} is a symbolic link; only the case folder is examined")
    elif items_dir.is_dir():
        try:
            children = sorted(items_dir.iterdir())
        except OSError as exc:
            problems.append(f"cannot list {ITEMS_DIR_NAME}/: {exc.strerror}")
    problems.extend(_leftover_problems(case_dir, children, case_id))
    for child in children:
        present.add(child.name)
        if child.name.startswith((_STAGING_PREFIX, TEMP_PREFIX)):
            continue  # named above, as what an interrupted capture or write left
        if child.is_symlink() or not child.is_dir():
            problems.append(f"items/{child.name} is not a directory")
        elif not is_item_dir(child):
            problems.append(
                f"items/{child.name} has no {MANIFEST_NAME} (an unfinished or abandoned capture)"
            )
        else:
            items.append(_verify_item(child, trusted, custody, case_dir.resolve(), tsa_roots))

    # Items are found by directory name and by the item id their manifest states.
    present |= {item.item_id for item in items}
    if custody is not None:
        for number, entry in custody.entries():
            item_id = entry["item_id"]
            if entry["action"] == "captured" and item_id and item_id not in present:
                problems.append(
                    f"{CUSTODY_LOG_NAME} line {number} records item {item_id} as captured, "
                    f"but items/{item_id} is missing"
                )
    head_stamps = _head_stamps(case_dir, custody, tsa_roots)
    problems.extend(p for stamp in head_stamps for p in stamp.problems)
    ok = not problems and all(item.ok for item in items)
    return CaseReport(
        ok=ok,
        case_id=case_id,
        chain=chain,
        items=tuple(items),
        problems=tuple(problems),
        path=str(case_dir),
        head_stamps=head_stamps,
    )


# What cases.staging and chain_of_custody.durable leave when a capture or a write is cut
# short: items/.staging-<ITEM_ID>/ (+ its .lock) and .tmp-* files (FORMAT.md section 1).
_STAGING_PREFIX = ".staging-"
_LOCK_SUFFIX = ".lock"


def _leftover_problems(case_dir: Path, children: list[Path], case_id: str) -> list[str]:
    """Each leftover of an interrupted capture or write in the case, named as one."""
    clean = f"(run `osint-capture case clean {case_id}`)"
    problems = []
    try:
        top = sorted(entry.name for entry in os.scandir(case_dir))
    except OSError:
        top = []
    problems += [f"interrupted write: {n} {clean}" for n in top if n.startswith(TEMP_PREFIX)]
    names = {child.name for child in children}
    for child in children:
        name = child.name
        if name.startswith(TEMP_PREFIX):
            problems.append(f"interrupted write: items/{name} {clean}")
        elif not name.startswith(_STAGING_PREFIX):
            continue
        elif name.endswith(_LOCK_SUFFIX) and name.removesuffix(_LOCK_SUFFIX) in names:
            continue  # the lock of a staging folder named with it
        elif _lock_held(child.parent / (name.removesuffix(_LOCK_SUFFIX) + _LOCK_SUFFIX)):
            problems.append(f"capture in progress: items/{name} (verify again once it has ended)")
        else:
            problems.append(f"interrupted capture: items/{name} {clean}")
    return problems


def _lock_held(lock: Path) -> bool:
    """True if a live process holds the flock on ``lock``, as a running capture does on
    its staging lock (probed read-only and without waiting; False if there is none)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the probe's lock, if it got it
    return False


def _case_record_problems(path: Path, facts: CaseFacts) -> list[str]:
    """Where ``case.json`` (unsigned) disagrees with the signed opening and closing."""
    try:
        text = read_regular_file(path).decode("utf-8")
        check_depth(text)  # json.loads recurses once per level: hostile depth must not reach it
        record = json.loads(text)
    except FileNotFoundError:
        return []  # the facts are the log's; case.json is a convenience copy
    except NotRegularFile as exc:
        return [_only_regular(CASE_RECORD_NAME, exc, "the case folder")]
    except (OSError, ValueError) as exc:
        return [f"{CASE_RECORD_NAME} cannot be read as a case record ({_one_line(str(exc))})"]
    if not isinstance(record, dict):
        return [f"{CASE_RECORD_NAME} is not a JSON object"]
    signed = "the signed 'case-opened' entry (custody.jsonl line 1)"
    problems = []
    expected: dict[str, str] = {"case_id": facts.case_id}
    expected.update({name: getattr(facts, name) for name in CASE_OPENED_DETAILS})
    for name, value in expected.items():
        if record.get(name) != value:
            problems.append(
                f"{CASE_RECORD_NAME} says {name} {record.get(name)!r}, but {signed} says {value!r}"
            )
    status = "closed" if facts.closed else "open"
    if record.get("status") != status:
        where = (
            f"closed (custody.jsonl line {facts.closed_line})"
            if facts.closed
            else "open (it has no 'case-closed' entry)"
        )
        problems.append(
            f"{CASE_RECORD_NAME} says status {record.get('status')!r}, but the signed "
            f"custody log records the case as {where}"
        )
    return problems


def _read_custody(
    path: Path, trusted: frozenset[str] | None, *, head_required: bool
) -> _CustodyLog:
    try:
        data = read_regular_file(path)
    except NotRegularFile as exc:
        raise UsageError(f"custody log {path} is {exc.what}; only a regular file is read") from None
    except OSError as exc:
        raise UsageError(f"cannot read custody log {path}: {exc.strerror}") from None
    return _CustodyLog(path=path, data=data, trusted=trusted, head_required=head_required)


def _verify_item(
    item_dir: Path,
    trusted: frozenset[str] | None,
    custody: _CustodyLog | None,
    case_dir: Path | None,
    tsa_roots: Sequence[Certificate] | None = None,
) -> ItemReport:
    ctx = _Context(
        item_dir=item_dir,
        trusted=trusted,
        custody=custody,
        case_dir=case_dir,
        tsa_roots=tsa_roots,
    )
    steps: list[StepResult] = [_step1_manifest(ctx)]
    later: tuple[Callable[[_Context], StepResult], ...] = (
        _step2_signature,
        _step3_signer,
        _step4_files,
        _step5_unlisted,
        _step6_warc_digests,
        _step7_custody,
    )
    for number, run in enumerate(later, start=2):
        if ctx.manifest is None:
            steps.append(_skipped(number, f"not checked: step 1 failed ({MANIFEST_NAME} unusable)"))
        else:
            steps.append(run(ctx))
    if os.path.lexists(item_dir / STAMP_NAME):
        steps.append(_step13_stamp(ctx))
    item_id = item_dir.name if ctx.manifest is None else str(ctx.manifest["item_id"])
    return ItemReport(
        ok=all(step.ok for step in steps),
        item_id=item_id,
        steps=tuple(steps),
        path=str(item_dir),
    )


def _result(number: int, good: str, problems: list[str]) -> StepResult:
    if not problems:
        return StepResult(number, STEP_NAMES[number], True, good)
    detail = "; ".join(problems[:_DETAIL_PROBLEMS])
    if len(problems) > _DETAIL_PROBLEMS:
        detail += f"; and {len(problems) - _DETAIL_PROBLEMS} more"
    return StepResult(number, STEP_NAMES[number], False, detail, tuple(problems))


def _skipped(number: int, why: str, *, ok: bool = False) -> StepResult:
    return StepResult(number, STEP_NAMES[number], ok, why, (), skipped=True)


# Reading the files verification relies on ------------------------------------------

# A line of SHA256SUMS: the hash, two spaces (or " *", binary mode), the path.
_SUMS_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


def _only_regular(name: str, exc: NotRegularFile, where: str = "the item") -> str:
    return f"{name} is {exc.what}; only regular files inside {where} are read"


# Step 1 -----------------------------------------------------------------------------


def _step1_manifest(ctx: _Context) -> StepResult:
    path = ctx.item_dir / MANIFEST_NAME
    try:
        ctx.manifest_bytes = read_regular_file(path)
    except FileNotFoundError:
        return _result(1, "", [f"{MANIFEST_NAME} is missing"])
    except NotRegularFile as exc:
        return _result(1, "", [_only_regular(MANIFEST_NAME, exc)])
    except OSError as exc:
        return _result(1, "", [f"{MANIFEST_NAME} cannot be read: {exc.strerror}"])
    try:
        manifest = load_manifest(ctx.manifest_bytes)
        files = manifest_files(manifest)
    except IntegrityError as exc:
        return _result(1, "", [exc.message])
    ctx.manifest, ctx.files = manifest, files
    status = "" if manifest["status"] == "complete" else f", status {manifest['status']}"
    return _result(
        1,
        f"item {manifest['item_id']} of case {manifest['case_id']}, "
        f"{len(files)} files{status}, created {manifest['created']}",
        _identity_problems(ctx.item_dir, ctx.case_dir, manifest),
    )


# Any of these beside items/ makes a folder a case: deleting case.json (unsigned, and not
# the case's record of itself) must not turn a case's item into one judged on its own.
_CASE_MARKERS = (CASE_RECORD_NAME, CUSTODY_LOG_NAME, HEAD_NAME)


def _case_layout(item_dir: Path) -> Path | None:
    """The case folder when the item sits at ``<case>/items/<ITEM_ID>`` and ``<case>`` holds
    ``case.json``, ``custody.jsonl`` or ``custody.head``; else None."""
    item = Path(os.path.abspath(item_dir))
    case = item.parent.parent
    if item.parent.name == ITEMS_DIR_NAME and any(
        os.path.lexists(case / name) for name in _CASE_MARKERS
    ):
        return case
    return None


def _identity_problems(item_dir: Path, case: Path | None, manifest: Mapping[str, Any]) -> list[str]:
    # A copied or renamed item must not pass as another: the signed ids must match
    # where it sits (an item copied out of its case folder is judged on its own).
    problems = []
    name = Path(os.path.abspath(item_dir)).name
    if case is not None and name != manifest["item_id"]:
        problems.append(f"the folder is named {name}, the manifest is item {manifest['item_id']}")
    if case is not None and case.name != manifest["case_id"]:
        problems.append(
            f"the item sits in case {case.name}, the manifest names {manifest['case_id']}"
        )
    return problems


# Step 2 -----------------------------------------------------------------------------


def _step2_signature(ctx: _Context) -> StepResult:
    assert ctx.manifest is not None
    try:
        signature = read_regular_file(ctx.item_dir / SIGNATURE_NAME)
    except FileNotFoundError:
        return _result(2, "", [f"{SIGNATURE_NAME} is missing"])
    except NotRegularFile as exc:
        return _result(2, "", [_only_regular(SIGNATURE_NAME, exc)])
    except OSError as exc:
        return _result(2, "", [f"{SIGNATURE_NAME} cannot be read: {exc.strerror}"])
    signer = ctx.manifest["signer"]
    if not verify_signature(signer["public_key"], ctx.manifest_bytes, signature):
        return _result(
            2,
            "",
            [
                f"{SIGNATURE_NAME} does not verify over {MANIFEST_NAME} with the embedded key "
                "(the manifest or the signature was changed)"
            ],
        )
    return _result(2, f"ECDSA P-384 signature by {signer['operator']} verifies", [])


# Step 3 -----------------------------------------------------------------------------


def _step3_signer(ctx: _Context) -> StepResult:
    assert ctx.manifest is not None
    signer = ctx.manifest["signer"]
    try:
        actual = fingerprint_of(load_public_key(signer["public_key"]))
    except ValueError as exc:
        return _result(3, "", [f"the embedded public key is unusable: {exc}"])
    problems = []
    if actual != signer["fingerprint"]:
        problems.append(
            f"the manifest names fingerprint {signer['fingerprint']}, "
            f"but its public key's fingerprint is {actual}"
        )
    if ctx.trusted is not None and actual not in ctx.trusted:
        problems.append(f"key {actual} ({signer['operator']}) is not among the trusted keys")
    trust = "a trusted key" if ctx.trusted is not None else "not checked against trusted keys"
    return _result(3, f"fingerprint {actual} ({trust})", problems)


# Step 4 -----------------------------------------------------------------------------


def _step4_files(ctx: _Context) -> StepResult:
    problems = []
    total = 0
    for entry in ctx.files:
        full = ctx.item_dir.joinpath(*entry.path.split("/"))
        try:
            info = full.lstat()
        except FileNotFoundError:
            problems.append(f"{entry.path} is missing")
            continue
        except OSError as exc:
            problems.append(f"{entry.path} cannot be read: {exc.strerror}")
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{entry.path} is not a regular file")
            continue
        # Size first: a cheap check that spares hashing a file already known to differ.
        if info.st_size != entry.size:
            problems.append(
                f"{entry.path} is {info.st_size} bytes, the manifest lists {entry.size}"
            )
            continue
        if is_warc(entry.path):
            # One read serves steps 4 and 6: the WARC pass hashes the bytes it parses, and
            # step 6 reports what it found in them.
            check = check_warc(full, gzipped=is_gzipped_warc(entry.path))
            ctx.warc_checks[entry.path] = check
            if check.read_error is not None:
                problems.append(f"{entry.path} cannot be read: {check.read_error}")
                continue
            digest, size = check.sha256, check.size
        else:
            try:
                digest, size = hash_regular_file(full)
            except OSError as exc:
                problems.append(f"{entry.path} cannot be read: {exc.strerror}")
                continue
        if size != entry.size or digest != entry.sha256:
            problems.append(f"{entry.path} has SHA-256 {digest}, the manifest lists {entry.sha256}")
            continue
        ctx.intact.add(entry.path)
        total += size
    return _result(4, f"{len(ctx.files)} files, {total} bytes, all match", problems)


# Step 5 -----------------------------------------------------------------------------


def _step5_unlisted(ctx: _Context) -> StepResult:
    listed = {entry.path for entry in ctx.files}
    # The folders that hold a listed file; any other folder is not part of the item.
    folders = {str(parent) for path in listed for parent in PurePosixPath(path).parents}
    problems: list[str] = []

    def walk_error(exc: OSError) -> None:
        problems.append(f"cannot list {exc.filename}: {exc.strerror}")

    for root, dirs, names in os.walk(ctx.item_dir, onerror=walk_error):
        rel_root = PurePosixPath(Path(root).relative_to(ctx.item_dir).as_posix())
        # os.walk reports links to directories as directories but does not enter them.
        for name in sorted(dirs):
            rel = _rel(rel_root, name)
            if os.path.islink(os.path.join(root, name)):
                problems.append(f"{rel} is a symbolic link (not listed)")
            elif rel not in folders:
                problems.append(f"{rel}/ is a folder the manifest does not list (no listed file)")
        for name in sorted(names):
            rel = _rel(rel_root, name)
            if rel not in listed and not (
                rel_root == PurePosixPath(".") and name in UNLISTED_NAMES
            ):
                problems.append(f"{rel} is not listed in the manifest")
    _check_sums(ctx, problems)
    return _result(5, "nothing unlisted; SHA256SUMS agrees with the manifest", problems)


def _check_sums(ctx: _Context, problems: list[str]) -> None:
    """SHA256SUMS is unsigned convenience for ``sha256sum -c``; it must still agree.

    An edited SHA256SUMS cannot hide a changed file (step 4 checks the signed
    hashes), but a verifier should not pass an item whose checksum list lies. Every line
    is checked, as ``sha256sum -c`` checks every line: a second line for a file is named,
    and fails when its hash is wrong, so whatever ``sha256sum -c`` reports FAILED fails
    here too. Lines are those this toolkit writes: 64 hex digits, two spaces (or a space
    and ``*``), the path; split at newlines only, as ``sha256sum`` splits them.
    """
    try:
        data = read_regular_file(ctx.item_dir / SUMS_NAME)
    except FileNotFoundError:
        return
    except NotRegularFile as exc:
        problems.append(_only_regular(SUMS_NAME, exc))
        return
    except OSError as exc:
        problems.append(f"{SUMS_NAME} cannot be read: {exc.strerror}")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{SUMS_NAME} is not UTF-8 (byte {exc.start})")
        return
    expected = {entry.path: entry.sha256 for entry in ctx.files}
    expected[MANIFEST_NAME] = sha256_bytes(ctx.manifest_bytes)
    with contextlib.suppress(OSError):
        expected[SIGNATURE_NAME] = sha256_bytes(read_regular_file(ctx.item_dir / SIGNATURE_NAME))
    if os.path.lexists(ctx.item_dir / STAMP_NAME):
        # Made after the manifest, so only SHA256SUMS can list it; step 13 checks it.
        with contextlib.suppress(OSError):
            expected[STAMP_NAME] = sha256_bytes(read_regular_file(ctx.item_dir / STAMP_NAME))
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line
    first_line: dict[str, int] = {}
    disagree: set[str] = set()
    details: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = _SUMS_LINE.fullmatch(line)
        if match is None:
            problems.append(f"{SUMS_NAME} line {number} is not '<sha256>  <file>'")
            continue
        digest, name = match.group(1).lower(), match.group(2)
        if name in first_line:
            details.append(
                f"{SUMS_NAME} line {number} lists {name} again (first on line {first_line[name]})"
            )
        else:
            first_line[name] = number
        if name not in expected:
            disagree.add(name)
        elif digest != expected[name]:
            disagree.add(name)
            details.append(
                f"{SUMS_NAME} line {number} gives {name} SHA-256 {digest}, but it is "
                f"{expected[name]} (`sha256sum -c` reports it FAILED)"
            )
    disagree |= expected.keys() - first_line.keys()
    if disagree:
        problems.append(
            f"{SUMS_NAME} disagrees with the manifest for: {', '.join(sorted(disagree))}"
        )
    problems.extend(details)


def _rel(root: PurePosixPath, name: str) -> str:
    return name if root == PurePosixPath(".") else f"{root}/{name}"


# Step 6 -----------------------------------------------------------------------------


def _step6_warc_digests(ctx: _Context) -> StepResult:
    warcs = [entry for entry in ctx.files if is_warc(entry.path)]
    if not warcs:
        return _result(6, "no WARC files in this item", [])
    problems: list[str] = []
    records = 0
    for entry in warcs:
        check = ctx.warc_checks.get(entry.path)
        if check is None:  # step 4 did not read it (missing, not a file, the wrong size)
            full = ctx.item_dir.joinpath(*entry.path.split("/"))
            check = check_warc(full, gzipped=is_gzipped_warc(entry.path))
        records += check.records
        problems.extend(f"{entry.path}: {p}" for p in check.problems(entry.sha256))
    return _result(
        6, f"{records} records in {len(warcs)} WARC file(s), every digest verifies", problems
    )


# Step 7 -----------------------------------------------------------------------------


def _step7_custody(ctx: _Context) -> StepResult:
    assert ctx.manifest is not None
    if ctx.custody is None:
        expected = Path(os.path.abspath(ctx.item_dir)).parent.parent / CUSTODY_LOG_NAME
        if ctx.case_dir is not None:
            # Inside a case folder the log must be there: deleting it must not pass.
            return _result(7, "", [f"the case's custody log {expected} is missing"])
        return _skipped(
            7, f"not checked: no custody log beside the item (none at {expected})", ok=True
        )
    log = ctx.custody
    case_id = str(ctx.manifest["case_id"])
    item_id = str(ctx.manifest["item_id"])
    problems = []
    chain = log.report(case_id)
    if not chain.ok:
        problems.append(
            f"{log.path} does not verify as the log of case {case_id} "
            f"({len(chain.problems)} problem(s); first: {chain.problems[0]})"
        )
    manifest_sha256 = sha256_bytes(ctx.manifest_bytes)
    captured = [
        (number, entry)
        for number, entry in log.entries()
        if entry["action"] == "captured" and entry["item_id"] == item_id
    ]
    matching = [n for n, e in captured if e["details"].get("manifest_sha256") == manifest_sha256]
    if not captured:
        problems.append(f"the log has no 'captured' entry for item {item_id}")
    elif not matching:
        recorded = captured[0][1]["details"].get("manifest_sha256")
        problems.append(
            f"line {captured[0][0]} records manifest SHA-256 {recorded}, "
            f"but {MANIFEST_NAME} hashes to {manifest_sha256}"
        )
    elif len(captured) > 1:
        lines = ", ".join(str(n) for n, _ in captured)
        problems.append(f"item {item_id} is recorded as captured more than once (lines {lines})")
    where = f"line {matching[0]}" if matching else ""
    return _result(
        7,
        f"{log.path.name}: {chain.entries} entries chain correctly; {where} records this "
        f"manifest (SHA-256 {manifest_sha256})",
        problems,
    )


# Step 13 and step 14: RFC 3161 timestamps --------------------------------------------


def _check_stamp(
    stamp_path: Path, data_path: Path, roots: Sequence[Certificate] | None
) -> tuple[str, list[str], Any]:
    """(what the stamp says, problems, the Stamp or None) for ``stamp_path`` over the
    file ``data_path``; both are read only as regular files."""
    from chain_of_custody.timestamp import TimestampInvalid, verify_stamp

    names = f"{stamp_path.name} over {data_path.name}"
    try:
        der = read_regular_file(stamp_path)
        data = read_regular_file(data_path)
    except NotRegularFile as exc:
        return "", [f"{exc.filename or names} is {exc.what}; only regular files are read"], None
    except OSError as exc:
        return "", [f"{names}: cannot read {exc.filename}: {exc.strerror}"], None
    try:
        stamp = verify_stamp(der, data, roots=roots)
    except TimestampInvalid as exc:
        return "", [f"{stamp_path.name}: {exc.one_line()}"], None
    anchor = (
        "chains to the given TSA roots"
        if stamp.anchor == "given roots"
        else "chains only to the root the reply itself carries (weaker: give --tsa-root)"
    )
    good = (
        f"genTime {stamp.gen_time_text} by {stamp.tsa}, serial {stamp.serial_hex}, "
        f"policy {stamp.policy}; signature verifies, {anchor}"
    )
    return good, [], stamp


def _step13_stamp(ctx: _Context) -> StepResult:
    good, problems, stamp = _check_stamp(
        ctx.item_dir / STAMP_NAME, ctx.item_dir / SIGNATURE_NAME, ctx.tsa_roots
    )
    if stamp is not None and ctx.manifest is not None:
        good += "; " + _stamp_times(stamp.gen_time, ctx.manifest)
    return _result(STAMP_STEP, good, problems)


def _stamp_times(gen_time: Any, manifest: Mapping[str, Any]) -> str:
    """genTime beside the manifest's ``created``, flagged when before the capture started
    or long after the manifest was made."""
    created = str(manifest["created"])
    text = f"manifest created {created}"
    try:
        made = parse_utc(created)
    except ValueError:
        return text
    started_text = manifest["provenance"].get("capture_started")
    try:
        started = parse_utc(str(started_text)) if started_text else made
    except ValueError:
        started = made
    if gen_time < started - _STAMP_EARLY:
        text += (
            f"; FLAG: the stamp is {_span(started - gen_time)} before the capture started "
            f"({started_text}): the workstation's clock was ahead, or the item was not made "
            "when it says"
        )
    elif gen_time > made + _STAMP_LATE:
        text += f"; FLAG: stamped {_span(gen_time - made)} after the manifest was made"
    else:
        text += f", stamped {_span(abs(gen_time - made))} " + (
            "after" if gen_time >= made else "before"
        )
    return text


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{delta.total_seconds():.1f} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _head_stamps(
    case_dir: Path, custody: _CustodyLog | None, roots: Sequence[Certificate] | None
) -> tuple[StepResult, ...]:
    """Step 14 for ``custody.head.tsr`` (a bundle's, over its ``custody.head``) and for
    each ``timestamps/custody.head-<SEQ>.tsr`` (the home's, over the head copy beside it,
    which must name an entry of the log as it is)."""
    from chain_of_custody.timestamp import HEAD_STAMP_NAME, TSR_SUFFIX

    number, name = HEAD_STAMP_STEP
    results: list[StepResult] = []
    pairs: list[tuple[str, Path, Path]] = []
    if os.path.lexists(case_dir / HEAD_STAMP_NAME):
        pairs.append((HEAD_STAMP_NAME, case_dir / HEAD_STAMP_NAME, case_dir / HEAD_NAME))
    folder = case_dir / "timestamps"
    if folder.is_dir() and not folder.is_symlink():
        for path in sorted(folder.iterdir()):
            if path.name.endswith(TSR_SUFFIX):
                data = path.with_name(path.name.removesuffix(TSR_SUFFIX))
                pairs.append((f"timestamps/{path.name}", path, data))
    for label, stamp_path, data_path in pairs:
        good, problems, _ = _check_stamp(stamp_path, data_path, roots)
        problems = [f"{label}: {p.split(': ', 1)[-1]}" for p in problems]
        if not problems and custody is not None:
            problems = _head_in_log(label, data_path, custody)
        results.append(
            StepResult(
                number,
                name,
                not problems,
                "; ".join(problems) if problems else f"{label}: {good}",
                tuple(problems),
            )
        )
    return tuple(results)


def _head_in_log(label: str, head_path: Path, custody: _CustodyLog) -> list[str]:
    """The stamped head must name an entry of the log (by ``seq`` and line hash)."""
    from chain_of_custody.custody import head_entry_in_log

    try:
        seq, recorded, held = head_entry_in_log(read_regular_file(head_path), custody.data)
    except (OSError, ValueError):
        return [f"{label}: {head_path.name} is not a custody head"]
    if not held:
        return [
            f"{label}: the stamped head names entry {seq} ({recorded}), which the custody "
            "log does not hold: the log was cut back or rewritten since it was stamped"
        ]
    return []
