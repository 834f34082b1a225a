"""The provenance of a capture: who, when, where, with what, and what the page was.

It goes into the signed manifest (``provenance``, docs/FORMAT.md section 5) and, in part,
into the WARC's ``warcinfo`` record. Everything a page supplies is made safe for
canonical JSON first (:func:`json_safe`), so a page can never fail a capture through its
metadata.
"""

from __future__ import annotations

import functools
import getpass
import json
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

from cases.case import Case
from chain_of_custody.item import WARC_NAME
from osint_capture.engine.browser import BrowserChoice, os_description
from osint_capture.engine.model import CaptureOptions, EngineResult
from osint_capture.lawful.robots import robots_directives
from osint_capture.lawful.rules import AccessRecord

__all__ = ["build_provenance", "json_safe", "tool_version", "version_of", "warcinfo_fields"]

_MAX_DEPTH = 40


# Cached: the versions of the code this process runs, which an upgrade on disk during a
# batch does not change (and each lookup scans the installed packages' metadata).
@functools.cache
def tool_version() -> str:
    try:
        return metadata.version("osint-capture")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@functools.cache
def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def warcinfo_fields(result: EngineResult, browser: BrowserChoice) -> dict[str, str]:
    """The fields of the WARC's ``warcinfo`` record."""
    return {
        "software": f"osint-capture/{tool_version()}",
        "browser": f"Chromium {result.browser_version}",
        "browser-executable": str(browser.executable or "playwright"),
        "user-agent": result.user_agent,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "requested-url": result.requested_url,
        "operating-system": os_description(),
        "python": platform.python_version(),
        "playwright": version_of("playwright"),
        "warcio": version_of("warcio"),
        "body-note": "response bodies are as Chromium decoded them; original "
        "Content-Encoding/Content-Length/Transfer-Encoding kept as X-Archive-Orig-*",
    }


def json_safe(value: Any, depth: int = 0) -> Any:
    """Page-supplied data (JSON-LD, meta tags) as canonical-JSON values.

    Canonical JSON has no floats, so a ``"ratingValue": 4.5`` or a latitude is kept as
    the string of its decimal form; a lone UTF-16 surrogate (not encodable as UTF-8)
    becomes U+FFFD; structures nested deeper than 40 levels are kept as their JSON text.
    """
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, float):
        return repr(value)
    if depth >= _MAX_DEPTH and isinstance(value, dict | list | tuple):
        return json_safe(json.dumps(value, default=str)[:65536])
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    return json_safe(str(value))


def build_provenance(
    result: EngineResult,
    case: Case,
    options: CaptureOptions,
    browser: BrowserChoice,
    access: AccessRecord,
    operator: str,
    warc_records: int,
) -> dict[str, Any]:
    """``provenance`` of the manifest, safe for canonical JSON."""
    record = {
        "requested_url": result.requested_url,
        "final_url": result.final_url,
        "redirect_chain": result.redirect_chain,
        "http_status": result.http_status,
        "navigations": result.navigations or [_only_navigation(result)],
        "browser_error_page": result.browser_error_page,
        "browser_crash": result.crash,
        "capture_started": result.started,
        "capture_ended": result.ended,
        "clock": _clock_source(),
        "case": {
            "case_id": case.case_id,
            "title": case.title,
            "category": case.category,
            "authority": case.authority,
        },
        "investigator": case.investigator,
        "operator": operator,
        "workstation": _workstation(),
        "tool": {
            "name": "osint-capture",
            "version": tool_version(),
            "playwright": version_of("playwright"),
            "warcio": version_of("warcio"),
            "argv": sys.argv[1:],
        },
        "browser": _browser_record(result, browser),
        "viewport": {"width": options.viewport_width, "height": options.viewport_height},
        "tls": result.tls,
        "page": _page_record(result),
        "robots": _robots_record(result),
        "options": options.as_record(),
        "access": access.as_record(),
        "steps": [
            {
                "name": s.name,
                "state": s.state,
                "started": s.started,
                "ended": s.ended,
                "detail": s.detail,
            }
            for s in result.steps
        ],
        "status_reasons": result.partial_reasons,
        "resources": _resources_record(result),
        "contained": {
            "popups_closed": result.popups,
            "downloads_refused": result.downloads,
            "dialogs_dismissed": result.dialogs,
        },
        "warc": {"file": WARC_NAME, "records": warc_records, "version": "WARC/1.1"},
    }
    safe: dict[str, Any] = json_safe(record)
    return safe


def _only_navigation(result: EngineResult) -> dict[str, Any]:
    """The page's one document, when it never moved itself on (or was not rendered)."""
    return {
        "url": result.final_url or result.requested_url,
        "status": result.http_status,
        "redirect_chain": [hop["url"] for hop in result.redirect_chain],
    }


def _workstation() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "os": os_description(),
        "os_user": getpass.getuser(),
        "python": platform.python_version(),
    }


def _browser_record(result: EngineResult, browser: BrowserChoice) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": "Chromium",
        "version": result.browser_version,
        "executable": str(browser.executable) if browser.executable else "playwright-bundled",
        "found_by": browser.source,
        "user_agent": result.user_agent,
        "headless": True,
    }
    if result.context is not None:
        record["context"] = result.context.as_record()
    return record


def _page_record(result: EngineResult) -> dict[str, Any]:
    page = result.page_metadata
    return {
        "title": result.title,
        "authors": page.get("authors", []),
        "published": page.get("published", []),
        "opengraph": page.get("opengraph", {}),
        "meta": page.get("meta", {}),
        "json_ld": page.get("json_ld", []),
        "canonical": page.get("canonical"),
        "lang": page.get("lang"),
    }


def _robots_record(result: EngineResult) -> dict[str, Any]:
    meta = result.page_metadata.get("meta", {})
    meta_values = [v for key in ("robots", "googlebot") for v in meta.get(key, [])]
    header_values: list[str] = []
    if result.main_exchange is not None:
        header_values = [
            v for k, v in result.main_exchange.response_headers if k.lower() == "x-robots-tag"
        ]
    return robots_directives(meta_values, header_values, result.robots)


def _resources_record(result: EngineResult) -> dict[str, Any]:
    incomplete = [
        {
            "url": ex.url,
            "truncated": ex.truncated,
            "failure": ex.failure,
            "canceled_by_browser": ex.canceled,
            "browser_initiated": ex.browser_initiated,
        }
        for ex in result.exchanges
        if ex.truncated or ex.failure
    ]
    return {
        "responses": len(result.exchanges),
        "body_bytes": result.total_bytes,
        "incomplete": incomplete,
        "blocked": {
            rule: sum(1 for b in result.blocked if b.rule == rule)
            for rule in ("access", "dns", "size-limit")
        },
        "recorder_errors": result.recorder_errors,
    }


def _clock_source() -> dict[str, Any]:
    """Where capture times come from, and whether the clock was synchronised."""
    synced: str = "unknown"
    try:
        out = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            synced = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "source": "operating-system clock (UTC), read by Python's datetime.now(timezone.utc)",
        "ntp_synchronized": synced,
        "timezone_offset_note": "all times are UTC with microseconds",
    }
