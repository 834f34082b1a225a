"""Export items as one WACZ 1.1.1 package, signed as the wacz-auth spec says.

``osint-capture export CASE_ID --format wacz --out FILE.wacz`` writes what Webrecorder's
tools (ReplayWeb.page, ArchiveWeb.page, Browsertrix, py-wacz) open and check: each item's
``archive.warc.gz`` byte for byte as ``archive/<ITEM_ID>.warc.gz``, a CDXJ index of them
all (``indexes/index.cdx``, by cdxj-indexer, the indexer py-wacz uses), one line per item
in ``pages/pages.jsonl``, ``datapackage.json`` and the signed ``datapackage-digest.json``.
Each item's signed manifest and its signature travel beside them
(``osint-capture/<ITEM_ID>.manifest.json`` and ``.sig``), so that
:func:`chain_of_custody.wacz.verify_wacz` can hold every WARC to the manifest its
operator signed at capture. Layout and bytes: docs/FORMAT.md section 15.

It is an export like the bundle (:mod:`cases.export`), and shares its order and its
helpers: everything that can be refused is refused first (options, case, items, every
item's verification), then the ``exported`` custody entry is appended (with ``format``
``wacz``), then the package is streamed into a temporary file beside ``--out``, fsynced
and published there. Should anything fail after the entry, a ``note`` says so.

:func:`write_replay_package` writes the same layout, unsigned and without custody, into a
private temporary file for ``osint-capture replay`` of a bundle.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from chain_of_custody.bundle_manifest import exported_details
from chain_of_custody.hashing import sha256_bytes, sha256_file
from chain_of_custody.item import MANIFEST_NAME, SIGNATURE_NAME, WARC_NAME
from chain_of_custody.regular import open_regular, read_regular_file
from chain_of_custody.signing import Signer
from chain_of_custody.timeutil import utc_now
from chain_of_custody.wacz import (
    DATAPACKAGE_NAME,
    DIGEST_NAME,
    EXTRA_FIELD,
    INDEX_NAME,
    PAGES_NAME,
    WACZ_FORMAT,
    WACZ_VERSION,
    manifest_member,
    raw_signature,
    signature_member,
    warc_member,
)

from .custody import append_event, check_log_writable

# The bundle export's own steps, reused so that both exports refuse, verify, log, stream
# and publish alike.
from .export import (
    ExportedItem,
    _BundleZip,
    _check_out,
    _log_incomplete,
    _Member,
    _select,
    _verified,
)
from .store import EvidenceStore

__all__ = ["PackageItem", "WaczResult", "export_wacz", "package_item", "write_replay_package"]

WACZ_SUFFIX = ".wacz"


@dataclass(frozen=True)
class PackageItem:
    """One capture to package: its WARC and the page it shows."""

    item_id: str
    warc: Path
    url: str
    title: str
    ts: str  # when the capture started (UTC): the page's time in pages.jsonl
    # The WARC's identity, SHA-256 and size, when it was verified: then it is copied
    # without being hashed a third time (the copy checks the identity is unchanged).
    identity: tuple[int, int, int, int] | None = None
    sha256: str | None = None
    size: int = 0


@dataclass(frozen=True)
class WaczResult:
    """A package written: where, what it released, and its signature's key."""

    path: Path
    case_id: str
    items: tuple[str, ...]
    recipient: str
    entry: Mapping[str, Any]
    members: int
    size: int
    datapackage_sha256: str
    fingerprint: str


def package_item(item_id: str, folder: Path, manifest: Mapping[str, Any]) -> PackageItem:
    """What the package needs of an item folder, from its manifest."""
    provenance = manifest["provenance"]
    page = provenance.get("page") if isinstance(provenance.get("page"), dict) else {}
    return PackageItem(
        item_id=item_id,
        warc=folder / WARC_NAME,
        url=str(provenance["final_url"]),
        title=str(page.get("title") or provenance["final_url"]),
        # Items made by hand (tests, tools) may lack it; the manifest is always dated.
        ts=str(provenance.get("capture_started") or manifest["created"]),
    )


def _software() -> str:
    try:
        return f"osint-capture {metadata.version('osint-capture')}"
    except metadata.PackageNotFoundError:
        return "osint-capture"


def export_wacz(
    store: EvidenceStore,
    case_id: str,
    *,
    out: Path,
    recipient: str,
    reason: str | None = None,
    items: Sequence[str] | None = None,
    force: bool = False,
    signer: Signer,
) -> WaczResult:
    """Write the signed WACZ of ``case_id`` (its ``items``, default all) to ``out``.

    Raises as :func:`cases.export.export_case` does: UsageError (exit 2) for an unknown
    case or item, an empty recipient, an ``out`` that is not a ``.wacz`` in an existing
    folder outside the home or that exists without ``force``; IntegrityError (exit 1)
    naming the item and check when a selected item does not verify, or a file changes
    while it is copied. Nothing is written at ``out`` unless the whole package is.
    """
    from chain_of_custody.errors import UsageError

    recipient = recipient.strip()
    if not recipient:
        raise UsageError("--recipient must not be empty")
    reason = (reason or "").strip() or None
    out = Path(os.path.abspath(out))
    _check_out(store, out, force, suffix=WACZ_SUFFIX)
    case = store.get_case(case_id)
    case_dir = store.case_dir(case_id)
    from .actions import case_for_capture

    case_for_capture(store, case_id)  # case.json must agree with the signed log
    selected = _select(store, case_id, items)
    check_log_writable(case_dir, case_id=case_id)
    released = tuple(_verified(store, case_id, item_id) for item_id in selected)
    details = {
        **exported_details(
            recipient=recipient, reason=reason, items=list(selected), bundle=out.name
        ),
        "format": "wacz",
    }
    entry = append_event(
        case_dir,
        case_id=case_id,
        actor=signer.operator,
        action="exported",
        item_id=None,
        details=details,
        signer=signer,
    )
    try:
        return _write_signed(out, force, signer, case_id, case.title, released, entry, reason)
    except BaseException as exc:
        _log_incomplete(store, case_id, out, exc, signer)
        raise


def _write_signed(
    out: Path,
    force: bool,
    signer: Signer,
    case_id: str,
    title: str,
    released: tuple[ExportedItem, ...],
    entry: Mapping[str, Any],
    reason: str | None,
) -> WaczResult:
    created = str(entry["time"])
    pages = []
    evidence: list[_Member] = []
    for item in released:
        base = package_item(item.item_id, item.folder, item.manifest)
        listed = item.file(WARC_NAME)
        assert listed is not None  # a verified item lists its WARC
        pages.append(
            replace(
                base,
                identity=item.identities.get(WARC_NAME),
                sha256=listed.sha256,
                size=listed.size,
            )
        )
        for name, member in (
            (MANIFEST_NAME, manifest_member(item.item_id)),
            (SIGNATURE_NAME, signature_member(item.item_id)),
        ):
            evidence.append(_data(member, read_regular_file(item.folder / name)))
    extra = {
        "format": WACZ_FORMAT,
        "case_id": case_id,
        "items": [item.item_id for item in released],
        "recipient": str(entry["details"]["recipient"]),
        "reason": reason,
        "operator": signer.operator,
        "fingerprint": signer.fingerprint,
        "custody_seq": int(entry["seq"]),
    }
    with _BundleZip(out, force=force, when=created) as archive:
        members = _write_members(archive, pages, evidence)
        package = _datapackage(
            members,
            pages,
            created=created,
            title=f"Case {case_id}: {title}",
            extra=extra,
        )
        package_hash = "sha256:" + sha256_bytes(package)
        software = _software()
        signature = raw_signature(signer.sign(package_hash.encode("utf-8")))
        public_der = base64.b64decode(
            "".join(signer.public_key_pem.strip().splitlines()[1:-1]).encode("ascii")
        )
        digest = {
            "path": DATAPACKAGE_NAME,
            "hash": package_hash,
            "signedData": {
                "hash": package_hash,
                "created": created,
                "software": software,
                "signature": base64.b64encode(signature).decode("ascii"),
                "publicKey": base64.b64encode(public_der).decode("ascii"),
            },
        }
        archive.add(_data(DATAPACKAGE_NAME, package))
        archive.add(_data(DIGEST_NAME, _json_bytes(digest)))
        size = archive.commit()
    return WaczResult(
        path=out,
        case_id=case_id,
        items=tuple(item.item_id for item in released),
        recipient=str(entry["details"]["recipient"]),
        entry=entry,
        members=len(members) + 2,
        size=size,
        datapackage_sha256=package_hash.removeprefix("sha256:"),
        fingerprint=signer.fingerprint,
    )


def write_replay_package(items: Sequence[PackageItem], out: Path) -> Path:
    """An unsigned package of ``items`` at ``out`` (replaced if there), for replay only:
    the same layout as an export, no custody entry, no evidence members, no signature."""
    created = utc_now()
    with _BundleZip(out, force=True, when=created) as archive:
        members = _write_members(archive, items, [])
        package = _datapackage(
            members, items, created=created, title="osint-capture replay", extra=None
        )
        archive.add(_data(DATAPACKAGE_NAME, package))
        digest = {"path": DATAPACKAGE_NAME, "hash": "sha256:" + sha256_bytes(package)}
        archive.add(_data(DIGEST_NAME, _json_bytes(digest)))
        archive.commit()
    return out


def _write_members(
    archive: _BundleZip, items: Sequence[PackageItem], evidence: Iterable[_Member]
) -> list[_Member]:
    """The WARCs (streamed), the index and the page list, then ``evidence``; returns
    every member written, in order."""
    members: list[_Member] = []
    for item in items:
        if item.sha256 is not None and item.identity is not None:
            digest, size = item.sha256, item.size
        else:
            digest, size = sha256_file(item.warc)
        members.append(
            _Member(
                name=warc_member(item.item_id),
                size=size,
                sha256=digest,
                source=item.warc,
                identity=item.identity or _identity_of(item.warc),
            )
        )
    members.append(_data(INDEX_NAME, _cdxj(items)))
    members.append(_data(PAGES_NAME, _pages(items)))
    members.extend(evidence)
    for member in members:
        archive.add(member)
    return members


def _identity_of(path: Path) -> tuple[int, int, int, int]:
    info = os.stat(path)
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _data(name: str, data: bytes) -> _Member:
    return _Member(name=name, size=len(data), sha256=sha256_bytes(data), data=data)


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _cdxj(items: Sequence[PackageItem]) -> bytes:
    """One sorted CDXJ index of every WARC, each line naming its WARC as it lies in
    ``archive/`` (cdxj-indexer would name them all ``archive.warc.gz``)."""
    from cdxj_indexer.main import CDXJIndexer

    lines: list[str] = []
    for item in items:
        name = warc_member(item.item_id).split("/", 1)[1]
        buffer = io.StringIO()
        # post_append: a POST's body joins its URL key, as pywb and wabac.js look it up.
        indexer = CDXJIndexer(output=buffer, inputs=[], filename=name, post_append=True)
        with open_regular(item.warc) as handle:
            indexer.process_one(handle, buffer, name)
        lines.extend(buffer.getvalue().splitlines(keepends=True))
    lines.sort()
    return "".join(lines).encode("utf-8")


def _pages(items: Sequence[PackageItem]) -> bytes:
    header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    rows = [json.dumps(header, ensure_ascii=False)]
    for item in items:
        rows.append(
            json.dumps(
                {"id": item.item_id, "url": item.url, "title": item.title, "ts": item.ts},
                ensure_ascii=False,
            )
        )
    return ("\n".join(rows) + "\n").encode("utf-8")


def _datapackage(
    members: Sequence[_Member],
    items: Sequence[PackageItem],
    *,
    created: str,
    title: str,
    extra: Mapping[str, Any] | None,
) -> bytes:
    resources = []
    for member in members:
        resources.append(
            {
                # Data Package names are lowercase ('^([-a-z0-9._/])+$'), as py-wacz makes them.
                "name": member.name.rsplit("/", 1)[-1].lower(),
                "path": member.name,
                "hash": f"sha256:{member.sha256}",
                "bytes": member.size,
            }
        )
    package: dict[str, Any] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": title,
        "created": created,
        "software": _software(),
        "resources": resources,
    }
    if len(items) == 1:
        package["mainPageURL"] = items[0].url
        package["mainPageDate"] = items[0].ts
    if extra is not None:
        package[EXTRA_FIELD] = dict(extra)
    return _json_bytes(package)
