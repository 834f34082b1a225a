"""Every case action together with its custody entry: one function per action.

Something done to a case or an item and the signed entry recording it belong together:
written in two places they drift apart (one command logs details another leaves out), and
a front end that forgets the entry leaves an act nobody can account for. So each action
here does the deed and appends its entry, with the details of FORMAT.md section 10, and
nothing outside :mod:`cases` calls :func:`~cases.custody.append_event`.

Actions that change something first make sure the log will take the entry
(:func:`~cases.custody.check_log_writable`), so a damaged log stops them before anything
changes rather than leaving an unlogged change behind. ``exported`` and ``timestamped``
are reserved in the vocabulary; their actions belong here once they exist.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import MANIFEST_NAME, load_manifest, manifest_files
from chain_of_custody.signing import Signer
from chain_of_custody.verify import ItemReport, verify_item

from .case import Case
from .custody import (
    CUSTODY_FILE,
    append_event,
    check_log_writable,
    events_for_item,
    read_events,
    repair_log,
)
from .staging import Leftover
from .store import EvidenceStore

__all__ = [
    "Examination",
    "LoggedEvent",
    "Repair",
    "case_events",
    "check_case_loggable",
    "clean_case",
    "close_case",
    "item_events",
    "log_capture_refused",
    "log_captured",
    "note_item",
    "open_case",
    "repair_case",
    "transfer_item",
    "unlogged_items",
    "verify_and_log",
]

_RECOVERED = "logged after an interruption between publishing and logging"
# Step 7 is the custody check, which an unlogged item fails by definition.
_RECOVERY_STEPS = range(1, 7)


@dataclass(frozen=True)
class LoggedEvent:
    """A custody entry appended about one item, and the case whose log holds it."""

    case_id: str
    item_id: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class Examination:
    """An item verified by :func:`verify_and_log`, and the ``verified`` entry recording it."""

    case_id: str
    item_dir: Path
    report: ItemReport
    entry: dict[str, Any]


@dataclass(frozen=True)
class Repair:
    """What :func:`repair_case` did.

    ``log_entry`` is the ``log-repaired`` entry (None if the log was intact);
    ``recovered`` the unlogged items it logged as captured; ``refused`` those it left
    unlogged because they do not verify or belong to another case.
    """

    log_entry: dict[str, Any] | None
    recovered: tuple[str, ...]
    refused: tuple[str, ...]

    def refusal_error(self) -> IntegrityError:
        """The error a repair that left items unlogged ends with (for its caller to raise).

        Raises ValueError when nothing was refused: such a repair succeeded.
        """
        if not self.refused:
            raise ValueError("the repair refused no item")
        return IntegrityError(
            f"item(s) {', '.join(self.refused)} have no 'captured' entry and do not verify; "
            f"they are not logged automatically (logged: {len(self.recovered)})",
            hint="examine them with `osint-capture verify ITEM_ID`",
        )


def _log(
    store: EvidenceStore,
    case_id: str,
    *,
    action: str,
    item_id: str | None,
    details: Mapping[str, Any],
    signer: Signer,
) -> dict[str, Any]:
    # The actor is always the key's operator: the signature says who did it, not a flag.
    return append_event(
        store.case_dir(case_id),
        case_id=case_id,
        actor=signer.operator,
        action=action,
        item_id=item_id,
        details=details,
        signer=signer,
    )


# -- cases -------------------------------------------------------------------------------


def open_case(
    store: EvidenceStore,
    case_id: str,
    *,
    title: str,
    category: str,
    investigator: str,
    authority: str,
    signer: Signer,
) -> Case:
    """Open a case and make ``case-opened`` the first entry of its custody log."""
    case = store.open_case(
        case_id, title=title, category=category, investigator=investigator, authority=authority
    )
    details = {
        "title": case.title,
        "category": case.category,
        "investigator": case.investigator,
        "authority": case.authority,
    }
    _log(store, case.case_id, action="case-opened", item_id=None, details=details, signer=signer)
    return case


def close_case(store: EvidenceStore, case_id: str, *, signer: Signer) -> Case:
    """Close a case and log ``case-closed``; a damaged log refuses before the case changes."""
    store.get_case(case_id)
    check_case_loggable(store, case_id)
    case = store.close_case(case_id)
    _log(store, case_id, action="case-closed", item_id=None, details={}, signer=signer)
    return case


def clean_case(store: EvidenceStore, case_id: str, *, signer: Signer) -> list[Leftover]:
    """Remove the leftovers of interrupted captures, one ``leftover-removed`` entry each.

    Returns the leftovers removed. Never removes a complete item; a damaged log refuses
    before anything is removed.
    """
    store.get_case(case_id)
    check_case_loggable(store, case_id)
    removed = []
    for leftover in store.leftovers(case_id):
        store.remove_leftover(leftover)
        details = {
            "path": str(leftover.path),
            "kind": leftover.kind,
            "size_bytes": leftover.size_bytes,
            "modified": leftover.modified,
        }
        _log(
            store,
            case_id,
            action="leftover-removed",
            item_id=leftover.item_id,
            details=details,
            signer=signer,
        )
        removed.append(leftover)
    return removed


def check_case_loggable(store: EvidenceStore, case_id: str) -> None:
    """Raise what appending to the case's log would raise (a capture asks before it starts)."""
    check_log_writable(store.case_dir(case_id), case_id=case_id)


# -- captures ----------------------------------------------------------------------------


def log_captured(
    store: EvidenceStore,
    case_id: str,
    *,
    item_id: str,
    manifest_sha256: str,
    requested_url: str,
    final_url: str,
    status: str,
    files: int,
    signer: Signer,
) -> dict[str, Any]:
    """Log ``captured`` for an item just published, binding its manifest's SHA-256."""
    details = {
        "manifest_sha256": manifest_sha256,
        "requested_url": requested_url,
        "final_url": final_url,
        "status": status,
        "files": files,
    }
    return _log(store, case_id, action="captured", item_id=item_id, details=details, signer=signer)


def log_capture_refused(
    store: EvidenceStore, case_id: str, *, url: str, reason: str, signer: Signer
) -> dict[str, Any]:
    """Log ``capture-refused``. ``url`` must already be redacted of any user and password."""
    details = {"url": url, "reason": reason}
    return _log(
        store, case_id, action="capture-refused", item_id=None, details=details, signer=signer
    )


# -- items -------------------------------------------------------------------------------


def transfer_item(
    store: EvidenceStore, item_id: str, *, to: str, reason: str, signer: Signer
) -> LoggedEvent:
    """Log ``transferred``: the item passed to ``to``, for ``reason``."""
    if not to.strip() or not reason.strip():
        raise UsageError("--to and --reason must not be empty")
    return _log_item(
        store, item_id, "transferred", {"to": to.strip(), "reason": reason.strip()}, signer
    )


def note_item(store: EvidenceStore, item_id: str, *, text: str, signer: Signer) -> LoggedEvent:
    """Log ``note``: a remark about the item."""
    if not text.strip():
        raise UsageError("--text must not be empty")
    return _log_item(store, item_id, "note", {"text": text.strip()}, signer)


def _log_item(
    store: EvidenceStore, item_id: str, action: str, details: Mapping[str, Any], signer: Signer
) -> LoggedEvent:
    case_id, _ = store.find_item(item_id)
    entry = _log(store, case_id, action=action, item_id=item_id, details=details, signer=signer)
    return LoggedEvent(case_id=case_id, item_id=item_id, entry=entry)


def verify_and_log(
    store: EvidenceStore,
    item_id: str,
    *,
    trusted: Collection[str] | None,
    signer: Signer,
) -> Examination:
    """Verify an item against its case's log and log ``verified``, whether it passes or not.

    Raises IntegrityError, checking and logging nothing, if the case has no custody log:
    step 7 would have nothing to check the item against.
    """
    case_id, item_dir = store.find_item(item_id)
    log = store.case_dir(case_id) / CUSTODY_FILE
    if not log.is_file():
        raise IntegrityError(f"case {case_id} has no custody log ({log} is missing)")
    report = verify_item(item_dir, trusted_fingerprints=trusted or None, custody_log=log)
    details: dict[str, Any] = {
        "ok": report.ok,
        "failed_steps": [step.number for step in report.steps if not step.ok],
    }
    manifest = item_dir / MANIFEST_NAME
    if manifest.is_file():
        details["manifest_sha256"] = sha256_bytes(manifest.read_bytes())
    entry = _log(store, case_id, action="verified", item_id=item_id, details=details, signer=signer)
    return Examination(case_id=case_id, item_dir=item_dir, report=report, entry=entry)


# -- reading the log ---------------------------------------------------------------------


def item_events(store: EvidenceStore, item_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The case holding the item, and the item's custody entries in log order."""
    case_id, _ = store.find_item(item_id)
    return case_id, events_for_item(store.case_dir(case_id), item_id)


def case_events(store: EvidenceStore, case_id: str) -> list[dict[str, Any]]:
    """Every custody entry of the case, in log order."""
    store.get_case(case_id)
    return read_events(store.case_dir(case_id))


# -- recovery after a crash --------------------------------------------------------------


def unlogged_items(store: EvidenceStore, case_id: str) -> list[str]:
    """Complete items with no ``captured`` custody entry.

    The entry is appended right after the item is published; a crash between the two
    leaves a signed item the log does not know. It is reported, never hidden. An item
    whose capture is still logging it (its staging lock held) is not unlogged.
    """
    logged = {
        event.get("item_id")
        for event in read_events(store.case_dir(case_id))
        if event["action"] == "captured"
    }
    return [
        item_id
        for item_id in store.list_items(case_id)
        if item_id not in logged and not store.is_being_published(case_id, item_id)
    ]


def repair_case(store: EvidenceStore, case_id: str, *, signer: Signer) -> Repair:
    """Repair a case's log after a crash: ``log-repaired``, then ``captured`` (recovered).

    First cuts a torn tail off the log, recording what it removed; then logs each item an
    interruption left unlogged, but only one that passes verification steps 1-6 and whose
    manifest names this case. Any other is left unlogged, in :attr:`Repair.refused`, and
    keeps failing verification, as it should.
    """
    store.get_case(case_id)
    log_entry = repair_log(
        store.case_dir(case_id), case_id=case_id, actor=signer.operator, signer=signer
    )
    recovered: list[str] = []
    refused: list[str] = []
    for item_id in unlogged_items(store, case_id):
        details = _recovered_details(store.item_dir(case_id, item_id), case_id)
        if details is None:
            refused.append(item_id)
            continue
        _log(store, case_id, action="captured", item_id=item_id, details=details, signer=signer)
        recovered.append(item_id)
    return Repair(log_entry=log_entry, recovered=tuple(recovered), refused=tuple(refused))


def _recovered_details(item_dir: Path, case_id: str) -> dict[str, Any] | None:
    """The details of a recovered ``captured`` entry; None if the item may not be logged."""
    report = verify_item(item_dir, custody_log=None)
    if not all(step.ok for step in report.steps if step.number in _RECOVERY_STEPS):
        return None
    try:
        data = (item_dir / MANIFEST_NAME).read_bytes()
        manifest = load_manifest(data)
        files = manifest_files(manifest)
    except (OSError, IntegrityError):
        return None  # changed since it verified: not the item that was checked
    if manifest["case_id"] != case_id:
        return None
    provenance = manifest["provenance"]
    return {
        "manifest_sha256": sha256_bytes(data),
        "requested_url": provenance.get("requested_url"),
        "final_url": provenance.get("final_url"),
        "status": manifest["status"],
        "files": len(files),
        "recovered": _RECOVERED,
        "manifest_created": manifest["created"],
        "manifest_signer": manifest["signer"]["fingerprint"],
    }
