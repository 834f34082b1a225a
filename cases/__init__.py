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

from .actions import (
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
from .case import CATEGORIES, CATEGORY_DESCRIPTIONS, Case, is_item_id, new_item_id

# append_event and repair_log stay in cases.custody: outside this package a log is
# written only through an action, so that no entry is made without its deed.
from .custody import check_log_writable, events_for_item, read_events
from .staging import ItemStaging, Leftover
from .store import EvidenceStore, resolve_home
from .summary import ItemSummary, item_summary

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
