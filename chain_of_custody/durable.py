"""Crash-safe writes: the one durable-write primitive every package uses.

A file that evidence depends on is either absent or complete and on disk, never a part:

* :func:`write_file` creates a new file and fsyncs it (files of an item being staged:
  the staging folder as a whole is published later by one rename);
* :func:`atomic_write_bytes` replaces a file: a temporary file in the same folder (a
  rename is only atomic within one filesystem), flushed and fsynced, renamed over the
  destination, then the folder fsynced so the rename itself survives a power cut;
* :func:`atomic_create_bytes` publishes a file only if its name is free (a hard link of
  the finished temporary file), so two writers cannot both believe they made it;
* :class:`AtomicFile` streams a large file to disk and publishes it the same way;
* :func:`append_durable` appends to an append-only file (the custody log) in one
  ``write`` and fsyncs it, and :func:`truncate_durable` cuts one back;
* :func:`fsync_file`, :func:`fsync_dir` and :func:`fsync_tree` make what is already
  written durable.

Temporary names are ``.tmp-<pid>-<random>-<name>``: the ``.tmp-`` prefix lets the store
recognise leftovers of a killed process, and the pid lets it tell a live writer from a
dead one. Standard library only, like the rest of :mod:`chain_of_custody`.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "TEMP_PREFIX",
    "AtomicFile",
    "append_durable",
    "atomic_create_bytes",
    "atomic_write_bytes",
    "atomic_write_text",
    "ensure_space",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "temp_owner_pid",
    "truncate_durable",
    "write_file",
]

TEMP_PREFIX = ".tmp-"

# Keeps the temp name well under the usual 255-byte NAME_MAX even for long destinations.
_MAX_NAME_IN_TEMP = 100

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make the contents of an already written regular file durable."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(top: Path) -> None:
    """fsync every regular file and every directory under ``top``, children before parents."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False, followlinks=False):
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                fsync_file(Path(path))
        fsync_dir(Path(dirpath))


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` (which must not exist) holding ``data``, fsynced before returning.

    For files inside a folder that is itself published atomically (an item's staging
    folder): the file needs to be durable, not individually atomic.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# Room kept free beyond the line itself: metadata and the signed head written next.
_APPEND_MARGIN = 64 * 1024


def append_durable(fd: int, data: bytes) -> None:
    """Append all of ``data`` to ``fd`` (opened with ``O_APPEND``) and fsync, or nothing.

    One ``write`` call for a line-sized ``data``, so a crash can tear only that line. A
    full disk is found before writing; any write or fsync that fails anyway is undone
    (the file is cut back to its old length) before the error is raised, so a failed
    append never leaves part of a line behind.
    """
    before = os.fstat(fd).st_size
    ensure_space(fd, len(data))
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError:
        os.ftruncate(fd, before)
        os.fsync(fd)
        raise


def ensure_space(fd: int, size: int) -> None:
    """Raise ENOSPC unless the file system of ``fd`` has room for ``size`` more bytes
    (and a margin for what is written next)."""
    fs = os.fstatvfs(fd)
    if fs.f_bavail * fs.f_frsize < size + _APPEND_MARGIN:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def truncate_durable(fd: int, size: int) -> None:
    """Cut the file open at ``fd`` back to ``size`` bytes, durably."""
    os.ftruncate(fd, size)
    os.fsync(fd)


def temp_owner_pid(name: str) -> int | None:
    """The pid recorded in a temporary file name, or None if the name carries none."""
    if not name.startswith(TEMP_PREFIX):
        return None
    head = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _make_temp(path: Path) -> tuple[int, Path]:
    fd, temp = tempfile.mkstemp(
        prefix=f"{TEMP_PREFIX}{os.getpid()}-",
        suffix=f"-{path.name[:_MAX_NAME_IN_TEMP]}",
        dir=path.parent,
    )
    return fd, Path(temp)


def _commit(fd: int, temp: Path, path: Path, mode: int) -> None:
    # mkstemp creates 0600; evidence files are meant to be readable by the reviewing team.
    os.fchmod(fd, mode)
    os.fsync(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    with AtomicFile(path, mode) as handle:
        handle.write(data)


def atomic_create_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Publish ``path`` complete, but only if it does not exist yet (else FileExistsError).

    The exclusive step is a hard link from the finished temp file: it fails when the name
    is taken, so two concurrent creators cannot both believe they made the file.
    """
    fd, temp = _make_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # Filesystems without hard links (FAT, exFAT, some SMB shares): O_EXCL still
            # gives exclusivity, at the cost of a short window where the file is incomplete.
            write_file(path, data, mode)
        fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str, mode: int = 0o644, encoding: str = "utf-8") -> None:
    """Text variant of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode(encoding), mode)


class AtomicFile:
    """Stream a large file to disk and publish it under its final name only when complete.

    ::

        with AtomicFile(path) as handle:
            for chunk in chunks:
                handle.write(chunk)

    A clean exit fsyncs, renames into place and fsyncs the directory; an exception
    removes the temporary file and leaves any previous ``path`` untouched.
    """

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        self.path = Path(path)
        self.mode = mode
        self._temp: Path | None = None
        self._handle: BinaryIO | None = None

    @property
    def temp_path(self) -> Path | None:
        """Where the bytes are going until commit (None outside the ``with`` block)."""
        return self._temp

    def __enter__(self) -> BinaryIO:
        if self._handle is not None:
            raise RuntimeError(f"AtomicFile for {self.path} is already open")
        fd, temp = _make_temp(self.path)
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        self._temp, self._handle = temp, handle
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handle, temp = self._handle, self._temp
        self._handle = self._temp = None
        if handle is None or temp is None:
            return
        try:
            if exc_type is None:
                handle.flush()
                _commit(handle.fileno(), temp, self.path, self.mode)
        finally:
            handle.close()
            # After a successful commit the temp name no longer exists; otherwise drop it.
            temp.unlink(missing_ok=True)
