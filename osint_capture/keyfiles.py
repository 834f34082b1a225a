"""The operator's key files on disk, checked as ssh checks its own before any use.

The key folder and both key files must belong to the user; nobody else may write the
folder or ``key.json``, nor read or write ``signing-key.pem``; neither file may be a
symbolic link. What is checked is what is read: files are opened without following
links and checked again on the open descriptor.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from pathlib import Path

from chain_of_custody.errors import SigningKeyError

__all__ = ["check_key_folder", "read_key_file"]

# Ownership and permission bits mean something only on POSIX systems (on Windows
# os.stat reports every writable file as 0o666, and there is no geteuid).
_POSIX = hasattr(os, "geteuid")
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _access_text(mode: int) -> str:
    """What the group and other bits of ``mode`` allow: "writable by its group and others"."""
    parts = []
    for verb, group_bit, other_bit in (
        ("writable", stat.S_IWGRP, stat.S_IWOTH),
        ("readable", stat.S_IRGRP, stat.S_IROTH),
        ("executable", stat.S_IXGRP, stat.S_IXOTH),
    ):
        who = [
            name for bit, name in ((group_bit, "its group"), (other_bit, "others")) if mode & bit
        ]
        if who:
            parts.append(f"{verb} by {' and '.join(who)}")
    return ", ".join(parts)


def check_key_folder(directory: Path) -> None:
    """The key folder is a folder, the user's own, and nobody else can write in it.

    Raises FileNotFoundError if it does not exist.
    """
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SigningKeyError(f"cannot read the key folder {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SigningKeyError(f"the key folder {directory} is not a folder")
    _check_owner(directory, st)
    writable = stat.S_IMODE(st.st_mode) & (stat.S_IWGRP | stat.S_IWOTH)
    if _POSIX and writable:
        raise SigningKeyError(
            f"the key folder {directory} is {_access_text(writable)} "
            f"(mode {stat.S_IMODE(st.st_mode):04o}), so another user could replace the key",
            hint=f"run `chmod go-w {shlex.quote(str(directory))}`",
        )


def read_key_file(path: Path, *, private: bool) -> bytes:
    """The bytes of a key file, after checking it is a regular file of the user's own
    that nobody else can write (nor, for the private key, read).

    Raises FileNotFoundError if it does not exist.
    """
    what = "the signing key" if private else path.name
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise _symlink_error(path, what)
        if not stat.S_ISREG(st.st_mode):
            raise SigningKeyError(f"{path} is not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # replaced by a link since the lstat
            raise _symlink_error(path, what) from None
        raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SigningKeyError(f"{path} is not a regular file")
        _check_owner(path, st)
        mode = stat.S_IMODE(st.st_mode)
        if private:
            _check_private_mode(path, mode)
        elif _POSIX and mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SigningKeyError(
                f"{path} is {_access_text(mode & (stat.S_IWGRP | stat.S_IWOTH))} "
                f"(mode {mode:04o}), so another user could change the operator name in it",
                hint=f"run `chmod go-w {shlex.quote(str(path))}`",
            )
        try:
            return handle.read()
        except OSError as exc:
            raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from None


def _check_private_mode(path: Path, mode: int) -> None:
    if _POSIX and mode & 0o077:
        raise SigningKeyError(
            f"the signing key {path} is {_access_text(mode & 0o077)} (mode {mode:04o}); "
            "a private key must be accessible to you alone",
            hint=f"run `chmod 600 {shlex.quote(str(path))}`",
        )


def _check_owner(path: Path, st: os.stat_result) -> None:
    if not _POSIX:
        return
    user = os.geteuid()
    if st.st_uid != user:
        raise SigningKeyError(
            f"{path} belongs to user id {st.st_uid}, not to you (user id {user}); "
            "a signing key must be your own",
            hint=f"if it really is yours, run `sudo chown {user} {shlex.quote(str(path))}`",
        )


def _symlink_error(path: Path, what: str) -> SigningKeyError:
    return SigningKeyError(
        f"{what} {path} is a symbolic link; key files must be real files in the key folder",
        hint=f"replace the link by the file it points to, {os.path.realpath(path)}",
    )
