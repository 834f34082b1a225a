"""Case records and the evidence store: layout on disk, locks, atomic writes, custody log.

Sits between the command-line front end (``osint_capture``) and the evidence formats
(``chain_of_custody``); it imports only the latter.
"""

from __future__ import annotations

from .custody import (
    append_event,
    check_log_writable,
    events_for_item,
    read_events,
    repair_log,
)
from .store import (
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    Case,
    EvidenceStore,
    ItemStaging,
    Leftover,
    is_item_id,
    new_item_id,
    resolve_home,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_DESCRIPTIONS",
    "Case",
    "EvidenceStore",
    "ItemStaging",
    "Leftover",
    "append_event",
    "check_log_writable",
    "events_for_item",
    "is_item_id",
    "new_item_id",
    "read_events",
    "repair_log",
    "resolve_home",
]
