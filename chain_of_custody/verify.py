"""Verify a captured item (or a whole case) from the files alone.

Everything needed is in the item directory and the case's custody log: the signer's public
key is embedded, so verification works offline, on another machine, years later. Passing
``trusted_fingerprints`` additionally pins which keys are acceptable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import stat
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from warcio.archiveiterator import ArchiveIterator

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
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, UsageError
from chain_of_custody.hashing import HashingReader, sha256_bytes, sha256_file
from chain_of_custody.item import (
    CASE_RECORD_NAME,
    ITEMS_DIR_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    UNLISTED_NAMES,
    FileEntry,
    load_manifest,
    manifest_files,
)
from chain_of_custody.signing import (
    fingerprint_of,
    load_public_key,
    normalize_fingerprint,
    verify_signature,
)

__all__ = [
    "STEP_NAMES",
    "CaseReport",
    "ItemReport",
    "StepResult",
    "is_case_dir",
    "is_item_dir",
    "normalize_trusted",
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
}

_WARC_SUFFIXES = (".warc.gz", ".warc")
_WARC_DIGEST_ALGORITHM = "sha256"
_DETAIL_PROBLEMS = 3
_READ_CHUNK = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, CRC-32 checked


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
                head = (self.path.parent / HEAD_NAME).read_bytes()
            except FileNotFoundError:
                pass
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
    manifest_bytes: bytes = b""
    manifest: Mapping[str, Any] | None = None
    files: tuple[FileEntry, ...] = ()
    intact: set[str] = field(default_factory=set)


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
) -> ItemReport:
    """Verify one captured item, in these steps:

    1. ``manifest.json`` is canonical JSON with every required field and a sorted,
       duplicate-free list of safe relative paths.
    2. ``manifest.json.sig`` verifies over the exact bytes of ``manifest.json`` with the
       public key embedded in the manifest.
    3. The manifest's signer fingerprint is that of the embedded key, and — if
       ``trusted_fingerprints`` is given — one of them.
    4. Every listed file exists as a regular file with the listed size and SHA-256
       (streamed, so large files are fine).
    5. The item holds no files (or links) the manifest does not list, apart from
       ``manifest.json``, ``manifest.json.sig`` and ``SHA256SUMS``.
    6. In every listed ``*.warc.gz`` / ``*.warc`` file, each record's
       ``WARC-Block-Digest`` and ``WARC-Payload-Digest`` (``sha256:``) verify, and the
       bytes parsed are the bytes whose SHA-256 the manifest lists.
    7. The custody log (``custody_log``, or by default ``../../custody.jsonl`` when it
       exists) verifies as the log of the manifest's case (:func:`verify_case_log`: the
       chain, its signed opening, one signing key unless others are trusted, nothing but
       examinations, transfers, notes, exports, timestamps and repairs after the case was
       closed, and ``custody.head`` beside it, which a log in a case folder must have), and
       has a ``captured`` entry for this item whose ``details.manifest_sha256`` is the
       SHA-256 of ``manifest.json``.

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
    return _verify_item(item_dir, trusted, custody, _case_layout(item_dir))


def verify_case(
    case_dir: Path,
    *,
    trusted_fingerprints: Collection[str] | None = None,
) -> CaseReport:
    """Verify a case directory: its custody log once, then every ``items/*/`` against it.

    The case id is the directory's name (``<home>/<CASE_ID>/``); the log must be that
    case's (:func:`verify_case_log`), with ``custody.head`` beside it, whether or not
    ``case.json`` is there. The case's facts come from the log's signed ``case-opened``
    entry, never from ``case.json``; where ``case.json`` disagrees with them (case id,
    title, category, investigator, authority, status) that is a problem naming it. Every
    item is judged as an item of this case. Besides each item's report, finds items the
    log records as captured whose directory is missing, and entries of ``items/`` that
    are not items. Raises UsageError if ``case_dir`` is not a case directory.
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
    if log_path.is_file():
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
    children = sorted(items_dir.iterdir()) if items_dir.is_dir() else []
    for child in children:
        present.add(child.name)
        if child.is_symlink() or not child.is_dir():
            problems.append(f"items/{child.name} is not a directory")
        elif not is_item_dir(child):
            problems.append(
                f"items/{child.name} has no {MANIFEST_NAME} (an unfinished or abandoned capture)"
            )
        else:
            items.append(_verify_item(child, trusted, custody, case_dir.resolve()))

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
    ok = not problems and all(item.ok for item in items)
    return CaseReport(
        ok=ok,
        case_id=case_id,
        chain=chain,
        items=tuple(items),
        problems=tuple(problems),
        path=str(case_dir),
    )


def _case_record_problems(path: Path, facts: CaseFacts) -> list[str]:
    """Where ``case.json`` (unsigned) disagrees with the signed opening and closing."""
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []  # the facts are the log's; case.json is a convenience copy
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
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read custody log {path}: {exc.strerror}") from None
    return _CustodyLog(path=path, data=data, trusted=trusted, head_required=head_required)


def _verify_item(
    item_dir: Path,
    trusted: frozenset[str] | None,
    custody: _CustodyLog | None,
    case_dir: Path | None,
) -> ItemReport:
    ctx = _Context(item_dir=item_dir, trusted=trusted, custody=custody, case_dir=case_dir)
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


# Step 1 -----------------------------------------------------------------------------


def _step1_manifest(ctx: _Context) -> StepResult:
    path = ctx.item_dir / MANIFEST_NAME
    try:
        ctx.manifest_bytes = path.read_bytes()
    except FileNotFoundError:
        return _result(1, "", [f"{MANIFEST_NAME} is missing"])
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
        signature = (ctx.item_dir / SIGNATURE_NAME).read_bytes()
    except FileNotFoundError:
        return _result(2, "", [f"{SIGNATURE_NAME} is missing"])
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
        try:
            digest, size = sha256_file(full)
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
    problems: list[str] = []

    def walk_error(exc: OSError) -> None:
        problems.append(f"cannot list {exc.filename}: {exc.strerror}")

    for root, dirs, names in os.walk(ctx.item_dir, onerror=walk_error):
        rel_root = PurePosixPath(Path(root).relative_to(ctx.item_dir).as_posix())
        # os.walk reports links to directories as directories but does not enter them.
        for name in sorted(dirs):
            if os.path.islink(os.path.join(root, name)):
                problems.append(f"{_rel(rel_root, name)} is a symbolic link (not listed)")
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
    hashes), but a verifier should not pass an item whose checksum list lies.
    """
    sums = ctx.item_dir / SUMS_NAME
    if not sums.is_file():
        return
    expected = {entry.path: entry.sha256 for entry in ctx.files}
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        with contextlib.suppress(OSError):
            expected[name] = sha256_file(ctx.item_dir / name)[0]
    seen: dict[str, str] = {}
    try:
        text = sums.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{SUMS_NAME} cannot be read: {exc}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{SUMS_NAME} line {number} is not '<sha256>  <file>'")
            continue
        seen[name.lstrip("*")] = digest.lower()
    if seen != expected:
        wrong = sorted(set(seen) ^ set(expected)) + sorted(
            n for n in set(seen) & set(expected) if seen[n] != expected[n]
        )
        problems.append(f"{SUMS_NAME} disagrees with the manifest for: {', '.join(wrong)}")


def _rel(root: PurePosixPath, name: str) -> str:
    return name if root == PurePosixPath(".") else f"{root}/{name}"


# Step 6 -----------------------------------------------------------------------------


def _step6_warc_digests(ctx: _Context) -> StepResult:
    warcs = [entry for entry in ctx.files if entry.path.endswith(_WARC_SUFFIXES)]
    if not warcs:
        return _result(6, "no WARC files in this item", [])
    problems: list[str] = []
    records = 0
    for entry in warcs:
        count, found = _check_warc(ctx.item_dir.joinpath(*entry.path.split("/")), entry)
        records += count
        problems.extend(f"{entry.path}: {p}" for p in found)
    return _result(
        6, f"{records} records in {len(warcs)} WARC file(s), every digest verifies", problems
    )


def _check_warc(path: Path, entry: FileEntry) -> tuple[int, list[str]]:
    problems: list[str] = []
    count = 0
    warnings = io.StringIO()
    gzip_check = _GzipMembers() if entry.path.endswith(".warc.gz") else None
    try:
        with path.open("rb") as raw, HashingReader(raw) as hashed:
            stream = _Tee(hashed, gzip_check.feed) if gzip_check else hashed
            # warcio writes format warnings straight to stderr; the library must not print,
            # so they are caught and reported. (redirect_stderr is process-wide: fine for
            # the single-threaded verifier.)
            with contextlib.redirect_stderr(warnings):
                for record in ArchiveIterator(stream, check_digests=True):
                    count += 1
                    problems.extend(f"record {count}: {p}" for p in _record_problems(record))
            while stream.read(_READ_CHUNK):
                pass
            if hashed.hexdigest() != entry.sha256:
                problems.append(
                    "the bytes parsed are not the bytes the manifest lists "
                    "(the file changed during verification, or differs from the manifest)"
                )
    except OSError as exc:
        problems.append(f"cannot be read: {exc.strerror or exc}")
    except Exception as exc:
        # Untrusted bytes through a third-party parser: any failure means "not a valid WARC".
        problems.append(f"not a valid WARC ({type(exc).__name__}: {_one_line(str(exc))})")
    if gzip_check is not None and (gzip_problem := gzip_check.finish()):
        problems.append(gzip_problem)
    if warnings.getvalue().strip():
        problems.append(f"warcio: {_one_line(warnings.getvalue())}")
    if count == 0 and not problems:
        problems.append("contains no WARC records")
    return count, problems


class _Tee:
    """Hands bytes read from ``stream`` to ``observe`` as well as to the reader."""

    def __init__(self, stream: HashingReader, observe: Callable[[bytes], None]) -> None:
        self._stream = stream
        self._observe = observe

    def read(self, size: int | None = -1, /) -> bytes:
        data = self._stream.read(size)
        self._observe(data)
        return data

    def tell(self) -> int:
        return self._stream.tell()


class _GzipMembers:
    """Checks that bytes fed in are whole gzip members with valid CRCs, and nothing else.

    warcio stops quietly where a truncated ``.warc.gz`` stops: the records before the cut
    still verify, so without this a file missing its end would pass step 6.
    """

    def __init__(self) -> None:
        self._member: Any = None
        self._members = 0
        self._error: str | None = None

    def feed(self, data: bytes) -> None:
        while data and self._error is None:
            member = self._member or zlib.decompressobj(_GZIP_WBITS)
            try:
                # Bounded output: a small, highly compressed member must not balloon in memory.
                out = member.decompress(data, _READ_CHUNK)
                while not member.eof and not member.unconsumed_tail and len(out) == _READ_CHUNK:
                    out = member.decompress(b"", _READ_CHUNK)
            except zlib.error as exc:
                if self._member is not None:
                    self._error = f"gzip member {self._members + 1} is corrupt ({exc})"
                elif self._members == 0:
                    self._error = "named .warc.gz but not gzip-compressed"
                else:
                    self._error = f"bytes after gzip member {self._members} are not gzip ({exc})"
                return
            if member.eof:
                self._members += 1
                self._member = None
                data = member.unused_data
            else:
                self._member = member
                data = member.unconsumed_tail

    def finish(self) -> str | None:
        if self._error is not None:
            return self._error
        if self._member is not None:
            return "the file ends inside a gzip member (it was cut short)"
        if self._members == 0:
            return "named .warc.gz but not gzip-compressed"
        return None


def _record_problems(record: Any) -> list[str]:
    if record.format != "warc":
        # warcio also reads the older ARC format, and reads almost any text line as one.
        return [f"not a WARC record (read as {record.format})"]
    headers = record.rec_headers
    kind = headers.get_header("WARC-Type") or "untyped"
    # Read the raw block to its end: warcio checks the digests as the last byte passes.
    while record.raw_stream.read(_READ_CHUNK):
        pass
    problems = []
    block = headers.get_header("WARC-Block-Digest")
    payload = headers.get_header("WARC-Payload-Digest")
    if not block:
        problems.append(f"{kind} record has no WARC-Block-Digest")
    for name, value in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)):
        if value and value.partition(":")[0].lower() != _WARC_DIGEST_ALGORITHM:
            problems.append(f"{kind} record's {name} is not {_WARC_DIGEST_ALGORITHM}: {value}")
    checker = record.digest_checker
    if checker.passed is False:
        problems.extend(f"{kind} record: {p}" for p in checker.problems)
    if record.length == 0 and kind != "revisit":
        # warcio never compares the block digest of an empty block; do it here.
        empty = hashlib.sha256(b"").digest()
        for name, value in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)):
            if value and not _digest_is(value, empty):
                problems.append(f"{kind} record: {name} of its empty block is wrong")
    elif checker.passed is None and (block or payload) and kind != "revisit":
        # Digest present but never compared: the record ended early (truncated file).
        problems.append(f"{kind} record's digest could not be checked (record cut short?)")
    return problems


def _digest_is(value: str, expected: bytes) -> bool:
    """``value`` (``algo:`` then hex, base32 or base64, as WARC writers vary) is ``expected``."""
    encoded = value.partition(":")[2].strip()
    decoders: tuple[Callable[[str], bytes], ...] = (
        bytes.fromhex,
        lambda text: base64.b32decode(text.upper()),
        lambda text: base64.b64decode(text, validate=True),
    )
    for decode in decoders:
        with contextlib.suppress(ValueError):
            if decode(encoded) == expected:
                return True
    return False


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# Step 7 -----------------------------------------------------------------------------


def _step7_custody(ctx: _Context) -> StepResult:
    assert ctx.manifest is not None
    if ctx.custody is None:
        expected = Path(os.path.abspath(ctx.item_dir)).parent.parent / CUSTODY_LOG_NAME
        if ctx.case_dir is not None:
            # Inside a case folder the log must be there: deleting it must not pass.
            return _result(7, "", [f"the case's custody log {expected} is missing"])
        return _skipped(7, f"no custody log given or found at {expected}", ok=True)
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
