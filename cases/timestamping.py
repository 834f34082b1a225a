"""The RFC 3161 client: stamp sealed items and custody heads at the TSAs the operator chose.

Nothing is ever sent to a TSA that was not configured (``--tsa`` / ``OSINT_CAPTURE_TSA``);
what is sent is a hash, and the TSA also learns the operator's address.

For each stamp: a TimeStampReq for the SHA-256 of the data, with a fresh nonce and
``certReq`` set, is POSTed (urllib) to each configured TSA in order, each bounded
(default 10 s), until one reply passes :func:`chain_of_custody.timestamp.verify_stamp`
against the configured TSA certificates and the request's nonce. A refused reply is never
stored; the next TSA is tried. The accepted reply is stored whole, as the TSA sent it:

- an item's ``manifest.json.sig.tsr`` beside its signature, then its ``SHA256SUMS``
  rewritten to list it; both atomic, under the case lock, then the ``timestamped``
  custody entry (:func:`stamp_item`, called as each item is sealed);
- the home's custody head as ``timestamps/custody.head-<SEQ>`` (a copy of the head that
  was stamped) and ``timestamps/custody.head-<SEQ>.tsr`` (:func:`stamp_custody_head`).

The network wait happens outside every lock: a TSA that hangs holds up no other command.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from chain_of_custody.canonical import parse_canonical
from chain_of_custody.custody import HEAD_NAME
from chain_of_custody.durable import atomic_create_bytes, atomic_write_bytes, fsync_dir
from chain_of_custody.errors import (
    IntegrityError,
    OsintCaptureError,
    TimestampFailed,
    UsageError,
)
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME
from chain_of_custody.regular import read_regular_file
from chain_of_custody.signing import Signer
from chain_of_custody.timestamp import (
    ITEM_STAMP_NAME,
    Stamp,
    TimestampInvalid,
    load_certificates,
    verify_stamp,
)

from .custody import append_event, check_log_writable
from .store import EvidenceStore

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HEAD_STAMPS_DIR",
    "NOT_CONFIGURED_RECORD",
    "CaseStamped",
    "HeadStamped",
    "ItemStamped",
    "Obtained",
    "StampOutcome",
    "TsaConfig",
    "awaiting_items",
    "is_awaiting",
    "log_head_stamp",
    "request_stamp",
    "stamp_awaiting",
    "stamp_custody_head",
    "stamp_item",
    "stamp_requested",
    "stamp_sealed",
    "tsa_config",
]

DEFAULT_TIMEOUT_S = 10.0
HEAD_STAMPS_DIR = "timestamps"
_QUERY_TYPE = "application/timestamp-query"
_REPLY_TYPE = "application/timestamp-reply"
_MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class TsaConfig:
    """The TSAs to ask, in order, the certificates a reply must chain to, and the bound."""

    urls: tuple[str, ...]
    certificates: tuple[x509.Certificate, ...]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def as_record(self) -> dict[str, Any]:
        """What the manifest's provenance records: where stamps will be asked for."""
        return {
            "tsa": list(self.urls),
            "stamp": f"{ITEM_STAMP_NAME}, asked for once the item is sealed",
        }


# The manifest's provenance when no TSA is configured: nothing is sent anywhere.
NOT_CONFIGURED_RECORD: Mapping[str, Any] = {
    "tsa": [],
    "stamp": "not timestamped: no TSA was configured",
}


def tsa_config(
    urls: Sequence[str],
    cert_files: Sequence[str | Path],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TsaConfig | None:
    """The configuration from ``--tsa`` / ``--tsa-cert`` (None: no TSA, nothing is sent).

    UsageError for a URL that is not http(s), TSAs without certificates to check their
    replies against (a reply must chain to something the operator chose), a bad PEM,
    or a bound outside 0.1-600 s.
    """
    urls = [u.strip() for u in urls if u.strip()]
    if not urls:
        if cert_files:
            raise UsageError("--tsa-cert was given without --tsa")
        return None
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise UsageError(f"--tsa {url!r} is not an http:// or https:// address")
    if not cert_files:
        raise UsageError(
            "--tsa needs --tsa-cert: the TSA certificates its replies must chain to",
            hint="give the TSA's root certificate (PEM) with --tsa-cert or OSINT_CAPTURE_TSA_CERTS",
        )
    if not 0.1 <= timeout_s <= 600:
        raise UsageError(f"--tsa-timeout must be between 0.1 and 600 seconds, not {timeout_s}")
    certificates = load_certificates(cert_files)
    return TsaConfig(tuple(urls), certificates, timeout_s)


@dataclass(frozen=True)
class Obtained:
    """A stamp accepted: the reply as the TSA sent it, what it says, who sent it, and the
    TSAs refused before it (URL and why)."""

    der: bytes
    stamp: Stamp
    url: str
    refused: tuple[tuple[str, str], ...] = ()


def request_stamp(data: bytes, config: TsaConfig) -> Obtained:
    """Ask each TSA in turn for a stamp of SHA-256(``data``); the first valid one wins.

    Raises TimestampFailed naming every TSA and why it was not used.
    """
    refused: list[tuple[str, str]] = []
    for url in config.urls:
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            reply = _post(url, request.as_bytes(), config.timeout_s)
            stamp = verify_stamp(reply, data, roots=config.certificates, nonce=request.nonce)
        except TimestampInvalid as exc:
            refused.append((url, f"reply refused: {exc.one_line()}"))
            continue
        except _Unreachable as exc:
            refused.append((url, str(exc)))
            continue
        return Obtained(reply, stamp, url, tuple(refused))
    raise TimestampFailed(
        "no TSA gave a valid timestamp: " + "; ".join(f"{u}: {why}" for u, why in refused),
        hint="nothing was stored; run `osint-capture timestamp CASE_ID` when a TSA answers",
    )


class _Unreachable(Exception):
    pass


def _post(url: str, query: bytes, timeout_s: float) -> bytes:
    request = urllib.request.Request(
        url, data=query, method="POST", headers={"Content-Type": _QUERY_TYPE}
    )
    try:
        # One bound for connecting and each read; a reply larger than any stamp is cut.
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(_MAX_REPLY + 1)
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise _Unreachable(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(f"no answer ({reason})") from None
    if len(body) > _MAX_REPLY:
        raise _Unreachable("the reply is larger than any timestamp")
    if kind.split(";")[0].strip().lower() != _REPLY_TYPE:
        raise _Unreachable(f"the reply is {kind or 'untyped'}, not {_REPLY_TYPE}")
    return body


# -- items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStamped:
    """An item's stamp stored and logged."""

    item_id: str
    path: Path
    obtained: Obtained
    entry: Mapping[str, Any]


def is_awaiting(item_dir: Path) -> bool:
    """True for a sealed item without its stamp (whether or not one was ever asked for)."""
    return (item_dir / SIGNATURE_NAME).is_file() and not os.path.lexists(item_dir / ITEM_STAMP_NAME)


def stamp_requested(item_dir: Path) -> bool:
    """Whether the item's signed manifest says a TSA was configured when it was sealed
    (an unstamped item without one is "not timestamped", not awaiting)."""
    try:
        manifest = parse_canonical(read_regular_file(item_dir / MANIFEST_NAME))
    except (OSError, ValueError):
        return True  # unreadable here: verify says why; keep it in view
    provenance = manifest.get("provenance") if isinstance(manifest, dict) else None
    record = provenance.get("timestamp") if isinstance(provenance, dict) else None
    return bool(record.get("tsa")) if isinstance(record, dict) else True


def awaiting_items(store: EvidenceStore, case_id: str) -> list[str]:
    """The case's items awaiting a timestamp, in item order."""
    return [i for i in store.list_items(case_id) if is_awaiting(store.item_dir(case_id, i))]


def stamp_item(
    store: EvidenceStore, case_id: str, item_id: str, config: TsaConfig, *, signer: Signer
) -> ItemStamped:
    """Stamp the item's ``manifest.json.sig``, store the reply, list it, log it.

    Raises TimestampFailed (nothing stored) when no TSA gave a valid stamp, UsageError
    when the item already has one, IntegrityError when its signature changed while the
    TSA was asked.
    """
    item_dir = store.item_dir(case_id, item_id)
    target = item_dir / ITEM_STAMP_NAME
    if os.path.lexists(target):
        raise UsageError(f"item {item_id} is already timestamped ({target.name})")
    check_log_writable(store.case_dir(case_id), case_id=case_id)
    signature = read_regular_file(item_dir / SIGNATURE_NAME)
    obtained = request_stamp(signature, config)
    with store.case_lock(case_id):
        if read_regular_file(item_dir / SIGNATURE_NAME) != signature:
            raise IntegrityError(
                f"{item_dir / SIGNATURE_NAME} changed while it was being timestamped; "
                "nothing was stored",
                hint="preserve the item as it is and have it examined",
            )
        try:
            atomic_create_bytes(target, obtained.der)
        except FileExistsError:
            raise UsageError(
                f"item {item_id} was timestamped meanwhile by another process"
            ) from None
        _list_in_sums(item_dir, ITEM_STAMP_NAME, obtained.der)
        entry = _log_stamp(
            store,
            case_id,
            item_id=item_id,
            what=SIGNATURE_NAME,
            data=signature,
            obtained=obtained,
            signer=signer,
        )
    return ItemStamped(item_id, target, obtained, entry)


def _list_in_sums(item_dir: Path, name: str, data: bytes) -> None:
    """Add ``name`` to the item's SHA256SUMS (replaced atomically, lines kept sorted)."""
    path = item_dir / SUMS_NAME
    try:
        text = read_regular_file(path).decode("utf-8")
    except FileNotFoundError:
        return  # an item without SHA256SUMS: nothing to keep in step
    lines = [line for line in text.split("\n") if line and not line.endswith(f"  {name}")]
    lines.append(f"{sha256_bytes(data)}  {name}")
    lines.sort(key=lambda line: line[66:])
    atomic_write_bytes(path, "".join(f"{line}\n" for line in lines).encode("utf-8"))


def _log_stamp(
    store: EvidenceStore,
    case_id: str,
    *,
    item_id: str | None,
    what: str,
    data: bytes,
    obtained: Obtained,
    signer: Signer,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    stamp = obtained.stamp
    details: dict[str, Any] = {
        "stamped": what,
        "stamped_sha256": sha256_bytes(data),
        "tsa": obtained.url,
        "gen_time": stamp.gen_time_text,
        "serial_number": stamp.serial_hex,
        "policy": stamp.policy,
        "tsa_certificate": stamp.tsa,
        "tsr_sha256": sha256_bytes(obtained.der),
    }
    details.update(extra or {})
    return append_event(
        store.case_dir(case_id),
        case_id=case_id,
        actor=signer.operator,
        action="timestamped",
        item_id=item_id,
        details=details,
        signer=signer,
    )


# -- the custody head -------------------------------------------------------------------


@dataclass(frozen=True)
class HeadStamped:
    """The custody head stamped: the copy of the head and its stamp, and the entry."""

    seq: int
    head: Path
    path: Path
    obtained: Obtained
    entry: Mapping[str, Any]


def stamp_custody_head(
    store: EvidenceStore, case_id: str, config: TsaConfig, *, signer: Signer
) -> HeadStamped:
    """Stamp the case's ``custody.head`` as it stands, keep both under ``timestamps/``,
    and log ``timestamped`` (which itself moves the head on: the stamp covers the log up
    to the entry before it)."""
    case_dir = store.case_dir(case_id)
    store.get_case(case_id)
    check_log_writable(case_dir, case_id=case_id)
    head = read_regular_file(case_dir / HEAD_NAME)
    try:
        parsed = parse_canonical(head.rstrip(b"\n"))
        seq = int(parsed["seq"])
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(
            f"{case_dir / HEAD_NAME} is not a custody head; nothing was stamped"
        ) from None
    obtained = request_stamp(head, config)
    folder = case_dir / HEAD_STAMPS_DIR
    folder.mkdir(exist_ok=True)
    copy = folder / f"{HEAD_NAME}-{seq}"
    stamp_path = folder / f"{HEAD_NAME}-{seq}.tsr"
    with store.case_lock(case_id):
        if os.path.lexists(copy) and read_regular_file(copy) != head:
            raise IntegrityError(f"{copy} exists and holds another head; nothing was stored")
        if not os.path.lexists(copy):
            atomic_create_bytes(copy, head)
        atomic_write_bytes(stamp_path, obtained.der)
        fsync_dir(case_dir)
        entry = _log_stamp(
            store,
            case_id,
            item_id=None,
            what=HEAD_NAME,
            data=head,
            obtained=obtained,
            signer=signer,
            extra={"head_seq": seq, "head_sha256": str(parsed.get("head_sha256"))},
        )
    return HeadStamped(seq, copy, stamp_path, obtained, entry)


def log_head_stamp(
    store: EvidenceStore,
    case_id: str,
    head: bytes,
    obtained: Obtained,
    *,
    signer: Signer,
    bundle: str,
) -> dict[str, Any]:
    """Log ``timestamped`` for a bundle's custody head (the stamp is in the bundle)."""
    parsed = parse_canonical(head.rstrip(b"\n"))
    return _log_stamp(
        store,
        case_id,
        item_id=None,
        what=HEAD_NAME,
        data=head,
        obtained=obtained,
        signer=signer,
        extra={
            "head_seq": int(parsed["seq"]),
            "head_sha256": str(parsed["head_sha256"]),
            "bundle": bundle,
        },
    )


@dataclass(frozen=True)
class CaseStamped:
    """What ``osint-capture timestamp CASE_ID`` did: items stamped, those that could not
    be (and why), and the custody head's stamp (None if it failed: ``head_error``)."""

    stamped: tuple[ItemStamped, ...]
    failed: tuple[tuple[str, str], ...]
    head: HeadStamped | None
    head_error: str | None


def stamp_awaiting(
    store: EvidenceStore, case_id: str, config: TsaConfig, *, signer: Signer
) -> CaseStamped:
    """Stamp every item of the case still awaiting a timestamp, then the custody head."""
    store.get_case(case_id)
    stamped: list[ItemStamped] = []
    failed: list[tuple[str, str]] = []
    for item_id in awaiting_items(store, case_id):
        try:
            stamped.append(stamp_item(store, case_id, item_id, config, signer=signer))
        except TimestampFailed as exc:
            failed.append((item_id, exc.message))
    head: HeadStamped | None = None
    head_error: str | None = None
    try:
        head = stamp_custody_head(store, case_id, config, signer=signer)
    except TimestampFailed as exc:
        head_error = exc.message
    return CaseStamped(tuple(stamped), tuple(failed), head, head_error)


@dataclass(frozen=True)
class StampOutcome:
    """What became of a sealed item's stamp: ``timestamped``, ``awaiting a timestamp``
    (no TSA gave a valid one: ``detail`` says why) or ``not timestamped`` (none
    configured)."""

    state: str
    detail: str
    stamped: ItemStamped | None = None

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"state": self.state, "detail": self.detail}
        if self.stamped is not None:
            stamp = self.stamped.obtained.stamp
            record.update(
                file=str(self.stamped.path),
                tsa=self.stamped.obtained.url,
                gen_time=stamp.gen_time_text,
                serial_number=stamp.serial_hex,
            )
        return record


def stamp_sealed(
    store: EvidenceStore,
    case_id: str,
    item_id: str,
    config: TsaConfig | None,
    *,
    signer: Signer,
) -> StampOutcome:
    """Stamp an item just sealed and published, never raising: the item is evidence
    already, and a TSA that is down or wrong only leaves it awaiting a timestamp, for
    ``osint-capture timestamp CASE_ID``. Called once per item as it is sealed (a batch
    calls it for each item in turn, not for all at the end)."""
    if config is None:
        return StampOutcome("not timestamped", "no TSA configured")
    try:
        stamped = stamp_item(store, case_id, item_id, config, signer=signer)
    except (OsintCaptureError, OSError) as exc:
        message = exc.one_line() if isinstance(exc, OsintCaptureError) else str(exc)
        return StampOutcome("awaiting a timestamp", message)
    stamp = stamped.obtained.stamp
    return StampOutcome(
        "timestamped",
        f"{stamped.path.name}: genTime {stamp.gen_time_text} from {stamped.obtained.url}",
        stamped,
    )
