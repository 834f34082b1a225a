"""The case record (``<home>/<CASE_ID>/case.json``) and the identifiers of cases and items.

Both identifiers are used as folder names, so their shape is what keeps a case or item id
from naming a path outside the evidence home; every path built from one is checked here.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal

from chain_of_custody.canonical import check_depth
from chain_of_custody.errors import UsageError
from chain_of_custody.timeutil import parse_utc

__all__ = [
    "CASE_FORMAT",
    "CATEGORIES",
    "CATEGORY_DESCRIPTIONS",
    "Case",
    "CaseStatus",
    "check_case_id",
    "check_item_id",
    "is_case_id",
    "is_item_id",
    "new_item_id",
]

CASE_FORMAT = "osint-capture/case/1"

# Department policy IV.B.1 (a)-(e): the only purposes for which public posts may be captured.
CATEGORIES = ("missing-person", "wanted-person", "gang-activity", "online-crime", "crime-media")
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "missing-person": "IV.B.1(a) missing persons",
    "wanted-person": "IV.B.1(b) wanted persons",
    "gang-activity": "IV.B.1(c) gang participation",
    "online-crime": "IV.B.1(d) crimes perpetrated online, i.e. cyberbullying, cyberstalking",
    "crime-media": "IV.B.1(e) photos or videos of a crime posted by a participant or observer",
}

_CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ITEM_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")

CaseStatus = Literal["open", "closed"]


def new_item_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<8 hex>``: sorts by capture time, random tail avoids collisions."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_item_id(value: str) -> bool:
    """True when ``value`` has the ITEM_ID shape (and so is safe as a path component)."""
    return _ITEM_ID_RE.fullmatch(value) is not None


def is_case_id(value: str) -> bool:
    """True when ``value`` has the CASE_ID shape (and so is safe as a path component)."""
    return _CASE_ID_RE.fullmatch(value) is not None


def check_case_id(case_id: str) -> str:
    """``case_id`` itself if it has the CASE_ID shape; UsageError otherwise."""
    if not isinstance(case_id, str) or not is_case_id(case_id):
        raise UsageError(
            f"invalid case id {case_id!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return case_id


def check_item_id(item_id: str) -> str:
    """``item_id`` itself if it has the ITEM_ID shape; UsageError otherwise."""
    if not isinstance(item_id, str) or not is_item_id(item_id):
        raise UsageError(
            f"invalid item id {item_id!r}", hint="item ids look like 20240131T235959Z-0a1b2c3d"
        )
    return item_id


def _check_utc_timestamp(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"case {name} must be a UTC timestamp, not {value!r}")
    try:
        parse_utc(value)
    except ValueError as exc:
        raise UsageError(f"case {name}: {exc}") from None
    return value


def _categories_text() -> str:
    return ", ".join(f"{name} ({CATEGORY_DESCRIPTIONS[name]})" for name in CATEGORIES)


@dataclass(frozen=True)
class Case:
    """One investigation, as recorded in ``<home>/<CASE_ID>/case.json``."""

    case_id: str
    title: str
    category: str
    investigator: str
    authority: str
    opened_at: str
    status: CaseStatus
    closed_at: str | None
    format: str = CASE_FORMAT

    def __post_init__(self) -> None:
        check_case_id(self.case_id)
        if self.format != CASE_FORMAT:
            raise UsageError(
                f"unsupported case record format {self.format!r}",
                hint=f"this version of osint-capture reads {CASE_FORMAT}",
            )
        if self.category not in CATEGORIES:
            raise UsageError(
                f"invalid category {self.category!r}; valid categories: {_categories_text()}",
                hint="captures are only permitted for the purposes in policy IV.B.1",
            )
        for name in ("title", "investigator", "authority"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"case {name} must not be empty")
            # Stored stripped so the record reads the same however the flag was quoted.
            object.__setattr__(self, name, value.strip())
        _check_utc_timestamp(self.opened_at, "opened_at")
        if self.status == "open":
            if self.closed_at is not None:
                raise UsageError("an open case cannot have closed_at set")
        elif self.status == "closed":
            _check_utc_timestamp(self.closed_at, "closed_at")
        else:
            raise UsageError(f"case status must be 'open' or 'closed', not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The ``case.json`` text: sorted keys, indented, newline-terminated."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Case:
        if not isinstance(data, dict):
            raise UsageError("a case record must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown field(s) in case record: {', '.join(unknown)}")
        missing = sorted(known - set(data) - {"format"})
        if missing:
            raise UsageError(f"missing field(s) in case record: {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Case:
        try:
            check_depth(text if isinstance(text, str) else text.decode("utf-8"))
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"case record is not valid JSON: {exc}") from None
        return cls.from_dict(data)
