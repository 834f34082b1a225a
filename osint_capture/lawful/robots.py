"""Rule 6, robots: the host's robots.txt (RFC 9309) and the page's own directives.

robots.txt is fetched by the browser and its verdict recorded; only with
``--respect-robots`` does a Disallow (or an unreachable robots.txt) refuse a capture.
``noarchive``, ``noindex`` and ``nofollow`` from ``<meta name="robots">`` and
``X-Robots-Tag`` are recorded and shown, never enforced: they address search engines,
not an investigation (docs/LAWFUL_USE.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protego import Protego

__all__ = ["robots_directives", "robots_verdict"]


def robots_verdict(
    text: str | None, status: int | None, url: str, *, respect: bool
) -> tuple[dict[str, Any], str | None]:
    """Rule 6: the robots.txt verdict for ``url``; a refusal only when respected."""
    if text is None:
        if status is not None and 400 <= status < 500:
            # RFC 9309 2.3.1.3: an unavailable robots.txt (4xx) allows everything.
            return {"verdict": "no robots.txt", "allowed": True, "enforced": respect}, None
        # RFC 9309 2.3.1.4: unreachable (5xx, network error) means assume complete disallow.
        record = {"verdict": "robots.txt unreachable", "allowed": False, "enforced": respect}
        if respect:
            return record, (
                f"robots.txt could not be fetched (HTTP {status})"
                if status
                else "robots.txt could not be fetched"
            ) + " and --respect-robots treats an unreachable robots.txt as disallow-all"
        return record, None
    # Protego follows RFC 9309 (longest match, * and $ wildcards); the standard
    # library's parser does not, and would call some disallowed URLs allowed.
    allowed = bool(Protego.parse(text).can_fetch(url, "*"))
    record = {
        "verdict": "allowed" if allowed else "disallowed",
        "allowed": allowed,
        "user_agent_checked": "*",
        "enforced": respect,
    }
    if not allowed and respect:
        return record, f"robots.txt disallows {url} and --respect-robots was given"
    return record, None


_VALUED_DIRECTIVES = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}


def robots_directives(
    meta_values: Iterable[str], header_values: Iterable[str], robots_txt: Mapping[str, Any]
) -> dict[str, Any]:
    """The page's robots directives as the manifest records them (``provenance.robots``).

    ``meta_values``: the contents of ``<meta name="robots|googlebot">``; ``header_values``:
    the page's ``X-Robots-Tag`` headers; ``robots_txt``: the robots.txt verdict.
    """
    meta_values, header_values = list(meta_values), list(header_values)
    tokens: set[str] = set()
    for value in meta_values + header_values:
        for raw in value.replace(";", ",").split(","):
            token = raw.strip().lower()
            head, colon, tail = token.partition(":")
            if colon and head.strip() not in _VALUED_DIRECTIVES:
                token = tail.strip()  # "googlebot: noindex" applies to a named crawler
            tokens.add(token)
    if "none" in tokens:
        tokens |= {"noindex", "nofollow"}
    return {
        "meta_robots": meta_values,
        "x_robots_tag": header_values,
        "noarchive": "noarchive" in tokens,
        "noindex": "noindex" in tokens,
        "nofollow": "nofollow" in tokens,
        "robots_txt": {k: v for k, v in robots_txt.items() if k != "text"},
    }
