"""Every case action together with its custody entry: one function per action.

Something done to a case or an item and the signed entry recording it belong together:
written in two places they drift apart (one command logs details another leaves out), and
a front end that forgets the entry leaves an act nobody can account for. So each action
here does the deed and appends its entry, with the details of FORMAT.md section 10, and
nothing outside :mod:`cases` calls :func:`~cases.custody.append_event`.

Actions that change something first make sure the log will take the entry
(:func:`~cases.custody.check_log_writable`), so a damaged log stops them before anything
changes rather than leaving an unlogged change behind. ``exported`` and ``timestamped``
are reserved in the vocabulary; their actions belong here once they exist. Repairing the
log and recovering unlogged items are in :mod:`cases.recovery` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.custody import CaseFacts, case_facts, case_facts_of_entries
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, Refused, UsageError
from chain_of_custody.signing import Signer
from chain_of_custody.verify import ItemReport

from .case import Case, CaseStatus, check_item_id
from .custody import (
    CUSTODY_FILE,
    append_event,
    check_log_writable,
    events_for_item,
    parsed_entries,
    read_events,
    read_log_bytes,
)
from .examine import verify_target
from .recovery import Repair, repair_case, unlogged_items
from .staging import STAGING_PREFIX, ItemStaging, Leftover
from .store import CASE_FILE, EvidenceStore

__all__ = [
    "Examination",
    "LoggedEvent",
    "Repair",
    "case_events",
    "case_for_capture",
    "check_case_loggable",
    "clean_case",
    "close_case",
    "item_events",
    "log_capture_refused",
    "log_captured",
    "note_item",
    "open_case",
    "publish_capture",
    "repair_case",
    "transfer_item",
    "unlogged_items",
    "verify_and_log",
]

_LOCK_TIMEOUT_S = 60
# The case facts the signed log states and case.json repeats, compared in this order.
_SIGNED_FIELDS = ("status", "title", "category", "investigator", "authority")


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
    """Close a case and log ``case-closed``; a damaged log refuses before the case changes.

    Whether the case is already closed is what its signed log says. All of it happens
    under the case lock, which a capture publishes under (:func:`publish_capture`): a
    capture either is logged before ``case-closed`` or is refused. A ``case.json`` already
    closed while the log is not is a close interrupted before its entry: this finishes it.
    """
    with store.case_lock(case_id):
        facts = _signed_facts(store, case_id)
        if facts.closed:
            raise UsageError(f"case '{case_id}' was already closed at {facts.closed_at}")
        check_case_loggable(store, case_id)
        case = store.mark_closed(case_id)
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


def case_for_capture(store: EvidenceStore, case_id: str) -> Case:
    """The case as its signed custody log states it: open or closed, and its facts.

    ``case.json`` is unsigned, so a capture takes nothing from it: whether the case is
    open, and the title, category, investigator and authority its manifest records, come
    from the log's ``case-opened`` and ``case-closed`` entries (read under the log's lock).
    Raises IntegrityError naming ``case.json`` when it disagrees with the log on any of
    them, and when the log cannot state them (missing, or not opened by ``case-opened``).
    ``opened_at`` and ``closed_at`` are the times of those entries.
    """
    record = store.get_case(case_id)
    facts = _signed_facts(store, case_id)
    status: CaseStatus = "closed" if facts.closed else "open"
    signed = {
        "status": status,
        "title": facts.title,
        "category": facts.category,
        "investigator": facts.investigator,
        "authority": facts.authority,
    }
    differences = [
        f"{name} is {getattr(record, name)!r} in {CASE_FILE} but {signed[name]!r} in the log"
        for name in _SIGNED_FIELDS
        if getattr(record, name) != signed[name]
    ]
    if differences:
        path = store.case_dir(case_id) / CASE_FILE
        interrupted_close = differences[0].startswith("status") and record.status == "closed"
        raise IntegrityError(
            f"case record {path} disagrees with the signed custody log of case '{case_id}': "
            + "; ".join(differences),
            hint=(
                f"a `case close` was interrupted; run `osint-capture case close {case_id}` "
                "to finish it"
                if interrupted_close and len(differences) == 1
                else "preserve the case folder as it is and have it examined; "
                "no capture goes into it meanwhile"
            ),
        )
    return Case(
        case_id=case_id,
        title=facts.title,
        category=facts.category,
        investigator=facts.investigator,
        authority=facts.authority,
        opened_at=facts.opened_at,
        status=status,
        closed_at=facts.closed_at if facts.closed else None,
    )


def publish_capture(
    store: EvidenceStore,
    case_id: str,
    staging: ItemStaging,
    *,
    manifest_sha256: str,
    requested_url: str,
    final_url: str,
    status: str,
    files: int,
    signer: Signer,
) -> Path:
    """Publish a sealed item and log ``captured`` for it, under the case lock.

    The lock is the one :func:`close_case` holds, and the case's signed state is read
    again under it: if the case was closed while the capture ran, nothing is published or
    logged (no capture entry may follow ``case-closed``) and Refused is raised; the
    staging folder is kept as a leftover, which ``case clean`` removes. Otherwise the item
    is published, logged and its staging lock released, all before the case lock is.
    Returns the published item's folder.
    """
    with store.case_lock(case_id):
        if case_for_capture(store, case_id).status != "open":
            staging.abandon()
            raise Refused(
                f"case '{case_id}' was closed while this capture ran; its files are kept as "
                f"a leftover: items/{STAGING_PREFIX}{staging.item_id} (the refusal is not "
                "logged: a closed case's log takes no capture entries)",
                hint=f"`osint-capture case clean {case_id}` removes it",
            )
        # The staging lock stays held until the capture is logged: `custody repair`
        # must not mistake an item being logged for one an interruption left unlogged.
        final = staging.finalize(keep_lock=True)
        try:
            log_captured(
                store,
                case_id,
                item_id=staging.item_id,
                manifest_sha256=manifest_sha256,
                requested_url=requested_url,
                final_url=final_url,
                status=status,
                files=files,
                signer=signer,
            )
        finally:
            staging.release()
    return final


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
    step 7 would have nothing to check the item against. (The item form of
    :func:`cases.examine.verify_target`, which also takes cases, folders and bundles.)
    """
    check_item_id(item_id)
    exam = verify_target(store, item_id, trusted=trusted, signer=signer)
    report = exam.examined.report
    assert isinstance(report, ItemReport) and exam.target.case_id is not None
    assert exam.entry is not None
    return Examination(exam.target.case_id, exam.target.path, report, exam.entry)


# -- reading the log ---------------------------------------------------------------------


def item_events(store: EvidenceStore, item_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The case holding the item, and the item's custody entries in log order."""
    case_id, _ = store.find_item(item_id)
    return case_id, events_for_item(store.case_dir(case_id), item_id)


def case_events(store: EvidenceStore, case_id: str) -> list[dict[str, Any]]:
    """Every custody entry of the case, in log order."""
    store.get_case(case_id)
    return read_events(store.case_dir(case_id))


# -- the signed state of a case ----------------------------------------------------------


def _signed_facts(store: EvidenceStore, case_id: str) -> CaseFacts:
    """The case's facts as its custody log's complete lines state them."""
    case_dir = store.case_dir(case_id)
    data = read_log_bytes(case_dir, case_id=case_id)
    if not data:
        raise IntegrityError(
            f"case '{case_id}' has no signed custody log ({case_dir / CUSTODY_FILE} is "
            "missing or empty), so whether it is open and under what authority is unknown",
            hint="preserve the case folder as it is and have it examined",
        )
    # A torn last line is crash damage, reported by check_case_loggable; the facts are in
    # the complete lines before it.
    complete = data[: data.rfind(b"\n") + 1]
    try:
        entries = parsed_entries(case_dir, complete)
    except CustodyLogDamaged:
        entries = ()
    if not entries:
        return case_facts(case_id, complete)  # raises, naming what is wrong in its words
    return case_facts_of_entries(case_id, complete[: complete.index(b"\n")], entries)
