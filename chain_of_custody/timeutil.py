"""UTC timestamps in one fixed text form: ``2026-11-25T12:00:00.123456Z``.

A single form (always UTC, always ``Z``, always microseconds) keeps records byte-stable
and lets timestamps be compared as text as well as parsed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_utc", "parse_utc", "utc_now"]

# [0-9], not \d: \d would also accept Arabic-Indic and other Unicode digits.
_UTC_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z"
)


def utc_now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    """``moment`` (which must carry a timezone) in the fixed UTC form."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timestamp without a timezone is ambiguous; use an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """Parse a UTC timestamp ending in ``Z`` (0 to 6 fractional digits) into an aware datetime.

    Raises ValueError for anything else, including offsets such as ``+02:00``: records
    are written in UTC only, so another offset means the text did not come from us.
    """
    match = _UTC_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a UTC timestamp like 2026-11-25T12:00:00.123456Z: {text!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid UTC timestamp: {text!r} ({exc})") from None
