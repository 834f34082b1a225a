"""Capture a public post into a case: the library entry point behind ``osint-capture capture``.

Order of work, so that nothing half-made ever looks like evidence:

1. The case exists and is open; the URL passes the lawful-access rules 1-3
   (refusals are logged as ``capture-refused`` and leave no item).
2. A locked staging folder ``items/.staging-<ITEM_ID>/`` is made.
3. The engine drives Chromium (see :mod:`osint_capture.engine`).
4. The WARC is written from the recorded exchanges and the renderings.
5. Every file is fsynced and hashed; ``manifest.json`` is built from the hashes
   and provenance, signed into ``manifest.json.sig``; ``SHA256SUMS`` lists all.
6. The staging folder is renamed into place: only now does the item exist.
7. A ``captured`` custody event binds the manifest's SHA-256.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from cases.custody import append_event, check_log_writable, read_events
from cases.store import Case, EvidenceStore
from chain_of_custody.durable import write_file
from chain_of_custody.errors import IntegrityError, Refused, UsageError
from chain_of_custody.item import (
    MANIFEST_NAME,
    PDF_NAME,
    RENDERINGS,
    ROBOTS_NAME,
    SCREENSHOT_NAME,
    SIGNATURE_NAME,
    TLS_CHAIN_NAME,
    WARC_NAME,
    media_type_of,
    seal_item,
)
from chain_of_custody.signing import Signer
from chain_of_custody.verify import verify_item
from osint_capture.engine.browser import BrowserChoice, os_description
from osint_capture.engine.session import CaptureOptions, EngineResult, run_capture
from osint_capture.engine.warc import ArchiveRecordRef, CaptureWarc
from osint_capture.lawful.addresses import classify_ip
from osint_capture.lawful.rules import (
    AccessRecord,
    check_target_url,
    inspect_page,
    redact_url,
    robots_verdict,
)

__all__ = [
    "CaptureReport",
    "capture_post",
    "log_unlogged_captures",
    "tool_version",
    "unlogged_items",
]


def tool_version() -> str:
    try:
        return metadata.version("osint-capture")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class CaptureReport:
    """What one capture produced; the CLI prints it (``--json`` keeps these names)."""

    item_id: str
    item_dir: Path
    status: str  # complete or partial
    requested_url: str
    final_url: str
    http_status: int
    title: str
    manifest: Path
    signature: Path
    warc: Path
    screenshot: Path | None
    pdf: Path | None
    manifest_sha256: str
    partial_reasons: tuple[str, ...]
    resources: int
    blocked: int
    robots_directives: tuple[str, ...]
    allow_private_network: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "item_dir": str(self.item_dir),
            "status": self.status,
            "requested_url": self.requested_url,
            "final_url": self.final_url,
            "http_status": self.http_status,
            "title": self.title,
            "manifest": str(self.manifest),
            "signature": str(self.signature),
            "warc": str(self.warc),
            "screenshot": str(self.screenshot) if self.screenshot else None,
            "pdf": str(self.pdf) if self.pdf else None,
            "manifest_sha256": self.manifest_sha256,
            "partial_reasons": list(self.partial_reasons),
            "resources": self.resources,
            "blocked_requests": self.blocked,
            "robots_directives": list(self.robots_directives),
            "allow_private_network": self.allow_private_network,
        }


def _refuse(
    store: EvidenceStore, case: Case, url: str, reason: str, signer: Signer, operator: str
) -> None:
    append_event(
        store.case_dir(case.case_id),
        case_id=case.case_id,
        actor=operator,
        action="capture-refused",
        item_id=None,
        details={"url": redact_url(url), "reason": reason},
        signer=signer,
    )


def capture_post(
    store: EvidenceStore,
    case_id: str,
    url: str,
    options: CaptureOptions,
    *,
    signer: Signer,
    browser: BrowserChoice,
) -> CaptureReport:
    """Capture ``url`` into case ``case_id``; see the module docstring for the order."""
    operator = signer.operator
    case = store.get_case(case_id)
    case_dir = store.case_dir(case_id)
    # A damaged custody log would leave a capture unlogged: find out before the browser starts.
    check_log_writable(case_dir, case_id=case_id)
    access = AccessRecord(options.allow_private_network, options.respect_robots)
    try:
        if case.status != "open":
            raise Refused(
                f"case '{case_id}' is closed; it accepts no new captures",
                hint="open a new case with its own authority",
            )
        check_target_url(url)
        access.target_verdicts(url)
    except Refused as exc:
        _refuse(store, case, url, exc.message, signer, operator)
        raise

    staging = store.new_item(case_id)
    with staging:
        try:
            result = asyncio.run(
                run_capture(
                    url,
                    options,
                    staging.path,
                    browser,
                    gate=access.gate,
                    inspector=inspect_page,
                    robots_policy=lambda text, status, u: robots_verdict(
                        text, status, u, respect=options.respect_robots
                    ),
                )
            )
            _check_connected_addresses(result, access)
        except Refused as exc:
            _refuse(store, case, url, exc.message, signer, operator)
            raise
        access.blocked = [
            {"url": b.url, "reason": b.reason, "time": b.time}
            for b in result.blocked
            if b.rule == "access"
        ]
        warc_path = staging.path / WARC_NAME
        warc_records = _write_warc(result, staging.path, warc_path, browser)
        shutil.rmtree(staging.path / ".bodies", ignore_errors=True)
        _write_extras(result, staging.path)

        status = "partial" if result.partial_reasons else "complete"
        provenance = _json_safe(
            _provenance(result, case, options, browser, access, operator, warc_records)
        )
        sealed = seal_item(
            staging.path,
            item_id=staging.item_id,
            case_id=case_id,
            status=status,
            provenance=provenance,
            signer=signer,
        )
        manifest_sha256 = sealed.manifest_sha256
        entries = sealed.files
        # The staging lock stays held until the capture is logged: `custody repair`
        # must not mistake an item being logged for one an interruption left unlogged.
        final = staging.finalize(keep_lock=True)

        try:
            append_event(
                case_dir,
                case_id=case_id,
                actor=operator,
                action="captured",
                item_id=staging.item_id,
                details={
                    "manifest_sha256": manifest_sha256,
                    "requested_url": url,
                    "final_url": result.final_url,
                    "status": status,
                    "files": len(entries),
                },
                signer=signer,
            )
        finally:
            staging.release()

    def has(name: str) -> Path | None:
        return (final / name) if (final / name).exists() else None

    return CaptureReport(
        item_id=staging.item_id,
        item_dir=final,
        status=status,
        requested_url=url,
        final_url=result.final_url,
        http_status=result.http_status,
        title=result.title,
        manifest=final / MANIFEST_NAME,
        signature=final / SIGNATURE_NAME,
        warc=final / WARC_NAME,
        screenshot=has(SCREENSHOT_NAME),
        pdf=has(PDF_NAME),
        manifest_sha256=manifest_sha256,
        partial_reasons=tuple(result.partial_reasons),
        resources=len(result.exchanges),
        blocked=sum(1 for b in result.blocked if b.rule == "access"),
        allow_private_network=options.allow_private_network,
        robots_directives=tuple(
            d for d in ("noarchive", "noindex", "nofollow") if provenance["robots"].get(d)
        ),
    )


def unlogged_items(store: EvidenceStore, case_id: str) -> list[str]:
    """Complete items with no ``captured`` custody entry.

    The entry is appended right after the item is published; a crash between the two
    leaves a signed item the log does not know. It is reported, never hidden.
    """
    logged = {
        e.get("item_id") for e in read_events(store.case_dir(case_id)) if e["action"] == "captured"
    }
    return [
        item
        for item in store.list_items(case_id)
        if item not in logged and not store.is_being_published(case_id, item)
    ]


def log_unlogged_captures(store: EvidenceStore, case_id: str, signer: Signer) -> list[str]:
    """Record a ``captured`` entry, marked as recovered, for each unlogged item."""
    recovered = []
    refused: list[str] = []
    for item_id in unlogged_items(store, case_id):
        item = store.item_dir(case_id, item_id)
        # Only an intact, signed item of this case is logged; anything else stays
        # unlogged and keeps failing verification, as it should.
        check = verify_item(item, custody_log=None)
        intact = all(step.ok for step in check.steps if step.number != 7)
        manifest_bytes = (item / MANIFEST_NAME).read_bytes()
        if not intact or json.loads(manifest_bytes).get("case_id") != case_id:
            refused.append(item_id)
            continue
        manifest = json.loads(manifest_bytes)
        prov = manifest.get("provenance", {})
        append_event(
            store.case_dir(case_id),
            case_id=case_id,
            actor=signer.operator,
            action="captured",
            item_id=item_id,
            details={
                "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
                "requested_url": prov.get("requested_url"),
                "final_url": prov.get("final_url"),
                "status": manifest.get("status"),
                "files": len(manifest.get("files", [])),
                "recovered": "logged after an interruption between publishing and logging",
                "manifest_created": manifest.get("created"),
                "manifest_signer": manifest.get("signer", {}).get("fingerprint"),
            },
            signer=signer,
        )
        recovered.append(item_id)
    if refused:
        raise IntegrityError(
            f"item(s) {', '.join(refused)} have no 'captured' entry and do not verify; "
            f"they are not logged automatically (logged: {len(recovered)})",
            hint="examine them with `osint-capture verify ITEM_ID`",
        )
    return recovered


def _check_connected_addresses(result: EngineResult, access: AccessRecord) -> None:
    """The browser resolves names itself: check where it actually connected.

    A name that resolved to a public address for the check and to a private one for
    the browser (DNS rebinding) is caught here.
    """
    if access.allow_private_network:
        return
    for ex in result.exchanges:
        if not ex.remote_ip:
            continue
        try:
            verdict = classify_ip(ex.remote_ip.strip("[]"))
        except UsageError:
            continue
        if not verdict.public:
            raise Refused(
                f"the browser connected to {verdict.address} ({verdict.reason}) for {ex.url}; "
                "only public addresses may be captured",
                hint="the name resolved differently for the browser than for the check",
            )


def _write_warc(result: EngineResult, item: Path, warc_path: Path, browser: BrowserChoice) -> int:
    with open(warc_path, "wb") as fh:
        warc = CaptureWarc(fh)
        info = warc.warcinfo(
            WARC_NAME,
            {
                "software": f"osint-capture/{tool_version()}",
                "browser": f"Chromium {result.browser_version}",
                "browser-executable": str(browser.executable or "playwright"),
                "user-agent": result.user_agent,
                "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                "requested-url": result.requested_url,
                "operating-system": os_description(),
                "python": platform.python_version(),
                "playwright": _version_of("playwright"),
                "warcio": _version_of("warcio"),
                "body-note": "response bodies are as Chromium decoded them; original "
                "Content-Encoding/Content-Length/Transfer-Encoding kept as X-Archive-Orig-*",
            },
            result.started,
        ).record_id
        main_ref: ArchiveRecordRef | None = None
        for ex in result.exchanges:
            ref = warc.exchange(ex, info)
            if ex is result.main_exchange:
                main_ref = ref
        target = result.final_url or result.requested_url
        for step, name, record_type in RENDERINGS:
            path = result.renderings.get(step)
            if path is None:
                continue
            warc.rendering(
                f"urn:osint-capture:{step}:{target}",
                record_type,
                path,
                media_type_of(name),
                result.ended,
                info,
                main_ref,
            )
        fh.flush()
        os.fsync(fh.fileno())
        return len(warc.records)


def _write_extras(result: EngineResult, item: Path) -> None:
    text = result.robots.get("text")
    if isinstance(text, str):
        write_file(item / ROBOTS_NAME, text.encode("utf-8"))
    if result.tls and result.tls.get("chain_pem"):
        write_file(item / TLS_CHAIN_NAME, "".join(result.tls["chain_pem"]).encode("ascii"))


_MAX_DEPTH = 40


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Page-supplied data (JSON-LD, meta tags) as canonical-JSON values.

    A page must never be able to fail a capture through its metadata: canonical JSON
    has no floats, so a ``"ratingValue": 4.5`` or a latitude is kept as the string of
    its decimal form; a lone UTF-16 surrogate (not encodable as UTF-8) becomes U+FFFD;
    structures nested deeper than 40 levels are kept as their JSON text.
    """
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, float):
        return repr(value)
    if depth >= _MAX_DEPTH and isinstance(value, dict | list | tuple):
        return _json_safe(json.dumps(value, default=str)[:65536])
    if isinstance(value, dict):
        return {_json_safe(str(k)): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return _json_safe(str(value))


def _version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


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


_VALUED_DIRECTIVES = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}


def _robots_directives(result: EngineResult) -> dict[str, Any]:
    meta_values: list[str] = []
    for key in ("robots", "googlebot"):
        meta_values += result.page_metadata.get("meta", {}).get(key, [])
    header_values: list[str] = []
    if result.main_exchange is not None:
        header_values = [
            v for k, v in result.main_exchange.response_headers if k.lower() == "x-robots-tag"
        ]
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
        "robots_txt": {k: v for k, v in result.robots.items() if k != "text"},
    }


def _provenance(
    result: EngineResult,
    case: Case,
    options: CaptureOptions,
    browser: BrowserChoice,
    access: AccessRecord,
    operator: str,
    warc_records: int,
) -> dict[str, Any]:
    page = result.page_metadata
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
        "requested_url": result.requested_url,
        "final_url": result.final_url,
        "redirect_chain": result.redirect_chain,
        "http_status": result.http_status,
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
        "workstation": {
            "hostname": socket.gethostname(),
            "os": os_description(),
            "os_user": getpass.getuser(),
            "python": platform.python_version(),
        },
        "tool": {
            "name": "osint-capture",
            "version": tool_version(),
            "playwright": _version_of("playwright"),
            "warcio": _version_of("warcio"),
            "argv": sys.argv[1:],
        },
        "browser": {
            "name": "Chromium",
            "version": result.browser_version,
            "executable": str(browser.executable) if browser.executable else "playwright-bundled",
            "found_by": browser.source,
            "user_agent": result.user_agent,
            "headless": True,
        },
        "viewport": {"width": options.viewport_width, "height": options.viewport_height},
        "tls": result.tls,
        "page": {
            "title": result.title,
            "authors": page.get("authors", []),
            "published": page.get("published", []),
            "opengraph": page.get("opengraph", {}),
            "meta": page.get("meta", {}),
            "json_ld": page.get("json_ld", []),
            "canonical": page.get("canonical"),
            "lang": page.get("lang"),
        },
        "robots": _robots_directives(result),
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
        "resources": {
            "responses": len(result.exchanges),
            "body_bytes": result.total_bytes,
            "incomplete": incomplete,
            "blocked": {
                rule: sum(1 for b in result.blocked if b.rule == rule)
                for rule in ("access", "dns", "size-limit")
            },
            "recorder_errors": result.recorder_errors,
        },
        "contained": {
            "popups_closed": result.popups,
            "downloads_refused": result.downloads,
            "dialogs_dismissed": result.dialogs,
        },
        "warc": {"file": WARC_NAME, "records": warc_records, "version": "WARC/1.1"},
    }
