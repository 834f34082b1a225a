"""Recovery after a crash: items published but never logged, and repairing the log.

A crash can fall between publishing an item and appending its ``captured`` entry; such
an item is reported (:func:`unlogged_items`), never hidden, and :func:`repair_case` logs
it as ``recovered`` only when the case's own signed log vouches for the key that signed
it. It never touches a browser.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.canonical import canonical_json
from chain_of_custody.errors import IntegrityError
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import MANIFEST_NAME, load_manifest, manifest_files
from chain_of_custody.signing import Signer, fingerprint_of, load_public_key, verify_signature
from chain_of_custody.verify import normalize_trusted, verify_item

from .custody import append_event, logged_events, read_events, repair_log
from .store import EvidenceStore

__all__ = ["Repair", "repair_case", "unlogged_items"]

_RECOVERED = "logged after an interruption between publishing and logging"
# Step 7 is the custody check, which an unlogged item fails by definition.
_RECOVERY_STEPS = range(1, 7)


@dataclass(frozen=True)
class Repair:
    """What :func:`repair_case` did.

    ``log_entry`` is the ``log-repaired`` entry (None if the log was intact);
    ``recovered`` the unlogged items it logged as captured; ``refused`` those it left
    unlogged because they do not verify, belong to another case, are signed by a key the
    case does not know or would be logged after the case was closed;
    ``refused_reasons`` says why, as ``(item_id, reason)`` pairs in ``refused`` order
    (each reason a phrase that follows the item id).
    """

    log_entry: dict[str, Any] | None
    recovered: tuple[str, ...]
    refused: tuple[str, ...]
    refused_reasons: tuple[tuple[str, str], ...] = ()

    def refusal_error(self) -> IntegrityError:
        """The error a repair that left items unlogged ends with (for its caller to raise).

        Raises ValueError when nothing was refused: such a repair succeeded.
        """
        if not self.refused:
            raise ValueError("the repair refused no item")
        message = (
            f"item(s) {', '.join(self.refused)} have no 'captured' entry and do not verify; "
            f"they are not logged automatically (logged: {len(self.recovered)})"
        )
        if self.refused_reasons:
            why = "; ".join(f"{item_id} {reason}" for item_id, reason in self.refused_reasons)
            message = f"{message}: {why}"
        return IntegrityError(message, hint="examine them with `osint-capture verify ITEM_ID`")


def unlogged_items(store: EvidenceStore, case_id: str) -> list[str]:
    """Complete items with no ``captured`` custody entry.

    The entry is appended right after the item is published; a crash between the two
    leaves a signed item the log does not know. It is reported, never hidden. An item
    whose capture is still logging it (its staging lock held) is not unlogged.
    """
    logged = {
        event.get("item_id")
        for event in logged_events(store.case_dir(case_id))
        if event["action"] == "captured"
    }
    return [
        item_id
        for item_id in store.list_items(case_id)
        if item_id not in logged and not store.is_being_published(case_id, item_id)
    ]


def repair_case(
    store: EvidenceStore,
    case_id: str,
    *,
    signer: Signer,
    trusted: Collection[str] | None = None,
) -> Repair:
    """Repair a case's log after a crash: ``log-repaired``, then ``captured`` (recovered).

    First cuts a torn tail off the log, recording what it removed; then logs each item an
    interruption left unlogged, but only one that passes verification steps 1-6, whose
    manifest names this case and whose manifest is signed by a key the case's log already
    vouches for: the key that opened the case (its ``case-opened`` entry) or one that
    logged a capture in it (a ``captured`` entry not written by a repair), each only where
    its signature on that entry verifies; or by one of ``trusted`` (fingerprints). Nothing
    is logged into a closed case: no ``captured`` entry may follow ``case-closed``. Any
    other item is left unlogged, in :attr:`Repair.refused` with its reason, and keeps
    failing verification, as it should. UsageError names a malformed trusted fingerprint.
    """
    store.get_case(case_id)
    extra = normalize_trusted(trusted) or frozenset()
    log_entry = repair_log(
        store.case_dir(case_id), case_id=case_id, actor=signer.operator, signer=signer
    )
    events = read_events(store.case_dir(case_id))
    keys = _case_keys(events) | extra
    closed = any(event["action"] == "case-closed" for event in events)
    logged = {event.get("item_id") for event in events if event["action"] == "captured"}
    recovered: list[str] = []
    reasons: list[tuple[str, str]] = []
    for item_id in store.list_items(case_id):
        if item_id in logged or store.is_being_published(case_id, item_id):
            continue
        item_dir = store.item_dir(case_id, item_id)
        details, reason = _recovered_details(item_dir, case_id, keys)
        if details is not None and closed:
            details = None
            reason = (
                f"cannot be logged: case '{case_id}' is closed, and no 'captured' entry "
                "may follow its 'case-closed' entry"
            )
        if details is None:
            reasons.append((item_id, reason))
            continue
        append_event(
            store.case_dir(case_id),
            case_id=case_id,
            actor=signer.operator,
            action="captured",
            item_id=item_id,
            details=details,
            signer=signer,
        )
        recovered.append(item_id)
    return Repair(
        log_entry=log_entry,
        recovered=tuple(recovered),
        refused=tuple(item_id for item_id, _ in reasons),
        refused_reasons=tuple(reasons),
    )


def _recovered_details(
    item_dir: Path, case_id: str, keys: frozenset[str]
) -> tuple[dict[str, Any] | None, str]:
    """The details of a recovered ``captured`` entry, or None and why it may not be logged."""
    report = verify_item(item_dir, custody_log=None)
    failed = next(
        (step for step in report.steps if step.number in _RECOVERY_STEPS and not step.ok), None
    )
    if failed is not None:
        why = "; ".join(failed.problems) or failed.detail
        return None, f"fails verification step {failed.number} ({failed.name}): {why}"
    try:
        data = (item_dir / MANIFEST_NAME).read_bytes()
        manifest = load_manifest(data)
        files = manifest_files(manifest)
    except (OSError, IntegrityError):
        # changed since it verified: not the item that was checked
        return None, "changed while it was being checked"
    if manifest["case_id"] != case_id:
        return None, f"has a manifest naming case {manifest['case_id']!r}"
    key = manifest["signer"]["fingerprint"]  # step 3: the embedded key's own fingerprint
    if key not in keys:
        return None, (
            f"is signed by key {key} ({manifest['signer'].get('operator')}), which neither "
            "opened this case nor logged a capture in it (if it is a key you trust, repeat "
            f"with --trust {key})"
        )
    provenance = manifest["provenance"]
    return {
        "manifest_sha256": sha256_bytes(data),
        "requested_url": provenance.get("requested_url"),
        "final_url": provenance.get("final_url"),
        "status": manifest["status"],
        "files": len(files),
        "recovered": _RECOVERED,
        "manifest_created": manifest["created"],
        "manifest_signer": key,
    }, ""


def _case_keys(events: list[dict[str, Any]]) -> frozenset[str]:
    """Keys whose signed entries vouch for this case's evidence (see :func:`repair_case`)."""
    keys = set()
    for number, event in enumerate(events, start=1):
        opened = number == 1 and event["action"] == "case-opened"
        captured = event["action"] == "captured" and "recovered" not in event["details"]
        key = _entry_key(event) if opened or captured else None
        if key is not None:
            keys.add(key)
    return frozenset(keys)


def _entry_key(entry: Mapping[str, Any]) -> str | None:
    """The fingerprint of the key whose signature on ``entry`` verifies; None if it does not."""
    signer = entry["signer"]
    try:
        fingerprint = fingerprint_of(load_public_key(signer["public_key"]))
        signature = base64.b64decode(entry["signature"], validate=True)
    except ValueError:  # binascii.Error is one
        return None
    unsigned = {name: value for name, value in entry.items() if name != "signature"}
    if fingerprint != signer["fingerprint"] or not verify_signature(
        signer["public_key"], canonical_json(unsigned), signature
    ):
        return None
    return fingerprint
