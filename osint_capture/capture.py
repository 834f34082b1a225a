"""Capture a public post into a case: the library behind ``osint-capture capture``.

:func:`capture_into_case` runs one capture on a shared :class:`CaptureSession`, in these
steps, so that nothing half-made ever looks like evidence:

1. **check the rules** — the case is open, the custody log can take the entry, the URL
   and its addresses pass the lawful-access rules (a refusal is logged as
   ``capture-refused`` and leaves no item);
2. **stage** — a locked staging folder ``items/.staging-<ITEM_ID>/``;
3. **run the engine** — Chromium in a fresh context (:mod:`osint_capture.engine`);
4. **re-check connected addresses** — where the browser really connected (DNS rebinding);
5. **write the WARC** — from the recorded exchanges and the renderings;
6. **build the provenance** (:mod:`osint_capture.provenance`);
7. **seal** — hash, sign, ``SHA256SUMS`` (:func:`chain_of_custody.item.seal_item`);
8. **publish and log** — rename into ``items/<ITEM_ID>/``, then the ``captured`` entry;
9. **timestamp** — when TSAs are configured, an RFC 3161 stamp of the signature
   (:func:`cases.timestamping.stamp_sealed`), bounded; a TSA down or wrong leaves the
   item sealed and "awaiting a timestamp", never fails the capture.

A browser that crashed mid-capture ends in :class:`BrowserCrashed` (exit 4) after step 8:
what it recorded until then is kept as a partial item, which the error names.

:func:`capture_post` is the one-URL capture: a session of one, whose Playwright driver
starts while step 1 runs (:func:`prepare_capture`).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cases.actions import (
    case_for_capture,
    check_case_loggable,
    log_capture_refused,
    publish_capture,
)
from cases.case import Case
from cases.staging import ItemStaging
from cases.store import EvidenceStore
from cases.timestamping import NOT_CONFIGURED_RECORD, StampOutcome, TsaConfig, stamp_sealed
from chain_of_custody.durable import write_file
from chain_of_custody.errors import BrowserCrashed, Refused
from chain_of_custody.item import (
    MANIFEST_NAME,
    PDF_NAME,
    ROBOTS_NAME,
    SCREENSHOT_NAME,
    SIGNATURE_NAME,
    TLS_CHAIN_NAME,
    WARC_NAME,
    SealedItem,
    seal_item,
)
from chain_of_custody.signing import Signer
from osint_capture.engine.browser import BrowserChoice
from osint_capture.engine.model import CaptureOptions, EngineResult
from osint_capture.engine.warc import write_capture_warc
from osint_capture.lawful.rules import AccessRecord, redact_text, redact_url
from osint_capture.provenance import build_provenance, warcinfo_fields

if TYPE_CHECKING:
    # Only as a type: a capture refused on sight imports nothing of Playwright.
    from osint_capture.engine.session import CaptureSession

__all__ = ["CaptureReport", "capture_into_case", "capture_post", "prepare_capture"]

_T = TypeVar("_T")
_ROBOTS_FLAGS = ("noarchive", "noindex", "nofollow")
_NO_TSA = StampOutcome("not timestamped", "no TSA configured")


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
    timestamp: StampOutcome = _NO_TSA

    @property
    def awaiting_timestamp(self) -> bool:
        return self.timestamp.state == "awaiting a timestamp"

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
            "timestamp": self.timestamp.as_json(),
            "awaiting_timestamp": self.awaiting_timestamp,
        }


@dataclass(frozen=True)
class _Capture:
    """One capture under way: where it goes, who signs, what the rules checked."""

    store: EvidenceStore
    case: Case
    url: str
    options: CaptureOptions
    signer: Signer
    access: AccessRecord
    tsa: TsaConfig | None = None

    def refuse(self, exc: Refused) -> Refused:
        """Log the refusal; return it as it may be shown (no URL's password in it)."""
        reason = redact_text(exc.message)
        log_capture_refused(
            self.store,
            self.case.case_id,
            url=redact_url(self.url),
            reason=reason,
            signer=self.signer,
        )
        return Refused(reason, hint=exc.hint)


def capture_post(
    store: EvidenceStore,
    case_id: str,
    url: str,
    options: CaptureOptions,
    *,
    signer: Signer,
    browser: BrowserChoice | None = None,
    tsa: TsaConfig | None = None,
) -> CaptureReport:
    """Capture ``url`` into case ``case_id`` on a browser of its own (``None``: found as
    the session starts). A capture the rules refuse launches no browser at all."""
    from osint_capture.engine.session import run_on_session

    return run_on_session(
        browser, lambda: prepare_capture(store, case_id, url, options, signer=signer, tsa=tsa)
    )


def prepare_capture(
    store: EvidenceStore,
    case_id: str,
    url: str,
    options: CaptureOptions,
    *,
    signer: Signer,
    tsa: TsaConfig | None = None,
) -> Callable[[CaptureSession], Awaitable[CaptureReport]]:
    """Step 1, then the other steps as work for a session (:func:`run_on_session`).

    Raises Refused, logged, when the rules refuse the capture.
    """
    capture = replace(_check_rules(store, case_id, url, options, signer), tsa=tsa)
    return functools.partial(_capture_checked, capture=capture)


async def capture_into_case(
    session: CaptureSession,
    store: EvidenceStore,
    case_id: str,
    url: str,
    options: CaptureOptions,
    *,
    signer: Signer,
    tsa: TsaConfig | None = None,
    browser_done: Callable[[], None] | None = None,
) -> CaptureReport:
    """Capture ``url`` into case ``case_id`` on ``session``, in the module's steps.

    ``browser_done`` is called once the browser steps, and the check of where they
    connected, have ended with a result (the page and its context are closed), before
    the item is sealed: a batch starts its next page then, while this one is written,
    logged and stamped. If they raise (a failure, a refusal), it is not called: the
    capture ends at once, and the caller knows it ended in the browser steps.
    """
    # Off the event loop: step 1 reads the custody log, resolves the target's name and
    # may log a refusal, while other captures on this session are recording.
    checked = await asyncio.to_thread(_check_rules, store, case_id, url, options, signer)
    capture = replace(checked, tsa=tsa)
    return await _capture_checked(session, capture, browser_done)


async def _capture_checked(
    session: CaptureSession,
    capture: _Capture,
    browser_done: Callable[[], None] | None = None,
) -> CaptureReport:
    """Steps 2 to 8, for a capture the rules allowed."""
    store, case_id, tsa, signer = capture.store, capture.case.case_id, capture.tsa, capture.signer
    with store.new_item(case_id) as staging:
        result = await _run_engine(session, capture, staging)
        if browser_done is not None:
            browser_done()
        if result.crash is not None and result.main_exchange is None:
            raise BrowserCrashed(
                f"the browser crashed ({result.crash}) before the page was received; "
                "nothing was kept",
                hint="try again; `osint-capture doctor` checks the browser",
            )
        # Disk work runs off the event loop (other captures may share it) and is never
        # abandoned half done, even on Ctrl-C: the staging folder is only discarded
        # once nothing writes to it any more.
        browser = session.browser_choice
        report = await _uncancelled(lambda: _seal_publish_log(capture, browser, staging, result))
    # Sealed, published and logged: the evidence exists whatever the TSA does, and waits
    # on it no longer than the bound (off the event loop, which other captures share).
    outcome = await asyncio.to_thread(
        stamp_sealed, store, case_id, report.item_id, tsa, signer=signer
    )
    report = replace(report, timestamp=outcome)
    if result.crash is not None:
        # A crash is a failed capture (exit 4), never a refusal; what was recorded until
        # then is evidence, sealed and logged as a partial item.
        raise BrowserCrashed(
            f"the browser crashed ({result.crash}); what was recorded until then is kept "
            f"as partial item {report.item_id}",
            hint="try again for a complete capture",
            item_id=report.item_id,
        )
    return report


def _check_rules(
    store: EvidenceStore,
    case_id: str,
    url: str,
    options: CaptureOptions,
    signer: Signer,
) -> _Capture:
    """Step 1: the case, its log and the lawful-access rules, before the browser."""
    # The case as its signed log states it (open or closed, its authority): case.json is
    # unsigned, and one that disagrees with the log stops the capture here.
    case = case_for_capture(store, case_id)
    # A damaged custody log would leave a capture unlogged: find out before the browser starts.
    check_case_loggable(store, case_id)
    access = AccessRecord(options.allow_private_network, options.respect_robots)
    capture = _Capture(store, case, url, options, signer, access)
    if case.status != "open":
        # Not logged: after its case-closed entry a log takes no capture entries (FORMAT.md
        # section 10), and the attempt changed nothing.
        raise Refused(
            f"case '{case_id}' is closed; it accepts no new captures",
            hint="open a new case with its own authority",
        )
    try:
        access.check_target(url)
    except Refused as exc:
        raise capture.refuse(exc) from None
    return capture


async def _run_engine(
    session: CaptureSession, capture: _Capture, staging: ItemStaging
) -> EngineResult:
    """Steps 3 and 4: the browser, then where it really connected."""
    access = capture.access
    try:
        result = await session.capture(
            capture.url, capture.options, staging.path, access.page_rules()
        )
        access.check_connected((ex.url, ex.remote_ip) for ex in result.exchanges if ex.remote_ip)
    except Refused as exc:
        raise capture.refuse(exc) from None
    access.record_blocked((b.url, b.reason, b.time) for b in result.blocked if b.rule == "access")
    return result


def _seal_publish_log(
    capture: _Capture, browser: BrowserChoice, staging: ItemStaging, result: EngineResult
) -> CaptureReport:
    """Steps 5 to 8: WARC, provenance, seal, publish, log."""
    warc_records = write_capture_warc(
        result, staging.path / WARC_NAME, warcinfo_fields(result, browser)
    )
    shutil.rmtree(staging.path / ".bodies", ignore_errors=True)
    _write_extras(result, staging.path)
    status = _status_of(result)
    provenance = build_provenance(
        result,
        capture.case,
        capture.options,
        browser,
        capture.access,
        capture.signer.operator,
        warc_records,
    )
    # Where the stamp will be asked for, or that none will: the stamp itself comes after
    # the signature, so the manifest can only say what was intended.
    provenance["timestamp"] = (
        dict(NOT_CONFIGURED_RECORD) if capture.tsa is None else capture.tsa.as_record()
    )
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=capture.case.case_id,
        status=status,
        provenance=provenance,
        signer=capture.signer,
    )
    # Under the case lock `case close` takes: a case closed while this capture ran refuses
    # it here, keeping the staging folder as a named leftover and logging nothing.
    final = publish_capture(
        capture.store,
        capture.case.case_id,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url=capture.url,
        final_url=result.final_url,
        status=status,
        files=len(sealed.files),
        signer=capture.signer,
    )
    return _report(capture, staging.item_id, final, result, sealed, provenance)


def _status_of(result: EngineResult) -> str:
    """``partial`` when anything made the capture incomplete, else ``complete``."""
    return "partial" if result.partial_reasons else "complete"


def _write_extras(result: EngineResult, item: Path) -> None:
    text = result.robots.get("text")
    if isinstance(text, str):
        write_file(item / ROBOTS_NAME, text.encode("utf-8"))
    if result.tls and result.tls.get("chain_pem"):
        write_file(item / TLS_CHAIN_NAME, "".join(result.tls["chain_pem"]).encode("ascii"))


def _report(
    capture: _Capture,
    item_id: str,
    final: Path,
    result: EngineResult,
    sealed: SealedItem,
    provenance: dict[str, Any],
) -> CaptureReport:
    def kept(name: str) -> Path | None:
        return (final / name) if (final / name).exists() else None

    return CaptureReport(
        item_id=item_id,
        item_dir=final,
        status=_status_of(result),
        requested_url=capture.url,
        final_url=result.final_url,
        http_status=result.http_status,
        title=result.title,
        manifest=final / MANIFEST_NAME,
        signature=final / SIGNATURE_NAME,
        warc=final / WARC_NAME,
        screenshot=kept(SCREENSHOT_NAME),
        pdf=kept(PDF_NAME),
        manifest_sha256=sealed.manifest_sha256,
        partial_reasons=tuple(result.partial_reasons),
        resources=len(result.exchanges),
        blocked=sum(1 for b in result.blocked if b.rule == "access"),
        allow_private_network=capture.options.allow_private_network,
        robots_directives=tuple(d for d in _ROBOTS_FLAGS if provenance["robots"].get(d)),
    )


async def _uncancelled(work: Callable[[], _T]) -> _T:
    """Run ``work`` in a thread and wait for it to end, however often cancelled meanwhile.

    Its own error is raised; once it has succeeded its result is returned even if the
    caller was cancelled meanwhile: what it wrote is evidence, and is reported.
    """
    task = asyncio.ensure_future(asyncio.to_thread(work))
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()  # raises the work's own error, if any
