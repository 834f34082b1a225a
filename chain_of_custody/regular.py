"""Reading only regular files: what verification opens is never a link, a FIFO or a device.

Evidence handed to an examiner may be hostile: a symbolic link could lead out of the
item, and a read on a FIFO would wait forever. Every file verification relies on is
checked with lstat before it is opened (opening a device can have effects of its own),
opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with fstat before a byte is
read, so what is read is what lstat saw.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotRegularFile", "not_regular", "open_regular", "read_regular_file"]

_READ_CHUNK = 1 << 20
_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """The path exists but is not a regular file; ``what`` says what it is instead."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({what})", str(path))
        self.what = what


def not_regular(path: Path, mode: int) -> NotRegularFile:
    """The error for ``path``, whose lstat mode is ``mode``, saying what it is instead."""
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            return NotRegularFile(path, "a symbolic link")
        return NotRegularFile(path, f"a symbolic link (to {target})")
    return NotRegularFile(path, next((what for test, what in _KINDS if test(mode)), "not a file"))


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, unbuffered, if it is itself a regular file.

    Raises FileNotFoundError if absent, :class:`NotRegularFile` for anything but a
    regular file, OSError if it cannot be opened.
    """
    mode = path.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # replaced meanwhile: a link, a socket
            raise not_regular(path, path.lstat().st_mode) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, which must itself be a regular file (see :func:`open_regular`)."""
    with open_regular(path) as handle:
        chunks = []
        while chunk := handle.read(_READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
