"""Case records and the evidence store on disk.

Layout under the evidence home (a stable contract other tools and reviewers rely on)::

    <home>/<CASE_ID>/case.json
    <home>/<CASE_ID>/custody.jsonl
    <home>/<CASE_ID>/items/<ITEM_ID>/manifest.json (+ manifest.json.sig and the captured files)

An item is built in ``items/.staging-<ITEM_ID>/`` and renamed into place only once every
file in it is durably written, so a directory without a leading dot in ``items/`` is never
half a capture. While a capture runs its process holds an exclusive ``flock`` on
``items/.staging-<ITEM_ID>.lock``; the kernel drops that lock when the process dies, however
it dies, which is how :meth:`EvidenceStore.leftovers` tells a dead capture from a live one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

from filelock import FileLock, Timeout

from chain_of_custody.custody import CUSTODY_LOG_NAME
from chain_of_custody.durable import (
    TEMP_PREFIX,
    atomic_create_bytes,
    atomic_write_bytes,
    fsync_dir,
    fsync_tree,
    temp_owner_pid,
)
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.item import CASE_RECORD_NAME, ITEMS_DIR_NAME, MANIFEST_NAME, SIGNATURE_NAME
from chain_of_custody.timeutil import format_utc, parse_utc, utc_now

__all__ = [
    "CASE_FILE",
    "CASE_FORMAT",
    "CATEGORIES",
    "CATEGORY_DESCRIPTIONS",
    "CUSTODY_FILE",
    "ENV_HOME",
    "ITEMS_DIR",
    "Case",
    "EvidenceStore",
    "ItemStaging",
    "Leftover",
    "is_item_id",
    "new_item_id",
    "resolve_home",
]

ENV_HOME = "OSINT_CAPTURE_HOME"
CASE_FILE = CASE_RECORD_NAME
CUSTODY_FILE = CUSTODY_LOG_NAME
ITEMS_DIR = ITEMS_DIR_NAME
CASE_FORMAT = "osint-capture/case/1"

# Department policy IV.B.1 (a)-(e): the only purposes for which public posts may be captured.
CATEGORIES = ("missing-person", "wanted-person", "gang-activity", "online-crime", "crime-media")
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "missing-person": "IV.B.1(a) missing persons",
    "wanted-person": "IV.B.1(b) wanted persons",
    "gang-activity": "IV.B.1(c) gang participation",
    "online-crime": "IV.B.1(d) crimes perpetrated online, i.e. cyberbullying, cyberstalking",
    "crime-media": "IV.B.1(e) photos or videos of a crime posted by a participant or observer",
}

_CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ITEM_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
_STAGING_PREFIX = ".staging-"
_LOCK_SUFFIX = ".lock"
_CASE_LOCK_FILE = "case.json.lock"
_LOCK_TIMEOUT_S = 60
_NEW_ID_ATTEMPTS = 8

Status = Literal["open", "closed"]
LeftoverKind = Literal["staging", "lock", "temp"]


def resolve_home(home: Path | None) -> Path:
    """The evidence home: the flag value, else ``$OSINT_CAPTURE_HOME``, else ``./evidence``."""
    if home is None:
        env = os.environ.get(ENV_HOME, "").strip()
        home = Path(env) if env else Path.cwd() / "evidence"
    # abspath rather than resolve(): keep the path the investigator named, symlinks and all,
    # but never a relative one that would change meaning with the working directory.
    return Path(os.path.abspath(home.expanduser()))


def new_item_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<8 hex>``: sorts by capture time, random tail avoids collisions."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_item_id(value: str) -> bool:
    """True when ``value`` has the ITEM_ID shape (and so is safe as a path component)."""
    return _ITEM_ID_RE.fullmatch(value) is not None


def _check_case_id(case_id: str) -> str:
    if not isinstance(case_id, str) or _CASE_ID_RE.fullmatch(case_id) is None:
        raise UsageError(
            f"invalid case id {case_id!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return case_id


def _check_item_id(item_id: str) -> str:
    if not isinstance(item_id, str) or not is_item_id(item_id):
        raise UsageError(
            f"invalid item id {item_id!r}", hint="item ids look like 20240131T235959Z-0a1b2c3d"
        )
    return item_id


def _check_utc_timestamp(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"case {name} must be a UTC timestamp, not {value!r}")
    try:
        parse_utc(value)
    except ValueError as exc:
        raise UsageError(f"case {name}: {exc}") from None
    return value


def _categories_text() -> str:
    return ", ".join(f"{name} ({CATEGORY_DESCRIPTIONS[name]})" for name in CATEGORIES)


@dataclass(frozen=True)
class Case:
    """One investigation, as recorded in ``<home>/<CASE_ID>/case.json``."""

    case_id: str
    title: str
    category: str
    investigator: str
    authority: str
    opened_at: str
    status: Status
    closed_at: str | None
    format: str = CASE_FORMAT

    def __post_init__(self) -> None:
        _check_case_id(self.case_id)
        if self.format != CASE_FORMAT:
            raise UsageError(
                f"unsupported case record format {self.format!r}",
                hint=f"this version of osint-capture reads {CASE_FORMAT}",
            )
        if self.category not in CATEGORIES:
            raise UsageError(
                f"invalid category {self.category!r}; valid categories: {_categories_text()}",
                hint="captures are only permitted for the purposes in policy IV.B.1",
            )
        for name in ("title", "investigator", "authority"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"case {name} must not be empty")
            # Stored stripped so the record reads the same however the flag was quoted.
            object.__setattr__(self, name, value.strip())
        _check_utc_timestamp(self.opened_at, "opened_at")
        if self.status == "open":
            if self.closed_at is not None:
                raise UsageError("an open case cannot have closed_at set")
        elif self.status == "closed":
            _check_utc_timestamp(self.closed_at, "closed_at")
        else:
            raise UsageError(f"case status must be 'open' or 'closed', not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The ``case.json`` text: sorted keys, indented, newline-terminated."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Case:
        if not isinstance(data, dict):
            raise UsageError("a case record must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown field(s) in case record: {', '.join(unknown)}")
        missing = sorted(known - set(data) - {"format"})
        if missing:
            raise UsageError(f"missing field(s) in case record: {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Case:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"case record is not valid JSON: {exc}") from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class Leftover:
    """Remains of a capture or write that was interrupted (killed, crashed, power lost).

    ``kind`` is "staging" (an unfinished item directory), "lock" (a staging lock whose
    directory is already gone) or "temp" (a temporary file from an atomic write).
    ``modified`` is the newest modification time found under ``path``, UTC ISO-8601.
    """

    path: Path
    item_id: str | None
    size_bytes: int
    modified: str
    kind: LeftoverKind = "staging"


def _lock_is_held(lock_path: Path) -> bool:
    """True if some live process holds the flock on ``lock_path`` (False if it is absent)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        # Closing the descriptor also drops the probe lock if we got it.
        os.close(fd)
    return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _walk_no_follow(top: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """``top`` and everything below it, lstat'ed; entries that vanish meanwhile are skipped."""
    try:
        st = top.lstat()
    except FileNotFoundError:
        return
    yield top, st
    if stat.S_ISDIR(st.st_mode):
        try:
            children = sorted(top.iterdir())
        except FileNotFoundError:
            return
        for child in children:
            yield from _walk_no_follow(child)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class ItemStaging:
    """An item under construction; see :meth:`EvidenceStore.new_item`.

    Write the item's files under :attr:`path`, then :meth:`finalize`. Used as a context
    manager, leaving the block without finalizing (by exception or otherwise) discards it.
    """

    def __init__(self, items_dir: Path, item_id: str, lock_file: BinaryIO) -> None:
        # Private: built by EvidenceStore.new_item, which has already taken the lock.
        self.item_id = item_id
        self.path = items_dir / f"{_STAGING_PREFIX}{item_id}"
        self.final_path = items_dir / item_id
        self._items_dir = items_dir
        self._lock_path = items_dir / f"{_STAGING_PREFIX}{item_id}{_LOCK_SUFFIX}"
        self._lock_file: BinaryIO | None = lock_file
        self._state: Literal["staging", "finalized", "discarded"] = "staging"

    @property
    def lock_path(self) -> Path:
        return self._lock_path

    @property
    def finalized(self) -> bool:
        return self._state == "finalized"

    def finalize(self, *, keep_lock: bool = False) -> Path:
        """Make every file durable, then publish the item under ``items/<ITEM_ID>/``.

        The item must already contain ``manifest.json`` and ``manifest.json.sig``: anything
        in ``items/`` without a leading dot is taken to be a complete, signed item.
        With ``keep_lock`` the staging lock stays held (see :meth:`release`), so others can
        tell that the publishing process is still at work on the item (logging it).
        """
        self._require_staging()
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            if not (self.path / name).is_file():
                raise ValueError(f"cannot finalize item {self.item_id}: {name} is missing")
        fsync_tree(self.path)
        if os.path.lexists(self.final_path):
            # rename(2) would silently replace an empty directory; never overwrite an item.
            raise FileExistsError(f"item {self.final_path} already exists")
        os.rename(self.path, self.final_path)
        fsync_dir(self._items_dir)
        self._state = "finalized"
        if not keep_lock:
            self._release_lock()
        return self.final_path

    def release(self) -> None:
        """Release a lock kept by ``finalize(keep_lock=True)``."""
        self._release_lock()

    def discard(self) -> None:
        """Remove the staging directory and its lock. A no-op once finalized or discarded."""
        if self._state != "staging":
            if self._state == "finalized":
                self._release_lock()
            return
        # Still holding the lock while deleting, so nobody mistakes this for a dead capture.
        if self.path.exists():
            shutil.rmtree(self.path)
        self._state = "discarded"
        self._release_lock()

    def _require_staging(self) -> None:
        if self._state != "staging":
            raise RuntimeError(f"item staging {self.item_id} is already {self._state}")

    def _release_lock(self) -> None:
        # Unlink before closing: the file never exists unlocked, so it never looks abandoned.
        self._lock_path.unlink(missing_ok=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> ItemStaging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()

    def __repr__(self) -> str:
        return f"ItemStaging({self.item_id!r}, {self._state})"


class EvidenceStore:
    """All cases under one evidence home."""

    def __init__(self, home: Path) -> None:
        self.home = Path(os.path.abspath(Path(home).expanduser()))

    def __repr__(self) -> str:
        return f"EvidenceStore({str(self.home)!r})"

    # -- cases ---------------------------------------------------------------------------

    def case_dir(self, case_id: str) -> Path:
        return self.home / _check_case_id(case_id)

    def item_dir(self, case_id: str, item_id: str) -> Path:
        return self.case_dir(case_id) / ITEMS_DIR / _check_item_id(item_id)

    def open_case(
        self, case_id: str, *, title: str, category: str, investigator: str, authority: str
    ) -> Case:
        """Create the case directory and its ``case.json``; an existing case is refused."""
        case = Case(
            case_id=case_id,
            title=title,
            category=category,
            investigator=investigator,
            authority=authority,
            opened_at=utc_now(),
            status="open",
            closed_at=None,
        )
        case_dir = self.case_dir(case.case_id)
        home_existed = self.home.is_dir()
        self.home.mkdir(parents=True, exist_ok=True)
        # A directory without case.json is what a crash during open leaves; reusing it is
        # safe because case.json is published exclusively below.
        case_dir.mkdir(exist_ok=True)
        (case_dir / ITEMS_DIR).mkdir(exist_ok=True)
        try:
            atomic_create_bytes(case_dir / CASE_FILE, case.to_json().encode("utf-8"))
        except FileExistsError:
            raise UsageError(
                f"case '{case.case_id}' already exists in {self.home}",
                hint="choose another case id, or use the existing case",
            ) from None
        fsync_dir(self.home)
        if not home_existed:
            fsync_dir(self.home.parent)
        return case

    def _no_such_case(self, case_id: str) -> UsageError:
        return UsageError(
            f"no case '{case_id}' in {self.home}", hint="open it with `osint-capture case open`"
        )

    def _existing_case_dir(self, case_id: str) -> Path:
        """The case directory, if the case exists (without parsing its record)."""
        case_dir = self.case_dir(case_id)
        if not (case_dir / CASE_FILE).is_file():
            raise self._no_such_case(case_id)
        return case_dir

    def get_case(self, case_id: str) -> Case:
        path = self.case_dir(case_id) / CASE_FILE
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise self._no_such_case(case_id) from None
        try:
            case = Case.from_json(data)
        except UsageError as exc:
            raise IntegrityError(f"case record {path} is damaged: {exc.message}") from None
        if case.case_id != case_id:
            raise IntegrityError(f"case record {path} names case '{case.case_id}', not '{case_id}'")
        return case

    def list_cases(self) -> list[Case]:
        if not self.home.is_dir():
            return []
        return [
            self.get_case(entry.name)
            for entry in sorted(self.home.iterdir())
            if _CASE_ID_RE.fullmatch(entry.name) and (entry / CASE_FILE).is_file()
        ]

    def close_case(self, case_id: str) -> Case:
        """Mark the case closed; closing a closed case is refused."""
        case_dir = self.case_dir(case_id)
        self.get_case(case_id)  # fails with the usual message before any lock file is made
        try:
            with FileLock(case_dir / _CASE_LOCK_FILE, timeout=_LOCK_TIMEOUT_S):
                case = self.get_case(case_id)
                if case.status == "closed":
                    raise UsageError(f"case '{case_id}' was already closed at {case.closed_at}")
                closed = replace(case, status="closed", closed_at=utc_now())
                atomic_write_bytes(case_dir / CASE_FILE, closed.to_json().encode("utf-8"))
        except Timeout:
            raise UsageError(
                f"case '{case_id}' is locked by another osint-capture process",
                hint="wait for it to finish and retry",
            ) from None
        return closed

    # -- items ---------------------------------------------------------------------------

    def list_items(self, case_id: str) -> list[str]:
        """Ids of complete items (published and signed), oldest first."""
        items = self._existing_case_dir(case_id) / ITEMS_DIR
        if not items.is_dir():
            return []
        return sorted(
            entry.name
            for entry in items.iterdir()
            if not entry.name.startswith(".")
            and entry.is_dir()
            and (entry / MANIFEST_NAME).is_file()
            and (entry / SIGNATURE_NAME).is_file()
        )

    def new_item(self, case_id: str) -> ItemStaging:
        """Start a new item in an open case: a locked staging directory to write into."""
        case = self.get_case(case_id)
        if case.status != "open":
            raise UsageError(
                f"case '{case_id}' is closed; no new evidence can be added to it",
                hint="open a new case for further captures",
            )
        items = self.case_dir(case_id) / ITEMS_DIR
        items.mkdir(exist_ok=True)
        for _ in range(_NEW_ID_ATTEMPTS):
            item_id = new_item_id()
            lock_file = self._take_new_lock(items, item_id)
            if lock_file is None:
                continue
            staging = ItemStaging(items, item_id, lock_file)
            try:
                staging.path.mkdir()
            except BaseException:
                staging._release_lock()
                raise
            return staging
        raise RuntimeError(f"could not allocate a fresh item id in {items}")

    @staticmethod
    def _take_new_lock(items: Path, item_id: str) -> BinaryIO | None:
        """Create and flock the staging lock for ``item_id``; None if the id is taken."""
        final = items / item_id
        staging = items / f"{_STAGING_PREFIX}{item_id}"
        lock_path = items / f"{_STAGING_PREFIX}{item_id}{_LOCK_SUFFIX}"
        if os.path.lexists(final) or os.path.lexists(staging):
            return None
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return None
        lock_file = os.fdopen(fd, "r+b", buffering=0)
        try:
            # Blocking: the only other holder can be a leftovers() probe, which is brief.
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            # Between create and flock a cleaner may have judged the unlocked file abandoned
            # and deleted it; a lock on an unlinked inode protects nothing, so start over.
            try:
                same = os.stat(lock_path).st_ino == os.fstat(lock_file.fileno()).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            lock_file.close()
            raise
        if not same:
            lock_file.close()
            return None
        return lock_file

    # -- leftovers of interrupted captures ----------------------------------------------

    def is_being_published(self, case_id: str, item_id: str) -> bool:
        """True while a live process still holds the item's staging lock (it is logging it)."""
        lock = self.case_dir(case_id) / ITEMS_DIR / f"{_STAGING_PREFIX}{item_id}{_LOCK_SUFFIX}"
        return lock.exists() and _lock_is_held(lock)

    def leftovers(self, case_id: str) -> list[Leftover]:
        """Staging directories, staging locks and temp files no live process owns."""
        # Not get_case(): cleaning up must work even if case.json itself is damaged.
        case_dir = self._existing_case_dir(case_id)
        items = case_dir / ITEMS_DIR
        found: list[Leftover] = []
        for entry in self._entries(case_dir):
            if entry.name.startswith(TEMP_PREFIX) and not self._temp_is_live(entry):
                found.extend(self._describe(entry, None, "temp"))
        for entry in self._entries(items):
            name = entry.name
            if name.startswith(TEMP_PREFIX):
                if not self._temp_is_live(entry):
                    found.extend(self._describe(entry, None, "temp"))
            elif name.startswith(_STAGING_PREFIX) and name.endswith(_LOCK_SUFFIX):
                item_id = name[len(_STAGING_PREFIX) : -len(_LOCK_SUFFIX)]
                staging = items / f"{_STAGING_PREFIX}{item_id}"
                # With its directory present the lock is reported as part of that staging.
                if not os.path.lexists(staging) and not _lock_is_held(entry):
                    found.extend(self._describe(entry, item_id, "lock"))
            elif name.startswith(_STAGING_PREFIX):
                item_id = name[len(_STAGING_PREFIX) :]
                if not _lock_is_held(items / f"{name}{_LOCK_SUFFIX}"):
                    found.extend(self._describe(entry, item_id, "staging"))
        return found

    def remove_leftover(self, leftover: Leftover) -> None:
        """Delete one leftover, re-checking that no live process owns it; never an item."""
        path = Path(os.path.abspath(leftover.path))
        name = path.name
        in_items = path.parent.name == ITEMS_DIR and path.parent.parent.parent == self.home
        in_case = path.parent.parent == self.home
        if not (in_items or in_case) or not (
            name.startswith(TEMP_PREFIX) or (in_items and name.startswith(_STAGING_PREFIX))
        ):
            raise UsageError(f"{path} is not a leftover in {self.home}; not removing it")
        if name.startswith(TEMP_PREFIX):
            if self._temp_is_live(path):
                raise UsageError(f"{path} belongs to a running process; not removing it")
            _remove_path(path)
        else:
            base = name[: -len(_LOCK_SUFFIX)] if name.endswith(_LOCK_SUFFIX) else name
            self._remove_staging(path.parent / base, path.parent / f"{base}{_LOCK_SUFFIX}")
        fsync_dir(path.parent)

    @staticmethod
    def _remove_staging(staging: Path, lock_path: Path) -> None:
        try:
            fd: int | None = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UsageError(
                        f"{staging} belongs to a capture that is still running; not removing it"
                    ) from None
            # Holding the lock, so a capture cannot come back to life under our feet.
            if os.path.lexists(staging):
                _remove_path(staging)
            lock_path.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)

    @staticmethod
    def _entries(directory: Path) -> list[Path]:
        try:
            return sorted(directory.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    @staticmethod
    def _temp_is_live(path: Path) -> bool:
        pid = temp_owner_pid(path.name)
        # No recorded pid means no way to tell it is alive: only dead writers leave those.
        return pid is not None and _pid_alive(pid)

    @staticmethod
    def _describe(path: Path, item_id: str | None, kind: LeftoverKind) -> list[Leftover]:
        """A one-element list, or empty if the path vanished (its owner just finished)."""
        size, newest, seen = 0, 0.0, False
        for _, st in _walk_no_follow(path):
            seen = True
            newest = max(newest, st.st_mtime)
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
        if not seen:
            return []
        return [
            Leftover(path, item_id, size, format_utc(datetime.fromtimestamp(newest, UTC)), kind)
        ]
