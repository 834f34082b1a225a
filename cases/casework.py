"""Case actions that are also custody events: the record and its log entry together."""

from __future__ import annotations

from chain_of_custody.signing import Signer

from .custody import append_event
from .store import Case, EvidenceStore

__all__ = ["open_case_logged"]


def open_case_logged(
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
    append_event(
        store.case_dir(case.case_id),
        case_id=case.case_id,
        actor=signer.operator,
        action="case-opened",
        item_id=None,
        details={
            "title": case.title,
            "category": case.category,
            "investigator": case.investigator,
            "authority": case.authority,
        },
        signer=signer,
    )
    return case
