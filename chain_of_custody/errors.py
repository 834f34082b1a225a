"""The error hierarchy shared by every package.

The library never prints or exits. Each error carries a one-line user-facing
message, an optional hint, and the exit code the command-line front end maps it to:

    0 done · 1 integrity failure · 2 usage error · 3 refused by the lawful-access rules
    4 capture failed
"""

from __future__ import annotations

import errno

__all__ = [
    "EXIT_CAPTURE_FAILED",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "BrowserCrashed",
    "CaptureFailed",
    "CustodyLogDamaged",
    "IntegrityError",
    "NoSigningKey",
    "OsintCaptureError",
    "Refused",
    "SigningKeyError",
    "StorageError",
    "TimestampFailed",
    "UsageError",
    "storage_error",
]

EXIT_OK = 0
EXIT_INTEGRITY = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_CAPTURE_FAILED = 4


class OsintCaptureError(Exception):
    """Base of every error a command reports to its user."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The single stderr line: message, then the hint if there is one."""
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text} ({self.hint.replace(chr(10), ' ').strip()})"
        return text


class UsageError(OsintCaptureError):
    """Bad input: unknown case, malformed option, missing key …"""

    exit_code = EXIT_USAGE


class SigningKeyError(UsageError):
    """The signing key is missing, unreadable, or the passphrase is wrong."""


class NoSigningKey(SigningKeyError):
    """There is no signing key, or no passphrase for it: nothing can be signed, though
    whatever needs no signature (an examination that is then not logged) still can."""


class IntegrityError(OsintCaptureError):
    """Something that was captured no longer matches what was recorded."""

    exit_code = EXIT_INTEGRITY


class CustodyLogDamaged(IntegrityError):
    """The custody log has a torn or broken line; appending would chain onto damage."""


class Refused(OsintCaptureError):
    """The lawful public-access rules forbid this capture."""

    exit_code = EXIT_REFUSED


class CaptureFailed(OsintCaptureError):
    """The capture could not be made: unreachable, redirect loop, nothing loaded."""

    exit_code = EXIT_CAPTURE_FAILED


class BrowserCrashed(CaptureFailed):
    """The browser (or the page's renderer) crashed mid-capture. What it had recorded
    until then may be kept as a partial item: ``item_id`` names it, or is None."""

    def __init__(self, message: str, hint: str | None = None, item_id: str | None = None):
        super().__init__(message, hint)
        self.item_id = item_id


class TimestampFailed(OsintCaptureError):
    """No configured Time-Stamping Authority gave a valid stamp: none answered within the
    bound, or each reply was refused. Nothing was stored; the evidence is unchanged."""

    exit_code = EXIT_CAPTURE_FAILED


class StorageError(OsintCaptureError):
    """The disk refused a write or a read: full, read-only, no permission."""

    exit_code = EXIT_CAPTURE_FAILED


_STORAGE_REASONS = {
    errno.ENOSPC: "{place} is full (no space left on device)",
    errno.EDQUOT: "the disk quota of {place} is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def storage_error(
    exc: OSError, doing: str = "", *, place: str = "the disk", unchanged: str = ""
) -> StorageError:
    """``exc`` as one line a person can act on: what failed, where, and what is intact.

    ``doing`` says what was being done ("appending to the custody log"), ``place`` where
    ("the evidence home"); ``unchanged`` names what the failure left as it was.
    """
    known = _STORAGE_REASONS.get(exc.errno or -1)
    reason = known.format(place=place) if known else (exc.strerror or str(exc))
    where = f" ({exc.filename})" if exc.filename else ""
    message = f"{reason}{where}" + (f" while {doing}" if doing else "")
    if unchanged:
        message += f"; {unchanged}"
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space on the evidence home's disk and run the command again"
    elif exc.errno == errno.EROFS:
        hint = "the evidence home must be writable for this command"
    return StorageError(message, hint=hint)
