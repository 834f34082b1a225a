"""Case records and the evidence store: layout on disk, locks, atomic writes, custody log.

Sits between the command-line front end (``osint_capture``) and the evidence formats
(``chain_of_custody``); it imports only the latter. Every case action that is a custody
event lives in :mod:`cases.actions`, with its entry; nothing outside this package appends
to a custody log.

Modules: :mod:`~cases.case` (the case record, case and item ids), :mod:`~cases.staging`
(items under construction, leftovers of interrupted captures), :mod:`~cases.store` (the
evidence home), :mod:`~cases.custody` (appending to the log), :mod:`~cases.summary`
(one-line item summaries), :mod:`~cases.actions` (case actions and their entries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain_of_custody.lazy import lazy_exports

if TYPE_CHECKING:
    from cases.actions import (
        Examination,
        LoggedEvent,
        Repair,
        case_events,
        case_for_capture,
        check_case_loggable,
        clean_case,
        close_case,
        item_events,
        log_capture_refused,
        log_captured,
        note_item,
        open_case,
        publish_capture,
        repair_case,
        transfer_item,
        unlogged_items,
        verify_and_log,
    )
    from cases.case import CATEGORIES, CATEGORY_DESCRIPTIONS, Case, is_item_id, new_item_id

    # append_event and repair_log stay in cases.custody: outside this package a log is
    # written only through an action, so that no entry is made without its deed.
    from cases.custody import check_log_writable, events_for_item, read_events
    from cases.staging import ItemStaging, Leftover
    from cases.store import EvidenceStore, resolve_home
    from cases.summary import ItemSummary, item_summary

# Each name is loaded from its module on first use, so that importing one module of
# the package (the CLI's errors, a case's store) does not load all of them.
_EXPORTS = {
    "CATEGORIES": "cases.case",
    "CATEGORY_DESCRIPTIONS": "cases.case",
    "Case": "cases.case",
    "EvidenceStore": "cases.store",
    "Examination": "cases.actions",
    "ItemStaging": "cases.staging",
    "ItemSummary": "cases.summary",
    "Leftover": "cases.staging",
    "LoggedEvent": "cases.actions",
    "Repair": "cases.actions",
    "case_events": "cases.actions",
    "case_for_capture": "cases.actions",
    "check_case_loggable": "cases.actions",
    "check_log_writable": "cases.custody",
    "clean_case": "cases.actions",
    "close_case": "cases.actions",
    "events_for_item": "cases.custody",
    "is_item_id": "cases.case",
    "item_events": "cases.actions",
    "item_summary": "cases.summary",
    "log_capture_refused": "cases.actions",
    "log_captured": "cases.actions",
    "new_item_id": "cases.case",
    "note_item": "cases.actions",
    "open_case": "cases.actions",
    "publish_capture": "cases.actions",
    "read_events": "cases.custody",
    "repair_case": "cases.actions",
    "resolve_home": "cases.store",
    "transfer_item": "cases.actions",
    "unlogged_items": "cases.actions",
    "verify_and_log": "cases.actions",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

__all__ = [
    "CATEGORIES",
    "CATEGORY_DESCRIPTIONS",
    "Case",
    "EvidenceStore",
    "Examination",
    "ItemStaging",
    "ItemSummary",
    "Leftover",
    "LoggedEvent",
    "Repair",
    "case_events",
    "case_for_capture",
    "check_case_loggable",
    "check_log_writable",
    "clean_case",
    "close_case",
    "events_for_item",
    "is_item_id",
    "item_events",
    "item_summary",
    "log_capture_refused",
    "log_captured",
    "new_item_id",
    "note_item",
    "open_case",
    "publish_capture",
    "read_events",
    "repair_case",
    "resolve_home",
    "transfer_item",
    "unlogged_items",
    "verify_and_log",
]
