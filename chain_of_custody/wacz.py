"""Verify a WACZ package (WACZ 1.1.1, signed as wacz-auth 0.1.0 says) from its bytes alone.

A WACZ is a zip that web-archive tools (ReplayWeb.page, ArchiveWeb.page, Browsertrix,
py-wacz) open: the WARCs under ``archive/``, a CDXJ index under ``indexes/``,
``pages/pages.jsonl``, ``datapackage.json`` listing every other member with its
``sha256:`` hash and size, and ``datapackage-digest.json`` holding the hash of
``datapackage.json`` and, signed, ``signedData``. The package is read with the bundle
reader (:func:`chain_of_custody.bundle.open_bundle`: every member judged before any is
extracted, CRC-32 and sizes checked) into a private temporary folder, then:

- step 20: every member but the two ``datapackage`` files is listed in
  ``datapackage.json`` with its size and SHA-256, and every listed resource is there;
- step 21: ``datapackage-digest.json`` names the SHA-256 of ``datapackage.json`` and its
  ``signedData`` signature verifies over that hash string with the embedded key, exactly
  as wabac.js (inside ReplayWeb.page) checks it; with ``--trust``, the key must be a
  trusted one;
- step 22: for a package ``osint-capture export --format wacz`` wrote (the extra field
  ``osint_capture`` of ``datapackage.json``), each WARC is the one its item's signed
  manifest lists (the manifests and their signatures travel as members under
  ``osint-capture/``), and no other WARC is in the package.

The signature bytes (docs/FORMAT.md section 15): ECDSA P-384 with SHA-256 over the UTF-8
bytes of the string ``sha256:<64 hex>``; ``signature`` is the base64 of the raw 96-byte
``r‖s`` form WebCrypto produces (not DER), ``publicKey`` the base64 of the DER
SubjectPublicKeyInfo. :func:`raw_signature` and :func:`der_signature` convert.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from chain_of_custody.bundle import open_bundle
from chain_of_custody.canonical import check_depth
from chain_of_custody.errors import IntegrityError
from chain_of_custody.hashing import sha256_bytes, sha256_file
from chain_of_custody.item import WARC_NAME, load_manifest, manifest_files
from chain_of_custody.regular import read_regular_file
from chain_of_custody.signing import fingerprint_of, load_public_key, verify_signature
from chain_of_custody.verify import normalize_trusted

__all__ = [
    "ARCHIVE_DIR",
    "DATAPACKAGE_NAME",
    "DIGEST_NAME",
    "EVIDENCE_DIR",
    "EXTRA_FIELD",
    "INDEX_NAME",
    "PAGES_NAME",
    "WACZ_FORMAT",
    "WACZ_STEPS",
    "WACZ_VERSION",
    "WaczCheck",
    "WaczReport",
    "der_signature",
    "manifest_member",
    "raw_signature",
    "signature_member",
    "verify_hash_signature",
    "verify_wacz",
    "warc_member",
]

WACZ_VERSION = "1.1.1"
DATAPACKAGE_NAME = "datapackage.json"
DIGEST_NAME = "datapackage-digest.json"
PAGES_NAME = "pages/pages.jsonl"
INDEX_NAME = "indexes/index.cdx"
ARCHIVE_DIR = "archive"
# Every member sits one folder deep: py-wacz's validator matches members to the
# datapackage by their last two path segments only.
EVIDENCE_DIR = "osint-capture"
EXTRA_FIELD = "osint_capture"
WACZ_FORMAT = "osint-capture/wacz/1"
WACZ_STEPS = {
    20: "WACZ members are safe and each matches datapackage.json",
    21: "datapackage-digest.json matches and its signature verifies",
    22: "each WARC is the one its item's signed manifest lists",
}

_P384_BYTES = 48
_MAX_JSON = 64 << 20
_MAX_SIGNATURE = 1 << 12
_UNLISTED = frozenset({DATAPACKAGE_NAME, DIGEST_NAME})


def warc_member(item_id: str) -> str:
    """Where an item's ``archive.warc.gz`` lies in a package we write."""
    return f"{ARCHIVE_DIR}/{item_id}.warc.gz"


def manifest_member(item_id: str) -> str:
    return f"{EVIDENCE_DIR}/{item_id}.manifest.json"


def signature_member(item_id: str) -> str:
    return f"{EVIDENCE_DIR}/{item_id}.manifest.json.sig"


def raw_signature(der: bytes) -> bytes:
    """A DER ECDSA P-384 signature as the 96-byte ``r‖s`` WebCrypto makes and expects."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P384_BYTES, "big") + s.to_bytes(_P384_BYTES, "big")


def der_signature(raw: bytes) -> bytes:
    """The DER form of a raw 96-byte ``r‖s`` signature; ValueError for any other length."""
    if len(raw) != 2 * _P384_BYTES:
        raise ValueError(f"a P-384 signature is {2 * _P384_BYTES} bytes r‖s, not {len(raw)}")
    r = int.from_bytes(raw[:_P384_BYTES], "big")
    s = int.from_bytes(raw[_P384_BYTES:], "big")
    return encode_dss_signature(r, s)


def _public_key_from_b64(text: str) -> ec.EllipticCurvePublicKey:
    try:
        der = base64.b64decode(text, validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"publicKey is not base64 DER SubjectPublicKeyInfo ({exc})") from None
    # wabac.js imports it as namedCurve P-384; any other key does not verify there.
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise ValueError("publicKey is not an ECDSA P-384 key")
    return key


def verify_hash_signature(public_key_b64: str, hash_text: str, signature_b64: str) -> bool:
    """wabac.js's check: ECDSA P-384 / SHA-256, raw ``r‖s`` signature, over the UTF-8
    bytes of ``hash_text``. Never raises for bad input: it simply does not verify."""
    try:
        key = _public_key_from_b64(public_key_b64)
        raw = base64.b64decode(signature_b64, validate=True)
        key.verify(der_signature(raw), hash_text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


@dataclass(frozen=True)
class WaczCheck:
    """One numbered step of a package: what it looked at, the verdict, what it found."""

    number: int
    target: str
    ok: bool
    detail: str
    skipped: bool = False

    @property
    def name(self) -> str:
        return WACZ_STEPS[self.number]


@dataclass(frozen=True)
class WaczReport:
    """The outcome of :func:`verify_wacz`: ok only if every step is."""

    ok: bool
    path: str
    steps: tuple[WaczCheck, ...]
    members: int
    signer: str | None  # fingerprint of the key in signedData, when it parsed
    case_id: str | None  # from the extra field, for a package we wrote
    items: tuple[str, ...]

    @property
    def first_failure(self) -> WaczCheck | None:
        return next((s for s in self.steps if not s.ok), None)


def _load_json(root: Path, name: str) -> Any:
    data = read_regular_file(root / name)
    if len(data) > _MAX_JSON:
        raise ValueError(f"{name} is larger than {_MAX_JSON} bytes")
    text = data.decode("utf-8")
    check_depth(text)  # hostile nesting is refused before it is parsed
    return json.loads(text)


def _members(root: Path) -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        for name in files:
            found.append((rel / name).as_posix())
    return sorted(found)


def verify_wacz(path: Path, *, trusted_fingerprints: Collection[str] | None = None) -> WaczReport:
    """Verify the package at ``path`` (steps 20-22, module docstring).

    Integrity problems are returned in the report; a file that cannot be read safely as a
    zip raises IntegrityError naming the member (as the bundle reader does), one that does
    not exist a UsageError; a malformed trusted fingerprint is a UsageError.
    """
    trusted = normalize_trusted(trusted_fingerprints)
    base = str(path).rstrip("/")
    with open_bundle(path) as root:
        members = _members(root)
        step20, package, digests = _step20(root, members, base)
        step21, signer = _step21(root, members, package, trusted, base)
        step22, case_id, items = _step22(root, members, package, digests, trusted, base)
    steps = (step20, step21, step22)
    return WaczReport(
        ok=all(s.ok for s in steps),
        path=str(path),
        steps=steps,
        members=len(members),
        signer=signer,
        case_id=case_id,
        items=items,
    )


def _step20(
    root: Path, members: list[str], base: str
) -> tuple[WaczCheck, dict[str, Any] | None, dict[str, str]]:
    target = f"{base}/{DATAPACKAGE_NAME}"
    digests: dict[str, str] = {}
    if DATAPACKAGE_NAME not in members:
        return WaczCheck(20, target, False, f"{DATAPACKAGE_NAME} is missing"), None, digests
    try:
        package = _load_json(root, DATAPACKAGE_NAME)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return WaczCheck(20, target, False, f"{DATAPACKAGE_NAME} is not JSON: {exc}"), None, {}
    problems: list[str] = []
    if not isinstance(package, dict) or not isinstance(package.get("resources"), list):
        return (
            WaczCheck(20, target, False, f"{DATAPACKAGE_NAME} has no resources list"),
            None,
            digests,
        )
    if package.get("profile") not in ("data-package", "wacz-package"):
        problems.append(f"{DATAPACKAGE_NAME}: profile is {package.get('profile')!r}")
    if package.get("wacz_version") != WACZ_VERSION:
        problems.append(
            f"{DATAPACKAGE_NAME}: wacz_version is {package.get('wacz_version')!r}, "
            f"not {WACZ_VERSION}"
        )
    listed: dict[str, Mapping[str, Any]] = {}
    for index, resource in enumerate(package["resources"], start=1):
        if (
            not isinstance(resource, dict)
            or not isinstance(resource.get("path"), str)
            or not isinstance(resource.get("hash"), str)
            or not isinstance(resource.get("bytes"), int)
        ):
            problems.append(f"{DATAPACKAGE_NAME}: resources[{index}] lacks path, hash or bytes")
            continue
        if resource["path"] in listed:
            problems.append(f"{DATAPACKAGE_NAME} lists {resource['path']} twice")
        listed[resource["path"]] = resource
    present = set(members)
    for name in members:
        if name in _UNLISTED:
            continue
        if name not in listed:
            problems.append(f"member {name} is not listed in {DATAPACKAGE_NAME}")
            continue
        digest, size = sha256_file(root.joinpath(*name.split("/")))
        digests[name] = digest
        resource = listed[name]
        if resource["hash"] != f"sha256:{digest}":
            problems.append(
                f"member {name} has SHA-256 {digest}, {DATAPACKAGE_NAME} lists {resource['hash']}"
            )
        if resource["bytes"] != size:
            problems.append(
                f"member {name} is {size} bytes, {DATAPACKAGE_NAME} lists {resource['bytes']}"
            )
    for name in sorted(set(listed) - present):
        problems.append(f"{DATAPACKAGE_NAME} lists {name}, which is not in the package")
    if not any(m.startswith(f"{ARCHIVE_DIR}/") and ".warc" in m for m in members):
        problems.append(f"the package holds no WARC under {ARCHIVE_DIR}/")
    if not any(m.startswith("indexes/") for m in members):
        problems.append("the package holds no index under indexes/")
    if PAGES_NAME not in present:
        problems.append(f"{PAGES_NAME} is missing")
    good = f"{len(members)} members; {len(digests)} resources listed, each of its size and SHA-256"
    return (
        WaczCheck(20, target, not problems, "; ".join(problems) or good),
        package,
        digests,
    )


def _step21(
    root: Path,
    members: list[str],
    package: Mapping[str, Any] | None,
    trusted: frozenset[str] | None,
    base: str,
) -> tuple[WaczCheck, str | None]:
    target = f"{base}/{DIGEST_NAME}"

    def failed(why: str, signer: str | None = None) -> tuple[WaczCheck, str | None]:
        return WaczCheck(21, target, False, why), signer

    if DIGEST_NAME not in members:
        return failed(f"{DIGEST_NAME} is missing: the package is not signed")
    if DATAPACKAGE_NAME not in members:
        return failed(f"{DATAPACKAGE_NAME} is missing, so there is nothing it signs")
    try:
        digest = _load_json(root, DIGEST_NAME)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return failed(f"{DIGEST_NAME} is not JSON: {exc}")
    if not isinstance(digest, dict):
        return failed(f"{DIGEST_NAME} is not a JSON object")
    actual = "sha256:" + sha256_bytes(read_regular_file(root / DATAPACKAGE_NAME))
    if digest.get("path") != DATAPACKAGE_NAME:
        return failed(f"{DIGEST_NAME} names path {digest.get('path')!r}, not {DATAPACKAGE_NAME}")
    if digest.get("hash") != actual:
        return failed(
            f"{DIGEST_NAME} records hash {digest.get('hash')!r}, but {DATAPACKAGE_NAME} "
            f"is {actual} (member {DATAPACKAGE_NAME} was changed)"
        )
    signed = digest.get("signedData")
    if not isinstance(signed, dict):
        return failed(f"{DIGEST_NAME} has no signedData: the package is not signed")
    fields = ("hash", "created", "software", "signature", "publicKey")
    missing = [f for f in fields if not isinstance(signed.get(f), str)]
    if missing:
        return failed(f"{DIGEST_NAME}: signedData lacks {', '.join(missing)}")
    try:
        key = _public_key_from_b64(signed["publicKey"])
    except ValueError as exc:
        return failed(f"{DIGEST_NAME}: signedData.{exc}")
    fingerprint = fingerprint_of(key)
    problems = []
    # wabac.js counts a signature only when its hash is the one the digest file records.
    if signed["hash"] != actual:
        problems.append(f"signedData.hash {signed['hash']!r} is not {actual}")
    elif not verify_hash_signature(signed["publicKey"], signed["hash"], signed["signature"]):
        problems.append(
            "signedData.signature does not verify over the hash with the embedded key "
            f"{fingerprint} (the signature or the key was replaced)"
        )
    if package is not None and package.get("created") != signed["created"]:
        problems.append(
            f"signedData.created {signed['created']!r} is not datapackage.json's created "
            f"{package.get('created')!r}"
        )
    # A package we wrote names its exporter's key inside the signed datapackage.json:
    # a signature swapped for another key's, however valid, is not the exporter's.
    extra = None if package is None else package.get(EXTRA_FIELD)
    named = extra.get("fingerprint") if isinstance(extra, dict) else None
    if extra is not None and named != fingerprint:
        problems.append(
            f"signedData is by key {fingerprint}, but datapackage.json names the exporting "
            f"key {named} (the signature was replaced)"
        )
    if trusted is not None and fingerprint not in trusted:
        problems.append(f"the package is signed by key {fingerprint}, not a trusted key")
    trust = "a trusted key" if trusted is not None else "not checked against trusted keys"
    good = (
        f"ECDSA P-384 signature over {actual} verifies (raw r‖s, as wabac.js checks it); "
        f"key {fingerprint} ({trust}); created {signed['created']}; software {signed['software']}"
    )
    return WaczCheck(21, target, not problems, "; ".join(problems) or good), fingerprint


def _step22(
    root: Path,
    members: list[str],
    package: Mapping[str, Any] | None,
    digests: Mapping[str, str],
    trusted: frozenset[str] | None,
    base: str,
) -> tuple[WaczCheck, str | None, tuple[str, ...]]:
    target = f"{base}/{EVIDENCE_DIR}"
    extra = None if package is None else package.get(EXTRA_FIELD)
    if extra is None:
        return (
            WaczCheck(
                22,
                target,
                package is not None,
                "no osint_capture field in datapackage.json (not made by osint-capture): "
                "no item manifests to check the WARCs against",
                skipped=True,
            ),
            None,
            (),
        )
    problems: list[str] = []
    if (
        not isinstance(extra, dict)
        or extra.get("format") != WACZ_FORMAT
        or not isinstance(extra.get("case_id"), str)
        or not isinstance(extra.get("items"), list)
        or not all(isinstance(i, str) for i in extra["items"])
    ):
        why = f"datapackage.json's {EXTRA_FIELD} field is not format {WACZ_FORMAT} with case_id"
        return WaczCheck(22, target, False, why + " and items"), None, ()
    case_id: str = extra["case_id"]
    items = tuple(extra["items"])
    for item_id in items:
        problems.extend(_item_problems(root, members, item_id, case_id, digests, trusted))
    ours = {warc_member(i) for i in items}
    for name in members:
        if name.startswith(f"{ARCHIVE_DIR}/") and name not in ours:
            problems.append(f"member {name} is not the WARC of any item the package lists")
    good = (
        f"case {case_id}: {len(items)} item(s) {', '.join(items)}; each WARC is the one its "
        "signed manifest lists"
    )
    return WaczCheck(22, target, not problems, "; ".join(problems) or good), case_id, items


def _item_problems(
    root: Path,
    members: list[str],
    item_id: str,
    case_id: str,
    digests: Mapping[str, str],
    trusted: frozenset[str] | None,
) -> list[str]:
    manifest_name, sig_name, warc = (
        manifest_member(item_id),
        signature_member(item_id),
        warc_member(item_id),
    )
    missing = [n for n in (manifest_name, sig_name, warc) if n not in members]
    if missing:
        return [f"item {item_id}: member {n} is missing" for n in missing]
    try:
        data = read_regular_file(root.joinpath(*manifest_name.split("/")))
        manifest = load_manifest(data)
        files = manifest_files(manifest)
    except IntegrityError as exc:
        return [f"member {manifest_name}: {exc.message}"]
    signature = read_regular_file(root.joinpath(*sig_name.split("/")))[:_MAX_SIGNATURE]
    signer = manifest["signer"]
    problems = []
    if not verify_signature(signer["public_key"], data, signature):
        problems.append(
            f"member {sig_name} does not verify over {manifest_name} with the key it embeds"
        )
    actual = fingerprint_of(load_public_key(signer["public_key"]))
    if actual != signer["fingerprint"]:
        problems.append(
            f"member {manifest_name} names fingerprint {signer['fingerprint']}, its key is {actual}"
        )
    if trusted is not None and actual not in trusted:
        problems.append(f"item {item_id} is signed by key {actual}, not a trusted key")
    if manifest["item_id"] != item_id or manifest["case_id"] != case_id:
        problems.append(
            f"member {manifest_name} is item {manifest['item_id']} of case "
            f"{manifest['case_id']}, not item {item_id} of case {case_id}"
        )
    entry = next((f for f in files if f.path == WARC_NAME), None)
    if entry is None:
        problems.append(f"member {manifest_name} lists no {WARC_NAME}")
        return problems
    digest = digests.get(warc)
    if digest is None:
        digest, size = sha256_file(root.joinpath(*warc.split("/")))
    else:
        size = (root.joinpath(*warc.split("/"))).stat().st_size
    if digest != entry.sha256 or size != entry.size:
        problems.append(
            f"member {warc} ({size} bytes, SHA-256 {digest}) is not the {WARC_NAME} item "
            f"{item_id}'s signed manifest lists ({entry.size} bytes, SHA-256 {entry.sha256})"
        )
    return problems
