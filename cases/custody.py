"""Appending to a case's hash-chained custody log, safely with many writers.

The line format, hashing and signing belong to :mod:`chain_of_custody.custody`; this module
owns the file: who may write when (a lock), what the next entry chains onto (the last
complete line), and what happens after a crash tore the last line (refuse, then repair on
request, recording exactly what was cut off).

Each append is one ``write`` of one whole line to a descriptor opened with ``O_APPEND``,
followed by ``fsync``; a crash can therefore damage only the final line, and nothing is
ever chained onto damage: :func:`append_event` refuses until :func:`repair_log` has run.
"""

from __future__ import annotations

import base64
import copy
import errno
import fcntl
import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock, Timeout

from chain_of_custody.custody import (
    ACTIONS,
    CUSTODY_LOG_NAME,
    HEAD_NAME,
    build_entry,
    build_head,
    parse_line,
    split_log,
)
from chain_of_custody.durable import (
    append_durable,
    atomic_write_bytes,
    ensure_space,
    fsync_dir,
    truncate_durable,
)
from chain_of_custody.errors import CustodyLogDamaged, UsageError, storage_error
from chain_of_custody.regular import NotRegularFile, read_regular_file
from chain_of_custody.signing import Signer
from chain_of_custody.timeutil import utc_now

__all__ = [
    "ACTION_LOG_REPAIRED",
    "CUSTODY_FILE",
    "CUSTODY_LOCK_FILE",
    "REPAIR_BASE64_LIMIT",
    "append_event",
    "check_log_writable",
    "events_for_item",
    "logged_events",
    "parsed_entries",
    "read_events",
    "read_log_bytes",
    "repair_log",
]

CUSTODY_FILE = CUSTODY_LOG_NAME
CUSTODY_LOCK_FILE = f"{CUSTODY_LOG_NAME}.lock"
ACTION_LOG_REPAIRED = "log-repaired"
# Enough to show a reviewer what a torn line held without bloating the log with garbage.
REPAIR_BASE64_LIMIT = 64 * 1024

_LOCK_TIMEOUT_S = 60
_TAIL_CHUNK = 64 * 1024


def _repair_hint(case_id: str) -> str:
    return f"run `osint-capture custody repair {case_id}`"


@contextmanager
def _locked(case_dir: Path, case_id: str) -> Iterator[None]:
    # FileLock would create a missing case directory for its lock file; refuse instead.
    if not case_dir.is_dir():
        raise UsageError(f"no case directory {case_dir}")
    try:
        with FileLock(case_dir / CUSTODY_LOCK_FILE, timeout=_LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise UsageError(
            f"the custody log of case '{case_id}' stayed locked for {_LOCK_TIMEOUT_S} s",
            hint="another osint-capture process is writing to it; retry when it has finished",
        ) from None


@contextmanager
def _read_locked(case_dir: Path, case_id: str) -> Iterator[None]:
    """Hold the custody lock while reading, if a lock can be had without writing.

    Readers take the writers' lock so that a line being appended is not taken for a torn
    one, but reading must work on a write-blocked copy (a read-only mount, a folder the
    examiner may not write to), where no lock file can be created. So: an existing lock
    file is locked through a read-only descriptor (flock needs no write access); a
    missing one is created as writers create it, unless the folder is not writable, and
    then the log is read without a lock, since nobody can be appending to it either.
    """
    if not case_dir.is_dir():
        raise UsageError(f"no case directory {case_dir}")
    lock_path = case_dir / CUSTODY_LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        try:
            _flock_shared_wait(fd, lock_path, case_id)
            yield
        finally:
            os.close(fd)
        return
    if not os.access(case_dir, os.W_OK):
        yield  # a folder nobody may write to: no writer to wait for, no lock file to make
        return
    lock = FileLock(lock_path, timeout=_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(
            f"the custody log of case '{case_id}' stayed locked for {_LOCK_TIMEOUT_S} s",
            hint="another osint-capture process is writing to it; retry when it has finished",
        ) from None
    except OSError as exc:
        # Writable as far as access(2) could tell, yet the lock file cannot be made.
        if exc.errno not in _READ_ONLY_ERRNOS or os.path.lexists(lock_path):
            raise
        yield
        return
    try:
        yield
    finally:
        lock.release()


_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_LOCK_POLL_S = 0.05


def _flock_shared_wait(fd: int, lock_path: Path, case_id: str) -> None:
    """Take the flock writers take (exclusive) on ``fd``, waiting at most the lock timeout."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise UsageError(f"{lock_path} is not a regular file; it cannot be the custody lock")
    deadline = time.monotonic() + _LOCK_TIMEOUT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise UsageError(
                    f"the custody log of case '{case_id}' stayed locked for {_LOCK_TIMEOUT_S} s",
                    hint="another osint-capture process is writing to it; retry when it has "
                    "finished",
                ) from None
            time.sleep(_LOCK_POLL_S)


def _open_log(case_dir: Path) -> int:
    path = case_dir / CUSTODY_FILE
    existed = os.path.lexists(path)
    try:
        # Never written through a link: every reader refuses one, so no writer follows it.
        fd = os.open(
            path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644
        )
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise CustodyLogDamaged(
                f"the custody log {path} is a symbolic link; it is never written through one",
                hint="preserve the case folder as it is and have it examined",
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CustodyLogDamaged(f"the custody log {path} is not a regular file")
    if not existed:
        # A log nobody can find after a power cut is as bad as no log.
        fsync_dir(case_dir)
    return fd


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise OSError(f"custody log shrank while being read (at byte {offset})")
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _line_start(fd: int, end: int) -> int:
    """Offset just after the last b"\\n" before ``end`` (0 if none), reading backwards."""
    pos = end
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        chunk = _pread_exact(fd, pos - start, start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        pos = start
    return 0


def _try_parse(line: bytes) -> dict[str, Any] | None:
    try:
        return parse_line(line)
    except CustodyLogDamaged:
        return None


def _last_line(fd: int, end: int) -> tuple[int, bytes | None]:
    """The line that ends (with its b"\n") at ``end``: its start offset and its bytes."""
    if end == 0:
        return 0, None
    start = _line_start(fd, end - 1)
    return start, _pread_exact(fd, end - 1 - start, start)


class _Tail:
    """Where the log's complete lines end and what the last of them is (read from the end)."""

    def __init__(self, fd: int) -> None:
        self.size = os.fstat(fd).st_size
        # Everything after the last newline is a torn line a crash left half-written.
        self.complete_end = _line_start(fd, self.size)
        self.last_start, self.last_line = _last_line(fd, self.complete_end)
        self.torn = self.complete_end != self.size


def _write_head(
    case_dir: Path, case_id: str, entry: Mapping[str, Any], line: bytes, signer: Signer
) -> None:
    """Replace the signed head (newest seq and hash) so entries cut off the end show.

    Written after the entry is durable: a crash in between leaves a head one entry
    behind, which verification accepts; never a head ahead of the log.
    """
    head = build_head(
        case_id=case_id, seq=int(entry["seq"]), last_line=line, time=utc_now(), signer=signer
    )
    atomic_write_bytes(case_dir / HEAD_NAME, head)


def _build_next(
    prev_line: bytes | None,
    prev_entry: Mapping[str, Any] | None,
    *,
    case_id: str,
    actor: str,
    action: str,
    item_id: str | None,
    details: Mapping[str, Any],
    signer: Signer,
) -> bytes:
    seq = 1 if prev_entry is None else int(prev_entry["seq"]) + 1
    return build_entry(
        case_id=case_id,
        prev_line=prev_line,
        seq=seq,
        time=utc_now(),
        actor=actor,
        action=action,
        item_id=item_id,
        details=details,
        signer=signer,
    )


def _appendable_tail(tail: _Tail, case_id: str) -> dict[str, Any] | None:
    """The last entry to chain onto (None for an empty log); CustodyLogDamaged if damaged."""
    if tail.torn:
        raise CustodyLogDamaged(
            f"the custody log of case '{case_id}' ends in an incomplete line "
            f"({tail.size - tail.complete_end} bytes after the last complete entry)",
            hint=_repair_hint(case_id),
        )
    if tail.last_line is None:
        return None
    prev_entry = _try_parse(tail.last_line)
    if prev_entry is None:
        raise CustodyLogDamaged(
            f"the last entry of the custody log of case '{case_id}' is unreadable",
            hint=_repair_hint(case_id),
        )
    _require_same_case(prev_entry, case_id)
    return prev_entry


def _require_same_case(entry: Mapping[str, Any], case_id: str) -> None:
    # Not crash damage (repair cannot fix it): a log copied or moved between cases.
    if entry["case_id"] != case_id:
        raise CustodyLogDamaged(
            f"the custody log of case '{case_id}' ends with an entry of case {entry['case_id']!r}",
            hint="preserve the file as it is and have it examined",
        )


def check_log_writable(case_dir: Path, *, case_id: str) -> None:
    """Raise what :func:`append_event` would raise for a damaged log, without writing.

    For callers about to do something expensive that must end in a log entry (a capture):
    they can fail before starting rather than after. Takes the lock, so a concurrent
    writer's half-finished line is not mistaken for a torn one, but never needs to write
    to take it (see :func:`_read_locked`): on a read-only folder it only checks.
    """
    with _read_locked(case_dir, case_id):
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(case_dir / CUSTODY_FILE, flags)
        except FileNotFoundError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError(f"the custody log {case_dir / CUSTODY_FILE} is not a regular file")
            _appendable_tail(_Tail(fd), case_id)
        finally:
            os.close(fd)


def append_event(
    case_dir: Path,
    *,
    case_id: str,
    actor: str,
    action: str,
    item_id: str | None,
    details: Mapping[str, Any],
    signer: Signer,
) -> dict[str, Any]:
    """Append one signed entry, chained onto the last one; return it parsed.

    Raises ValueError for an ``action`` outside :data:`chain_of_custody.custody.ACTIONS`
    and :class:`CustodyLogDamaged` if the log ends in a torn or unreadable line; either
    way the file is left as it was.
    """
    # A misspelt action would be signed into the log for good; refuse it before the lock.
    if action not in ACTIONS:
        raise ValueError(f"unknown custody action {action!r}; known: {', '.join(ACTIONS)}")
    with _locked(case_dir, case_id):
        fd = _open_log(case_dir)
        try:
            tail = _Tail(fd)
            prev_entry = _appendable_tail(tail, case_id)
            line = _build_next(
                tail.last_line,
                prev_entry,
                case_id=case_id,
                actor=actor,
                action=action,
                item_id=item_id,
                details=details,
                signer=signer,
            )
            _append(fd, line, case_dir)
            entry = parse_line(line)
            _write_head(case_dir, case_id, entry, line, signer)
            return entry
        finally:
            os.close(fd)


@contextmanager
def _storage_errors(case_dir: Path, doing: str) -> Iterator[None]:
    """An OSError from the log's disk as one line saying the log is as it was."""
    try:
        yield
    except OSError as exc:
        exc.filename = exc.filename or str(case_dir / CUSTODY_FILE)
        raise storage_error(
            exc, doing, place="the evidence home", unchanged="the custody log is unchanged"
        ) from None


def _append(fd: int, line: bytes, case_dir: Path) -> None:
    with _storage_errors(case_dir, "appending to the custody log"):
        append_durable(fd, line)


def repair_log(
    case_dir: Path, *, case_id: str, actor: str, signer: Signer
) -> dict[str, Any] | None:
    """Cut a crash-damaged tail off the log and record the cut; None if nothing was wrong.

    What is removed: bytes after the last newline (a torn line) and, if it then does not
    parse, the last complete line. A crash can damage no more than that, so if the line
    before is unreadable too the damage has another cause and the log is left untouched.
    The ``log-repaired`` entry's details record what was cut: ``removed_sha256``,
    ``removed_size``, ``removed_base64`` (the first 64 KiB), ``removed_base64_truncated``
    and ``truncated_at`` (the offset the file was cut back to).
    """
    with _locked(case_dir, case_id):
        log_path = case_dir / CUSTODY_FILE
        if not log_path.exists():
            return None
        fd = _open_log(case_dir)
        try:
            tail = _Tail(fd)
            keep_end, prev_line = tail.complete_end, tail.last_line
            prev_entry = None if prev_line is None else _try_parse(prev_line)
            if prev_line is not None and prev_entry is None:
                keep_end = tail.last_start
                _, prev_line = _last_line(fd, keep_end)
                prev_entry = None if prev_line is None else _try_parse(prev_line)
                if prev_line is not None and prev_entry is None:
                    raise CustodyLogDamaged(
                        f"the custody log of case '{case_id}' is damaged before its last "
                        "entry; a crash cannot do that, so it is not repaired automatically",
                        hint="preserve the file as it is and have it examined",
                    )
            if keep_end == tail.size:
                return None
            if prev_entry is not None:
                _require_same_case(prev_entry, case_id)
            removed = _pread_exact(fd, tail.size - keep_end, keep_end)
            details = {
                "removed_sha256": hashlib.sha256(removed).hexdigest(),
                "removed_size": len(removed),
                "removed_base64": base64.b64encode(removed[:REPAIR_BASE64_LIMIT]).decode("ascii"),
                "removed_base64_truncated": len(removed) > REPAIR_BASE64_LIMIT,
                "truncated_at": keep_end,
            }
            # Built (and signed) before truncating, so a failure here changes nothing.
            line = _build_next(
                prev_line,
                prev_entry,
                case_id=case_id,
                actor=actor,
                action=ACTION_LOG_REPAIRED,
                item_id=None,
                details=details,
                signer=signer,
            )
            # Room for the entry first: cutting the tail and then failing to record the
            # cut would lose what was removed.
            with _storage_errors(case_dir, "repairing the custody log"):
                ensure_space(fd, len(line))
            truncate_durable(fd, keep_end)
            _append(fd, line, case_dir)
            entry = parse_line(line)
            _write_head(case_dir, case_id, entry, line, signer)
            return entry
        finally:
            os.close(fd)


def read_events(case_dir: Path) -> list[dict[str, Any]]:
    """Every entry of the log, parsed (no chain verification: see ``verify_chain``), as
    dicts of the caller's own (copies of :func:`logged_events`).

    An absent log reads as empty; a torn tail raises :class:`CustodyLogDamaged`, and so
    does any line that is not a well-formed entry (however malformed: nested too deep,
    not JSON …). Works on a read-only copy of the case: nothing is written, not even a
    lock file.
    """
    return [copy.deepcopy(dict(entry)) for entry in logged_events(case_dir)]


def logged_events(case_dir: Path) -> tuple[Mapping[str, Any], ...]:
    """What :func:`read_events` reads, without the copy: shared with every later read in
    this process (:func:`parsed_entries`), so read-only."""
    data = read_log_bytes(case_dir, case_id=case_dir.name)
    if data and not data.endswith(b"\n"):
        raise CustodyLogDamaged(
            f"the custody log in {case_dir} ends in an incomplete line",
            hint=_repair_hint(case_dir.name),
        )
    return parsed_entries(case_dir, data)


class _Parsed(NamedTuple):
    data: bytes  # complete lines, each with its newline
    entries: tuple[Mapping[str, Any], ...]


# What this process has parsed of each log, by folder. A log only grows at its end (a
# repair cuts only a torn tail, never a complete line), so a later read of it parses
# only the lines after those bytes, once a comparison has shown them unchanged: a
# capture reads its case's log several times, and a batch once more for every URL.
_parsed: dict[str, _Parsed] = {}
_parsed_lock = threading.Lock()


def parsed_entries(case_dir: Path, data: bytes) -> tuple[Mapping[str, Any], ...]:
    """The entries of ``data``, the complete lines of the log in ``case_dir`` (ending in a
    newline, or empty), each parsed by ``parse_line``; CustodyLogDamaged names the first
    malformed line. Lines this process parsed before, byte for byte the same at the
    start of ``data``, are not parsed again: the entries are shared, not to be changed.
    """
    key = os.fspath(case_dir)
    with _parsed_lock:
        known = _parsed.get(key)
    if known is None or not data.startswith(known.data):
        known = _Parsed(b"", ())
    lines, _ = split_log(data[len(known.data) :])
    total = len(known.entries) + len(lines)
    added: list[Mapping[str, Any]] = []
    for number, line in enumerate(lines, start=len(known.entries) + 1):
        try:
            added.append(parse_line(line))
        except CustodyLogDamaged as exc:
            raise CustodyLogDamaged(
                f"the custody log in {case_dir}, line {number}: {exc.message}",
                hint=_repair_hint(case_dir.name) if number == total else None,
            ) from None
    entries = known.entries + tuple(added)
    with _parsed_lock:
        _parsed[key] = _Parsed(data, entries)
    return entries


def read_log_bytes(case_dir: Path, *, case_id: str) -> bytes:
    """The custody log's bytes (b"" if there is none), read under the lock when one can be
    had without writing (see :func:`_read_locked`), so a line being appended is not read
    half written. A log that is not a regular file (a link, a FIFO) is refused, never
    followed nor read: UsageError."""
    path = case_dir / CUSTODY_FILE
    if not os.path.lexists(path):
        return b""
    with _read_locked(case_dir, case_id):
        try:
            return read_regular_file(path)
        except FileNotFoundError:
            return b""
        except NotRegularFile as exc:
            raise UsageError(
                f"the custody log {path} is {exc.what}; it is not read",
                hint="preserve the case folder as it is and have it examined",
            ) from None


def events_for_item(case_dir: Path, item_id: str) -> list[dict[str, Any]]:
    """The entries that concern one item, in log order."""
    return [event for event in read_events(case_dir) if event.get("item_id") == item_id]
