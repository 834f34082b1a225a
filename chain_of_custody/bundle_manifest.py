"""The signed manifest of an export bundle: what was handed over, to whom, and when.

``bundle-manifest.json`` (canonical JSON, docs/FORMAT.md section 13) lists every file of
the bundle but itself, its signature and the root ``SHA256SUMS``, with size and SHA-256;
it names the recipient, the reason, the items released and the case's custody head (the
sequence number and hash of the bundle's own ``exported`` entry). The exporting
operator's key signs it into ``bundle-manifest.json.sig`` (DER ECDSA P-384 / SHA-256, as
``openssl dgst -sha256 -verify`` checks). ``SHA256SUMS`` is for ``sha256sum -c``; this is
the signed list, so a member added, removed or changed is found even when whoever did it
also rewrote ``SHA256SUMS``.

:func:`build_bundle_manifest` makes one (called by :mod:`cases.export`);
:func:`check_bundle_manifest` judges one in an extracted bundle (called by
:func:`chain_of_custody.bundle.verify_bundle`). Standard library and ``cryptography`` only.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.canonical import canonical_json, parse_canonical
from chain_of_custody.custody import (
    CUSTODY_LOG_NAME,
    HEAD_NAME,
    line_sha256,
    parse_line,
    split_log,
)
from chain_of_custody.errors import CustodyLogDamaged
from chain_of_custody.hashing import sha256_file
from chain_of_custody.item import ITEMS_DIR_NAME, SUMS_NAME, check_relpath
from chain_of_custody.regular import read_regular_file
from chain_of_custody.signing import (
    Signer,
    fingerprint_of,
    load_public_key,
    verify_signature,
)
from chain_of_custody.timeutil import parse_utc

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_MANIFEST_NAME",
    "BUNDLE_SIGNATURE_NAME",
    "CERTIFICATION_NAME",
    "EXPORT_ONLY_NAMES",
    "KEYS_DIR_NAME",
    "REPORT_HTML_NAME",
    "REPORT_PDF_NAME",
    "UNLISTED_BUNDLE_NAMES",
    "VERIFY_NAME",
    "BundleFile",
    "ManifestCheck",
    "build_bundle_manifest",
    "check_bundle_manifest",
    "exported_details",
]

BUNDLE_FORMAT = "osint-capture/bundle/1"
BUNDLE_MANIFEST_NAME = "bundle-manifest.json"
BUNDLE_SIGNATURE_NAME = "bundle-manifest.json.sig"
KEYS_DIR_NAME = "keys"
REPORT_HTML_NAME = "report.html"
REPORT_PDF_NAME = "report.pdf"
CERTIFICATION_NAME = "certification-fre-902.txt"
VERIFY_NAME = "VERIFY.txt"
# The three files the manifest cannot list: itself, its signature, and the sums over both.
UNLISTED_BUNDLE_NAMES = frozenset({BUNDLE_MANIFEST_NAME, BUNDLE_SIGNATURE_NAME, SUMS_NAME})
# Only an export writes these: a bundle holding any of them must carry its manifest.
EXPORT_ONLY_NAMES = frozenset(
    {BUNDLE_SIGNATURE_NAME, REPORT_HTML_NAME, REPORT_PDF_NAME, CERTIFICATION_NAME, VERIFY_NAME}
)
_ALGORITHM = "ECDSA-P384-SHA256"
_TOP_KEYS = frozenset(
    {
        "bundle_format",
        "case_id",
        "created",
        "bundle",
        "recipient",
        "reason",
        "operator",
        "items",
        "custody_head",
        "files",
        "signer",
    }
)
_HEAD_KEYS = frozenset({"seq", "head_sha256"})
_FILE_KEYS = frozenset({"path", "size", "sha256", "media_type"})
_SIGNER_KEYS = frozenset({"operator", "fingerprint", "public_key", "algorithm"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_MANIFEST = 64 << 20
_MAX_SIGNATURE = 1 << 12


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle as its manifest lists it."""

    path: str
    size: int
    sha256: str
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "media_type": self.media_type,
        }


def exported_details(
    *, recipient: str, reason: str | None, items: Sequence[str], bundle: str
) -> dict[str, Any]:
    """The details of an ``exported`` custody entry (FORMAT.md section 10)."""
    return {"recipient": recipient, "reason": reason, "items": list(items), "bundle": bundle}


def build_bundle_manifest(
    *,
    case_id: str,
    created: str,
    bundle: str,
    recipient: str,
    reason: str | None,
    items: Sequence[str],
    head_seq: int,
    head_sha256: str,
    files: Sequence[BundleFile],
    signer: Signer,
) -> bytes:
    """The canonical bytes of a bundle manifest; sign exactly these bytes."""
    parse_utc(created)
    listed = sorted(files, key=lambda f: f.path)
    for entry in listed:
        check_relpath(entry.path)
        if entry.path in UNLISTED_BUNDLE_NAMES:
            raise ValueError(f"{entry.path} cannot be listed in the bundle manifest")
    document = {
        "bundle_format": BUNDLE_FORMAT,
        "case_id": case_id,
        "created": created,
        "bundle": bundle,
        "recipient": recipient,
        "reason": reason,
        "operator": signer.operator,
        "items": list(items),
        "custody_head": {"seq": head_seq, "head_sha256": head_sha256},
        "files": [entry.to_dict() for entry in listed],
        "signer": {
            "operator": signer.operator,
            "fingerprint": signer.fingerprint,
            "public_key": signer.public_key_pem,
            "algorithm": _ALGORITHM,
        },
    }
    return canonical_json(document)


@dataclass(frozen=True)
class ManifestCheck:
    """What :func:`check_bundle_manifest` found.

    ``present`` is False for a bundle without a manifest that holds nothing only an
    export writes (a case folder zipped by hand): nothing to check, no problem. The
    recorded custody head (``head_seq``, ``head_sha256``) is what
    ``osint-capture verify CASE --against BUNDLE`` holds the home's log to.
    """

    present: bool
    problems: tuple[str, ...]
    files: int = 0
    signer: str | None = None
    recipient: str | None = None
    items: tuple[str, ...] = ()
    head_seq: int | None = None
    head_sha256: str | None = None
    case_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "ok": self.ok,
            "problems": list(self.problems),
            "files": self.files,
            "signer": self.signer,
            "recipient": self.recipient,
            "items": list(self.items),
            "custody_head": None
            if self.head_seq is None
            else {"seq": self.head_seq, "head_sha256": self.head_sha256},
            "case_id": self.case_id,
        }


def check_bundle_manifest(
    root: Path,
    members: Collection[str],
    *,
    trusted: frozenset[str] | None = None,
    digests: Mapping[str, str] | None = None,
) -> ManifestCheck:
    """Judge the bundle manifest of the bundle extracted at ``root``; never raises for
    bad content.

    ``members``: the bundle's file members ('/'-separated); ``digests``: SHA-256 already
    computed for some of them (the root ``SHA256SUMS`` check), so no file is hashed twice.
    Checks: canonical JSON of exactly the documented fields; the signature verifies with
    the embedded key, whose fingerprint is the one named (and trusted, when ``trusted``
    is given) and whose file ``keys/<fingerprint>.pem`` holds that key; every member but
    the three unlisted ones is listed, and every listed file is a member of that size
    and SHA-256; the items are the bundle's ``items/`` folders; the custody head recorded
    is the bundle's ``custody.head`` and names the log's ``exported`` entry for this
    bundle (same recipient, reason, items, bundle name, and signed by the same key).
    Every ``keys/*.pem`` must hold the key its name is the fingerprint of.
    """
    names = set(members)
    key_problems = _key_file_problems(root, names)
    if BUNDLE_MANIFEST_NAME not in names:
        made_by_export = sorted(
            n for n in names if n in EXPORT_ONLY_NAMES or n.startswith(KEYS_DIR_NAME + "/")
        )
        if not made_by_export:
            return ManifestCheck(present=False, problems=tuple(key_problems))
        return ManifestCheck(
            present=True,
            problems=(
                f"{BUNDLE_MANIFEST_NAME} is missing, yet the bundle holds {made_by_export[0]}, "
                "which only an export writes (the signed list of the bundle is gone)",
                *key_problems,
            ),
        )
    problems: list[str] = []
    try:
        data = read_regular_file(root / BUNDLE_MANIFEST_NAME)
        if len(data) > _MAX_MANIFEST:
            raise ValueError(f"it is larger than {_MAX_MANIFEST} bytes")
        document = parse_canonical(data)
        _check_shape(document)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ManifestCheck(
            present=True,
            problems=(f"{BUNDLE_MANIFEST_NAME} is not a valid bundle manifest: {why}",),
        )
    signer = document["signer"]
    fingerprint = signer["fingerprint"]
    problems.extend(_signature_problems(root, names, data, signer, trusted))
    listed, file_problems = _file_problems(root, names, document["files"], digests or {})
    problems.extend(file_problems)
    items = tuple(document["items"])
    present_items = sorted(
        {n.split("/")[1] for n in names if n.startswith(ITEMS_DIR_NAME + "/") and n.count("/") >= 2}
    )
    if sorted(items) != present_items:
        problems.append(
            f"{BUNDLE_MANIFEST_NAME} lists items {', '.join(items) or 'none'}, but the bundle's "
            f"{ITEMS_DIR_NAME}/ holds {', '.join(present_items) or 'none'}"
        )
    if SUMS_NAME not in names:
        # Not signed, yet promised: VERIFY.txt tells a reader to run sha256sum -c on it.
        problems.append(f"{SUMS_NAME} is missing from the bundle's root")
    head = document["custody_head"]
    problems.extend(_head_problems(root, names, document, fingerprint))
    problems.extend(key_problems)
    return ManifestCheck(
        present=True,
        problems=tuple(problems),
        files=listed,
        signer=fingerprint,
        recipient=document["recipient"],
        items=items,
        head_seq=head["seq"],
        head_sha256=head["head_sha256"],
        case_id=document["case_id"],
    )


def _check_shape(document: Any) -> None:
    """ValueError unless ``document`` has exactly the fields of FORMAT.md section 13."""
    if not isinstance(document, dict):
        raise ValueError("it is not a JSON object")
    keys = set(document)
    if keys != _TOP_KEYS:
        extra, missing = sorted(keys - _TOP_KEYS), sorted(_TOP_KEYS - keys)
        raise ValueError(
            "its fields are not the documented ones"
            + (f"; unknown: {', '.join(extra)}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    if document["bundle_format"] != BUNDLE_FORMAT:
        raise ValueError(f"bundle_format is {document['bundle_format']!r}, not {BUNDLE_FORMAT!r}")
    parse_utc(document["created"])
    for name in ("case_id", "bundle", "recipient", "operator"):
        if not isinstance(document[name], str) or not document[name]:
            raise ValueError(f"{name} must be a non-empty string")
    if document["reason"] is not None and not isinstance(document["reason"], str):
        raise ValueError("reason must be a string or null")
    items = document["items"]
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise ValueError("items must be a list of item IDs")
    head = document["custody_head"]
    if not isinstance(head, dict) or set(head) != _HEAD_KEYS:
        raise ValueError("custody_head must hold exactly seq and head_sha256")
    seq = head["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("custody_head.seq must be a positive integer")
    if not isinstance(head["head_sha256"], str) or not _SHA256_HEX.fullmatch(head["head_sha256"]):
        raise ValueError("custody_head.head_sha256 must be 64 lowercase hex digits")
    files = document["files"]
    if not isinstance(files, list):
        raise ValueError("files must be a list")
    paths = []
    for entry in files:
        if not isinstance(entry, dict) or set(entry) != _FILE_KEYS:
            raise ValueError("each entry of files must hold exactly path, size, sha256, media_type")
        check_relpath(entry["path"])
        size = entry["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{entry['path']}: size must be a non-negative integer")
        if not isinstance(entry["sha256"], str) or not _SHA256_HEX.fullmatch(entry["sha256"]):
            raise ValueError(f"{entry['path']}: sha256 must be 64 lowercase hex digits")
        if not isinstance(entry["media_type"], str):
            raise ValueError(f"{entry['path']}: media_type must be a string")
        paths.append(entry["path"])
    if paths != sorted(set(paths)):
        raise ValueError("files must be sorted by path, each listed once")
    signer = document["signer"]
    if not isinstance(signer, dict) or set(signer) != _SIGNER_KEYS:
        raise ValueError("signer must hold exactly operator, fingerprint, public_key, algorithm")
    if signer["algorithm"] != _ALGORITHM:
        raise ValueError(f"signer.algorithm is {signer['algorithm']!r}, not {_ALGORITHM!r}")
    if not all(isinstance(signer[k], str) for k in _SIGNER_KEYS):
        raise ValueError("the signer's fields must be strings")


def _signature_problems(
    root: Path,
    names: set[str],
    data: bytes,
    signer: Mapping[str, str],
    trusted: frozenset[str] | None,
) -> list[str]:
    problems: list[str] = []
    pem = signer["public_key"]
    try:
        actual = fingerprint_of(load_public_key(pem))
    except ValueError:
        return [f"{BUNDLE_MANIFEST_NAME}: its signer's public key is not a P-384 public key"]
    if actual != signer["fingerprint"]:
        problems.append(
            f"{BUNDLE_MANIFEST_NAME} names fingerprint {signer['fingerprint']}, but its key's "
            f"is {actual}"
        )
    elif trusted is not None and actual not in trusted:
        problems.append(
            f"{BUNDLE_MANIFEST_NAME} is signed by key {actual}, which is not among the trusted keys"
        )
    if BUNDLE_SIGNATURE_NAME not in names:
        problems.append(f"{BUNDLE_SIGNATURE_NAME} is missing: the bundle manifest is unsigned")
    else:
        try:
            signature = read_regular_file(root / BUNDLE_SIGNATURE_NAME)
        except OSError as exc:
            problems.append(f"cannot read {BUNDLE_SIGNATURE_NAME}: {exc.strerror or exc}")
        else:
            if len(signature) > _MAX_SIGNATURE or not verify_signature(pem, data, signature):
                problems.append(
                    f"{BUNDLE_SIGNATURE_NAME} does not verify over {BUNDLE_MANIFEST_NAME} with "
                    "the key it names (one of the two was changed)"
                )
    key_file = f"{KEYS_DIR_NAME}/{actual}.pem"
    if key_file not in names:
        problems.append(f"{key_file}, the key of the bundle manifest's signer, is missing")
    return problems


def _file_problems(
    root: Path, names: set[str], files: list[dict[str, Any]], digests: Mapping[str, str]
) -> tuple[int, list[str]]:
    problems: list[str] = []
    listed = {entry["path"]: entry for entry in files}
    for path, entry in listed.items():
        if path in UNLISTED_BUNDLE_NAMES:
            problems.append(f"{BUNDLE_MANIFEST_NAME} lists {path}, which it cannot list")
            continue
        if path not in names:
            problems.append(f"{path} is listed in {BUNDLE_MANIFEST_NAME} but not in the bundle")
            continue
        full = root.joinpath(*path.split("/"))
        size = full.stat().st_size
        if size != entry["size"]:
            problems.append(f"{path} is {size} bytes, {BUNDLE_MANIFEST_NAME} lists {entry['size']}")
            continue
        digest = digests.get(path) or sha256_file(full)[0]
        if digest != entry["sha256"]:
            problems.append(
                f"{path} has SHA-256 {digest}, {BUNDLE_MANIFEST_NAME} lists {entry['sha256']}"
            )
    for name in sorted(names - set(listed) - UNLISTED_BUNDLE_NAMES):
        problems.append(f"{name} is in the bundle but not listed in {BUNDLE_MANIFEST_NAME}")
    return len(listed), problems


def _head_problems(
    root: Path, names: set[str], document: Mapping[str, Any], fingerprint: str
) -> list[str]:
    """The recorded head is the bundle's own head, and names its ``exported`` entry."""
    head = document["custody_head"]
    seq, head_sha = head["seq"], head["head_sha256"]
    where = f"{BUNDLE_MANIFEST_NAME} records custody head {seq}"
    if CUSTODY_LOG_NAME not in names or HEAD_NAME not in names:
        return [f"{where}, but the bundle has no {CUSTODY_LOG_NAME} and {HEAD_NAME}"]
    try:
        log = read_regular_file(root / CUSTODY_LOG_NAME)
        head_record = parse_canonical(read_regular_file(root / HEAD_NAME).removesuffix(b"\n"))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return [f"{where}, but the bundle's custody files cannot be read: {why}"]
    problems: list[str] = []
    if not isinstance(head_record, dict) or (
        head_record.get("seq"),
        head_record.get("head_sha256"),
    ) != (seq, head_sha):
        problems.append(
            f"{where} ({head_sha}), but the bundle's {HEAD_NAME} records a different head"
        )
    lines, _ = split_log(log)
    if seq > len(lines):
        return [*problems, f"{where}, but the bundle's {CUSTODY_LOG_NAME} has {len(lines)} entries"]
    line = lines[seq - 1]
    if line_sha256(line) != head_sha:
        return [*problems, f"{where}, but entry {seq} of {CUSTODY_LOG_NAME} is another entry"]
    try:
        entry = parse_line(line)
    except CustodyLogDamaged:
        return problems  # the case's checks report the damaged line
    expected = exported_details(
        recipient=document["recipient"],
        reason=document["reason"],
        items=document["items"],
        bundle=document["bundle"],
    )
    if entry["action"] != "exported" or entry["details"] != expected:
        problems.append(
            f"entry {seq} of {CUSTODY_LOG_NAME} is not the 'exported' entry of this bundle "
            f"(recipient, reason, items and bundle name as {BUNDLE_MANIFEST_NAME} states them)"
        )
    if entry["case_id"] != document["case_id"]:
        problems.append(
            f"{BUNDLE_MANIFEST_NAME} names case {document['case_id']!r}, the custody log "
            f"{entry['case_id']!r}"
        )
    if entry["signer"]["fingerprint"] != fingerprint:
        problems.append(
            f"{BUNDLE_MANIFEST_NAME} is signed by key {fingerprint}, but the 'exported' entry "
            f"by {entry['signer']['fingerprint']}"
        )
    return problems


def _key_file_problems(root: Path, names: set[str]) -> list[str]:
    problems = []
    for name in sorted(n for n in names if n.startswith(KEYS_DIR_NAME + "/")):
        stem = name[len(KEYS_DIR_NAME) + 1 :]
        if "/" in stem or not stem.endswith(".pem"):
            problems.append(f"{name} is not a key file (keys/<fingerprint>.pem)")
            continue
        try:
            actual = fingerprint_of(load_public_key(read_regular_file(root / KEYS_DIR_NAME / stem)))
        except (OSError, ValueError, binascii.Error):
            problems.append(f"{name} does not hold a P-384 public key")
            continue
        if actual != stem.removesuffix(".pem"):
            problems.append(f"{name} holds the key with fingerprint {actual}, not its name's")
    return problems
