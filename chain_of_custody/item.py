"""One captured item: its layout on disk, its signed manifest, and sealing it.

An item is a folder ``<case>/items/<ITEM_ID>/``. This module is the one place that knows
what it holds (:data:`ITEM_FILES`: every file name and media type), what
``manifest.json`` is (canonical JSON, see :mod:`chain_of_custody.canonical`, signed into
``manifest.json.sig``, a DER ECDSA signature over exactly those bytes), and how an item
is sealed (:func:`seal_item`):

1. every file is flushed to disk (fsync) and only then hashed, so nothing is signed
   before it is durable;
2. ``manifest.json`` is built from the hashes and the provenance;
3. it is signed into ``manifest.json.sig``; neither file ever replaces an existing one;
4. ``SHA256SUMS`` lists every file, the manifest and its signature, for ``sha256sum -c``.

:mod:`chain_of_custody.verify` checks all of this back, step by step.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.canonical import canonical_json, parse_canonical
from chain_of_custody.durable import atomic_create_bytes, fsync_file, write_file
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.hashing import sha256_bytes, sha256_file
from chain_of_custody.signing import ALGORITHM, Signer, load_public_key
from chain_of_custody.timeutil import parse_utc, utc_now

__all__ = [
    "CASE_RECORD_NAME",
    "CUSTODY_LOG_NAME",
    "DOM_NAME",
    "ITEMS_DIR_NAME",
    "ITEM_FILES",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "PDF_NAME",
    "RENDERINGS",
    "RESERVED_NAMES",
    "ROBOTS_NAME",
    "SCREENSHOT_NAME",
    "SIGNATURE_NAME",
    "STAMP_NAME",
    "STATUSES",
    "SUMS_NAME",
    "TEXT_NAME",
    "TLS_CHAIN_NAME",
    "UNLISTED_NAMES",
    "WARC_NAME",
    "FileEntry",
    "SealedItem",
    "build_manifest",
    "check_relpath",
    "hash_item_files",
    "load_manifest",
    "manifest_files",
    "media_type_of",
    "seal_item",
    "write_signed_manifest",
    "write_sums",
]

# -- layout ---------------------------------------------------------------------------

WARC_NAME = "archive.warc.gz"
SCREENSHOT_NAME = "screenshot.png"
PDF_NAME = "page.pdf"
DOM_NAME = "dom.html"
TEXT_NAME = "text.txt"
ROBOTS_NAME = "robots.txt"
TLS_CHAIN_NAME = "tls-chain.pem"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"
SUMS_NAME = "SHA256SUMS"

# Every file an item can list, with the media type its manifest entry records.
ITEM_FILES: Mapping[str, str] = {
    WARC_NAME: "application/warc",
    SCREENSHOT_NAME: "image/png",
    PDF_NAME: "application/pdf",
    DOM_NAME: "text/html; charset=utf-8",
    TEXT_NAME: "text/plain; charset=utf-8",
    ROBOTS_NAME: "text/plain; charset=utf-8",
    TLS_CHAIN_NAME: "application/x-pem-file",
}
# The renderings of the page: (capture step, file name, WARC record type).
RENDERINGS: tuple[tuple[str, str, str], ...] = (
    ("screenshot", SCREENSHOT_NAME, "resource"),
    ("pdf", PDF_NAME, "resource"),
    ("dom", DOM_NAME, "conversion"),
    ("text", TEXT_NAME, "conversion"),
)
# Top-level names only: a captured page may well have its own assets/manifest.json.
RESERVED_NAMES = frozenset({MANIFEST_NAME, SIGNATURE_NAME})
# The RFC 3161 stamp of the signature (chain_of_custody.timestamp), made after it.
STAMP_NAME = SIGNATURE_NAME + ".tsr"
# Not listed in the manifest by construction: the manifest and its signature cannot list
# themselves, SHA256SUMS (for `sha256sum -c`) is written after, covering the manifest, and
# the timestamp stamps the signature, so it comes later still (SHA256SUMS lists it).
UNLISTED_NAMES = frozenset({MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME, STAMP_NAME})
# Where an item sits: <case>/items/<ITEM_ID>, beside <case>/case.json.
ITEMS_DIR_NAME = "items"
CASE_RECORD_NAME = "case.json"
# The case's custody log (chain_of_custody.custody reads and checks it).
CUSTODY_LOG_NAME = "custody.jsonl"

MANIFEST_FORMAT = "osint-capture/manifest/1"
STATUSES = ("complete", "partial")
_DEFAULT_MEDIA_TYPE = "application/octet-stream"


def media_type_of(relpath: str) -> str:
    """The media type an item file is listed with."""
    return ITEM_FILES.get(relpath, _DEFAULT_MEDIA_TYPE)


# -- the manifest document ----------------------------------------------------------------

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


# -- sealing --------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedItem:
    """What :func:`seal_item` wrote: the files listed, and the signed manifest."""

    files: tuple[FileEntry, ...]
    manifest_sha256: str
    manifest_path: Path
    signature_path: Path


def hash_item_files(item_dir: Path) -> tuple[FileEntry, ...]:
    """Every regular file of the item, fsynced, then hashed (the manifest's file list).

    The manifest, its signature and SHA256SUMS are not among them: they describe the rest.
    """
    entries = []
    for path in sorted(p for p in item_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(item_dir).as_posix()
        if rel in UNLISTED_NAMES:
            continue
        fsync_file(path)
        entries.append(FileEntry.from_file(item_dir, rel, media_type_of(rel)))
    return tuple(entries)


def seal_item(
    item_dir: Path,
    *,
    item_id: str,
    case_id: str,
    status: str,
    provenance: Mapping[str, Any],
    signer: Signer,
) -> SealedItem:
    """Seal a staged item: flush and hash its files, sign the manifest, write SHA256SUMS.

    The steps are those of the module docstring. Raises UsageError if the item already
    has a manifest (a manifest, once written, is evidence), ValueError/TypeError for a
    malformed status or provenance.
    """
    files = hash_item_files(item_dir)
    manifest = build_manifest(
        item_id=item_id,
        case_id=case_id,
        status=status,
        provenance=provenance,
        files=files,
        signer=signer,
    )
    manifest_path, signature_path = write_signed_manifest(item_dir, manifest, signer)
    manifest_sha256 = sha256_bytes(manifest)
    write_sums(item_dir, files, manifest_sha256)
    return SealedItem(files, manifest_sha256, manifest_path, signature_path)


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
    for path, data in ((manifest_path, manifest), (signature_path, signer.sign(manifest))):
        try:
            atomic_create_bytes(path, data)
        except FileExistsError:
            raise UsageError(f"{path} already exists; a manifest is never rewritten") from None
    return manifest_path, signature_path


def write_sums(item_dir: Path, files: Sequence[FileEntry], manifest_sha256: str) -> Path:
    """``SHA256SUMS``: ``sha256sum -c SHA256SUMS`` inside the item checks every file."""
    signature_sha256, _ = sha256_file(item_dir / SIGNATURE_NAME)
    lines = [(entry.path, entry.sha256) for entry in files]
    lines += [(MANIFEST_NAME, manifest_sha256), (SIGNATURE_NAME, signature_sha256)]
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(lines))
    path = item_dir / SUMS_NAME
    write_file(path, text.encode("utf-8"))
    return path
