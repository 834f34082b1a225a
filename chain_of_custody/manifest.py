"""The signed manifest of one captured item: what files it holds, their hashes, who signed.

``manifest.json`` is canonical JSON (see :mod:`chain_of_custody.canonical`);
``manifest.json.sig`` is the DER ECDSA signature over exactly those bytes.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.canonical import canonical_json, parse_canonical
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.hashing import sha256_file
from chain_of_custody.signing import ALGORITHM, Signer, load_public_key
from chain_of_custody.timeutil import parse_utc, utc_now

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "RESERVED_NAMES",
    "SIGNATURE_NAME",
    "STATUSES",
    "SUMS_NAME",
    "FileEntry",
    "build_manifest",
    "check_relpath",
    "load_manifest",
    "manifest_files",
    "write_signed_manifest",
]

MANIFEST_FORMAT = "osint-capture/manifest/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"
SUMS_NAME = "SHA256SUMS"
STATUSES = ("complete", "partial")
# Top-level names only: a captured page may well have its own assets/manifest.json.
RESERVED_NAMES = frozenset({MANIFEST_NAME, SIGNATURE_NAME})

_TOP_KEYS = frozenset(
    {
        "manifest_format",
        "item_id",
        "case_id",
        "status",
        "created",
        "provenance",
        "files",
        "signer",
    }
)
_FILE_KEYS = frozenset({"path", "size", "sha256", "media_type"})
_SIGNER_KEYS = frozenset({"operator", "fingerprint", "public_key", "algorithm"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


def check_relpath(path: str) -> str:
    """``path`` if it is a safe relative POSIX path inside an item; ValueError otherwise.

    Refused: empty, absolute, backslashes, ``.``/``..``/empty segments, control characters.
    Such paths could point outside the item or mean different files on different systems.
    """
    if not path:
        raise ValueError("empty file path")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ValueError(f"file path contains a control character: {path!r}")
    if "\\" in path:
        raise ValueError(f"file path contains a backslash: {path!r}")
    if path.startswith("/"):
        raise ValueError(f"file path is absolute: {path!r}")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"file path has an empty, '.' or '..' segment: {path!r}")
    return path


@dataclass(frozen=True)
class FileEntry:
    """One file of an item, as the manifest records it."""

    path: str
    size: int
    sha256: str
    media_type: str

    def __post_init__(self) -> None:
        check_relpath(self.path)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"{self.path}: size must be a non-negative integer")
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"{self.path}: sha256 must be 64 lowercase hex digits")
        if not isinstance(self.media_type, str) or not self.media_type:
            raise ValueError(f"{self.path}: media_type must be a non-empty string")

    @classmethod
    def from_file(cls, item_dir: Path, relpath: str, media_type: str) -> FileEntry:
        """Hash ``item_dir/relpath`` (streamed) into an entry.

        Raises UsageError if the path is unsafe or not a regular file (a symbolic link
        would make the item depend on something outside it).
        """
        try:
            check_relpath(relpath)
        except ValueError as exc:
            raise UsageError(f"cannot list {relpath!r} in a manifest: {exc}") from None
        full = item_dir.joinpath(*relpath.split("/"))
        try:
            mode = full.lstat().st_mode
        except OSError as exc:
            raise UsageError(f"cannot read {full}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise UsageError(f"{full} is not a regular file; only regular files can be listed")
        digest, size = sha256_file(full)
        return cls(path=relpath, size=size, sha256=digest, media_type=media_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "media_type": self.media_type,
        }


def _check_file_list(files: Sequence[FileEntry]) -> list[FileEntry]:
    seen: dict[str, str] = {}
    for entry in files:
        if entry.path in RESERVED_NAMES:
            raise ValueError(f"{entry.path} cannot be listed in its own manifest")
        # Case-insensitive file systems (exFAT/NTFS evidence drives, macOS) would merge these.
        folded = entry.path.casefold()
        if folded in seen:
            raise ValueError(
                f"file listed twice (or differing only in letter case): "
                f"{seen[folded]!r} and {entry.path!r}"
            )
        seen[folded] = entry.path
    return sorted(files, key=lambda e: e.path)


def build_manifest(
    *,
    item_id: str,
    case_id: str,
    status: str,
    provenance: Mapping[str, Any],
    files: Sequence[FileEntry],
    signer: Signer,
    created: str | None = None,
) -> bytes:
    """The canonical bytes of a manifest; sign exactly these bytes (see write_signed_manifest).

    Raises ValueError for an unknown status, a bad timestamp, duplicate or reserved paths,
    and TypeError/ValueError for provenance that is not canonical-JSON data (floats …).
    """
    if not item_id or not isinstance(item_id, str):
        raise ValueError("item_id must be a non-empty string")
    if not case_id or not isinstance(case_id, str):
        raise ValueError("case_id must be a non-empty string")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    created = utc_now() if created is None else created
    parse_utc(created)
    document = {
        "manifest_format": MANIFEST_FORMAT,
        "item_id": item_id,
        "case_id": case_id,
        "status": status,
        "created": created,
        "provenance": dict(provenance),
        "files": [entry.to_dict() for entry in _check_file_list(files)],
        "signer": {
            "operator": signer.operator,
            "fingerprint": signer.fingerprint,
            "public_key": signer.public_key_pem,
            "algorithm": ALGORITHM,
        },
    }
    return canonical_json(document)


def load_manifest(data: bytes) -> dict[str, Any]:
    """Parse and check manifest bytes; IntegrityError says what is wrong.

    Checks the form only: canonical JSON, fields and types, a sorted file list of safe
    paths, a parseable P-384 public key. Whether the fingerprint is that key's, and the
    signature, are checked separately (verify steps 2 and 3).
    """
    try:
        document = parse_canonical(data)
    except ValueError as exc:
        raise IntegrityError(f"manifest.json is not canonical JSON: {exc}") from None
    try:
        _check_document(document)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"manifest.json is malformed: {exc}") from None
    result: dict[str, Any] = document
    return result


def _check_document(document: object) -> None:
    if not isinstance(document, dict):
        raise ValueError("the top level is not an object")
    missing = _TOP_KEYS - document.keys()
    if missing:
        raise ValueError(f"missing field(s): {', '.join(sorted(missing))}")
    extra = document.keys() - _TOP_KEYS
    if extra:
        raise ValueError(f"unknown field(s): {', '.join(sorted(extra))}")
    if document["manifest_format"] != MANIFEST_FORMAT:
        raise ValueError(
            f"manifest_format is {document['manifest_format']!r}, not {MANIFEST_FORMAT}"
        )
    for name in ("item_id", "case_id"):
        if not isinstance(document[name], str) or not document[name]:
            raise ValueError(f"{name} must be a non-empty string")
    if document["status"] not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if not isinstance(document["created"], str):
        raise ValueError("created must be a timestamp string")
    parse_utc(document["created"])
    if not isinstance(document["provenance"], dict):
        raise ValueError("provenance must be an object")
    _entries_of(document)
    signer = document["signer"]
    if not isinstance(signer, dict) or signer.keys() != _SIGNER_KEYS:
        raise ValueError(f"signer must have exactly the fields {', '.join(sorted(_SIGNER_KEYS))}")
    if signer["algorithm"] != ALGORITHM:
        raise ValueError(f"signer.algorithm is {signer['algorithm']!r}, not {ALGORITHM}")
    if not isinstance(signer["operator"], str) or not signer["operator"]:
        raise ValueError("signer.operator must be a non-empty string")
    if not isinstance(signer["public_key"], str) or not isinstance(signer["fingerprint"], str):
        raise ValueError("signer.public_key and signer.fingerprint must be strings")
    load_public_key(signer["public_key"])


def _entries_of(document: Mapping[str, Any]) -> tuple[FileEntry, ...]:
    raw = document["files"]
    if not isinstance(raw, list):
        raise ValueError("files must be a list")
    entries = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or item.keys() != _FILE_KEYS:
            raise ValueError(
                f"files[{index}] must have exactly the fields {', '.join(sorted(_FILE_KEYS))}"
            )
        entries.append(FileEntry(**item))
    # Sorted order is part of the format, so a reordered list is not the document we wrote.
    if _check_file_list(entries) != entries:
        raise ValueError("files are not sorted by path")
    return tuple(entries)


def manifest_files(document: Mapping[str, Any]) -> tuple[FileEntry, ...]:
    """The file entries of a manifest returned by :func:`load_manifest`."""
    try:
        return _entries_of(document)
    except (ValueError, TypeError, KeyError) as exc:
        raise IntegrityError(f"manifest.json has a malformed file list: {exc}") from None


def write_signed_manifest(item_dir: Path, manifest: bytes, signer: Signer) -> tuple[Path, Path]:
    """Sign ``manifest`` and publish manifest.json and manifest.json.sig in ``item_dir``.

    Each file appears complete or not at all, and never replaces an existing one: a
    manifest, once written, is evidence. Raises UsageError if either already exists,
    ValueError if ``manifest`` was not built for this signer.
    """
    document = load_manifest(manifest)
    if document["signer"]["fingerprint"] != signer.fingerprint:
        raise ValueError("the manifest names a different signer than the one signing it")
    manifest_path = item_dir / MANIFEST_NAME
    signature_path = item_dir / SIGNATURE_NAME
    for path in (manifest_path, signature_path):
        if os.path.lexists(path):
            raise UsageError(f"{path} already exists; a manifest is never rewritten")
    _create_exclusive(manifest_path, manifest)
    _create_exclusive(signature_path, signer.sign(manifest))
    return manifest_path, signature_path


def _create_exclusive(path: Path, data: bytes) -> None:
    temp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(8)}-{path.name}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link(), unlike rename(), fails if the destination exists: no silent replacement.
        try:
            os.link(temp, path)
        except FileExistsError:
            raise UsageError(f"{path} already exists; a manifest is never rewritten") from None
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # exFAT/FAT evidence drives have no hard links; check-then-rename is the best left.
            if os.path.lexists(path):
                raise UsageError(f"{path} already exists; a manifest is never rewritten") from None
            os.rename(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
