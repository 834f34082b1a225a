"""Items under construction, and what interrupted captures and writes leave behind.

An item is built in ``items/.staging-<ITEM_ID>/`` and renamed into place only once every
file in it is durably written, so a directory without a leading dot in ``items/`` is never
half a capture. While a capture runs its process holds an exclusive ``flock`` on
``items/.staging-<ITEM_ID>.lock``; the kernel drops that lock when the process dies, however
it dies, which is how :func:`find_leftovers` tells a dead capture from a live one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

from chain_of_custody.durable import TEMP_PREFIX, fsync_dir, fsync_tree, temp_owner_pid
from chain_of_custody.errors import UsageError
from chain_of_custody.item import ITEMS_DIR_NAME, MANIFEST_NAME, SIGNATURE_NAME
from chain_of_custody.timeutil import format_utc

from .case import new_item_id

__all__ = [
    "LOCK_SUFFIX",
    "STAGING_PREFIX",
    "ItemStaging",
    "Leftover",
    "LeftoverKind",
    "create_staging",
    "find_leftovers",
    "is_being_published",
    "remove_leftover",
]

STAGING_PREFIX = ".staging-"
LOCK_SUFFIX = ".lock"
# How locks are opened to probe them: read-only, never through a link, never waiting.
_PROBE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_NEW_ID_ATTEMPTS = 8

LeftoverKind = Literal["staging", "lock", "temp"]


def _staging_path(items_dir: Path, item_id: str) -> Path:
    return items_dir / f"{STAGING_PREFIX}{item_id}"


def _lock_path(items_dir: Path, item_id: str) -> Path:
    return items_dir / f"{STAGING_PREFIX}{item_id}{LOCK_SUFFIX}"


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


# -- probing locks and processes ---------------------------------------------------------


def _lock_is_held(lock_path: Path) -> bool:
    """True if some live process holds the flock on ``lock_path`` (False if it is absent).

    Opened without following a link and without blocking, so a FIFO planted under a lock's
    name cannot hang a listing; anything but a regular file is no lock of ours.
    """
    try:
        fd = os.open(lock_path, _PROBE_FLAGS)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a link, a socket: no lock of ours
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
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


def _temp_is_live(path: Path) -> bool:
    pid = temp_owner_pid(path.name)
    # No recorded pid means no way to tell it is alive: only dead writers leave those.
    return pid is not None and _pid_alive(pid)


def is_being_published(items_dir: Path, item_id: str) -> bool:
    """True while a live process still holds the item's staging lock (it is logging it)."""
    lock = _lock_path(items_dir, item_id)
    return lock.exists() and _lock_is_held(lock)


# -- building an item --------------------------------------------------------------------


class ItemStaging:
    """An item under construction; see :meth:`EvidenceStore.new_item`.

    Write the item's files under :attr:`path`, then :meth:`finalize`. Used as a context
    manager, leaving the block without finalizing (by exception or otherwise) discards it,
    unless :meth:`abandon` kept it as a leftover.
    """

    def __init__(self, items_dir: Path, item_id: str, lock_file: BinaryIO) -> None:
        # Private: built by create_staging, which has already taken the lock.
        self.item_id = item_id
        self.path = _staging_path(items_dir, item_id)
        self.final_path = items_dir / item_id
        self._items_dir = items_dir
        self._lock_path = _lock_path(items_dir, item_id)
        self._lock_file: BinaryIO | None = lock_file
        self._state: Literal["staging", "finalized", "discarded", "abandoned"] = "staging"

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
        """Remove the staging directory and its lock. A no-op once finalized, discarded or
        abandoned."""
        if self._state != "staging":
            if self._state == "finalized":
                self._release_lock()
            return
        # Still holding the lock while deleting, so nobody mistakes this for a dead capture.
        if self.path.exists():
            shutil.rmtree(self.path)
        self._state = "discarded"
        self._release_lock()

    def abandon(self) -> Path:
        """Stop building the item but keep its staging folder, as a named leftover.

        For a capture that may not be published (its case was closed while it ran): the
        lock is released and nothing is deleted, so :func:`find_leftovers` reports the
        folder and ``case clean`` can remove it (and log that). Leaving a ``with`` block
        afterwards no longer discards it. Returns the staging folder.
        """
        self._require_staging()
        self._state = "abandoned"
        self._release_lock()
        return self.path

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


def create_staging(items_dir: Path) -> ItemStaging:
    """A fresh item id in ``items_dir``, its staging lock held and its directory made."""
    items_dir.mkdir(exist_ok=True)
    for _ in range(_NEW_ID_ATTEMPTS):
        item_id = new_item_id()
        lock_file = _take_new_lock(items_dir, item_id)
        if lock_file is None:
            continue
        staging = ItemStaging(items_dir, item_id, lock_file)
        try:
            staging.path.mkdir()
        except BaseException:
            staging._release_lock()
            raise
        return staging
    raise RuntimeError(f"could not allocate a fresh item id in {items_dir}")


def _take_new_lock(items_dir: Path, item_id: str) -> BinaryIO | None:
    """Create and flock the staging lock for ``item_id``; None if the id is taken."""
    lock_path = _lock_path(items_dir, item_id)
    if os.path.lexists(items_dir / item_id) or os.path.lexists(_staging_path(items_dir, item_id)):
        return None
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return None
    lock_file = os.fdopen(fd, "r+b", buffering=0)
    try:
        # Blocking: the only other holder can be a find_leftovers() probe, which is brief.
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


# -- leftovers ---------------------------------------------------------------------------


def find_leftovers(case_dir: Path) -> list[Leftover]:
    """Staging directories, staging locks and temp files in a case no live process owns."""
    items = case_dir / ITEMS_DIR_NAME
    found: list[Leftover] = []
    for entry in _entries(case_dir):
        if entry.name.startswith(TEMP_PREFIX) and not _temp_is_live(entry):
            found.extend(_describe(entry, None, "temp"))
    for entry in _entries(items):
        name = entry.name
        if name.startswith(TEMP_PREFIX):
            if not _temp_is_live(entry):
                found.extend(_describe(entry, None, "temp"))
        elif name.startswith(STAGING_PREFIX) and name.endswith(LOCK_SUFFIX):
            item_id = name[len(STAGING_PREFIX) : -len(LOCK_SUFFIX)]
            # With its directory present the lock is reported as part of that staging.
            if not os.path.lexists(_staging_path(items, item_id)) and not _lock_is_held(entry):
                found.extend(_describe(entry, item_id, "lock"))
        elif name.startswith(STAGING_PREFIX):
            item_id = name[len(STAGING_PREFIX) :]
            if not _lock_is_held(items / f"{name}{LOCK_SUFFIX}"):
                found.extend(_describe(entry, item_id, "staging"))
    return found


def remove_leftover(home: Path, leftover: Leftover) -> None:
    """Delete one leftover under ``home``, re-checking that no live process owns it.

    Refuses anything that is not named like a leftover in a case folder or its ``items/``,
    so a complete item can never be removed this way.
    """
    path = Path(os.path.abspath(leftover.path))
    name = path.name
    in_items = path.parent.name == ITEMS_DIR_NAME and path.parent.parent.parent == home
    in_case = path.parent.parent == home
    if not (in_items or in_case) or not (
        name.startswith(TEMP_PREFIX) or (in_items and name.startswith(STAGING_PREFIX))
    ):
        raise UsageError(f"{path} is not a leftover in {home}; not removing it")
    if name.startswith(TEMP_PREFIX):
        if _temp_is_live(path):
            raise UsageError(f"{path} belongs to a running process; not removing it")
        _remove_path(path)
    else:
        base = name[: -len(LOCK_SUFFIX)] if name.endswith(LOCK_SUFFIX) else name
        _remove_staging(path.parent / base, path.parent / f"{base}{LOCK_SUFFIX}")
    fsync_dir(path.parent)


def _remove_staging(staging: Path, lock_path: Path) -> None:
    try:
        fd: int | None = os.open(lock_path, _PROBE_FLAGS)
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


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


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
    modified = format_utc(datetime.fromtimestamp(newest, UTC))
    return [Leftover(path, item_id, size, modified, kind)]
