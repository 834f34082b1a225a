"""Render an export's reports: HTML with Jinja2, PDF by printing that HTML in Chromium.

The PDF is printed by the same Chromium the captures use (found as they find it, run with
the same flags, in a private home), from a private folder holding only the report and the
screenshots it shows. The page runs without JavaScript and may load nothing but files in
that folder: every other request is aborted, so printing a report sends nothing anywhere.
Page-supplied text (titles, the page's visible text) is shown with ``dir="auto"``, so a
right-to-left line reads right to left, and the fonts fall back as Chromium's do for the
page itself (emoji in colour where the emoji font is installed).
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe

from cases.case import CATEGORY_DESCRIPTIONS
from cases.export import ExportedItem, ExportView, Renderer
from chain_of_custody.bundle_manifest import CERTIFICATION_NAME, REPORT_HTML_NAME, REPORT_PDF_NAME
from chain_of_custody.errors import CaptureFailed
from chain_of_custody.item import SCREENSHOT_NAME, STAMP_NAME, TEXT_NAME, WARC_NAME
from chain_of_custody.verify import STAMP_STEP
from osint_capture.engine.browser import (
    BrowserChoice,
    browser_home,
    driver_temp_dir,
    launch_options,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

__all__ = ["build_renderer", "render_certification", "render_html"]

_TEXT_EXCERPT = 1500
_DETAIL_VALUE = 160
_PRINT_TIMEOUT_MS = 60_000

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("osint_capture.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# The certification is plain text: nothing in it may be HTML-escaped.
_TEXT_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("osint_capture.report", "templates"),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@contextlib.contextmanager
def build_renderer(browser: BrowserChoice) -> Iterator[Renderer]:
    """The renderer :func:`cases.export.export_case` calls: HTML, PDF, certification.

    Chromium is launched, in a thread of its own, when the first report is printed, and
    closed when the block ends.
    """
    with _Printer(browser) as printer:

        def render(view: ExportView) -> Mapping[str, bytes]:
            certification = render_certification(view)
            html = render_html(view, certification)
            return {
                REPORT_HTML_NAME: html.encode("utf-8"),
                REPORT_PDF_NAME: printer.print_pdf(html, view),
                CERTIFICATION_NAME: certification.encode("utf-8"),
            }

        yield render


def render_html(view: ExportView, certification: str) -> str:
    """``report.html``: screenshots referenced where the bundle holds them."""
    return _ENV.get_template("report.html.j2").render(**_context(view), certification=certification)


def render_certification(view: ExportView) -> str:
    """The draft FRE 902(13)/902(14) certification, blanks for the qualified person."""
    return _TEXT_ENV.get_template("certification.txt.j2").render(**_context(view))


# -- what the templates are given ----------------------------------------------------------


def _context(view: ExportView) -> dict[str, Any]:
    items = [_item(item, view) for item in view.items]
    tools = sorted({(i["tool"], i["browser"]) for i in items})
    return {
        "view": view,
        "case": view.case,
        "category": CATEGORY_DESCRIPTIONS.get(view.case.category, view.case.category),
        "items": items,
        "events": [_event(e) for e in view.events],
        "tools": tools,
        "notices": [(i["item_id"], n) for i in items for n in i["notices"]],
    }


def _item(item: ExportedItem, view: ExportView) -> dict[str, Any]:
    manifest = item.manifest
    prov: Mapping[str, Any] = manifest.get("provenance") or {}
    tool = prov.get("tool") or {}
    browser = prov.get("browser") or {}
    warc = item.file(WARC_NAME)
    screenshot = item.file(SCREENSHOT_NAME)
    size = _png_size(item.folder / SCREENSHOT_NAME) if screenshot else None
    events = [_event(e) for e in view.events if _concerns(e, item.item_id)]
    # What the item's RFC 3161 stamp says, as verification before export read it.
    stamp = next((s for s in item.checks if s.number == STAMP_STEP and s.ok), None)
    return {
        "item_id": item.item_id,
        "status": manifest.get("status", ""),
        "requested_url": prov.get("requested_url", ""),
        "final_url": prov.get("final_url", ""),
        "http_status": prov.get("http_status"),
        "started": prov.get("capture_started", ""),
        "ended": prov.get("capture_ended", ""),
        "investigator": prov.get("investigator", ""),
        "operator": prov.get("operator", ""),
        "authority": (prov.get("case") or {}).get("authority", ""),
        "tool": f"{tool.get('name', 'osint-capture')} {tool.get('version', '')}".strip(),
        "libraries": f"Playwright {tool.get('playwright', '?')}, warcio {tool.get('warcio', '?')}",
        "browser": f"{browser.get('name', 'Chromium')} {browser.get('version', '')}".strip(),
        "user_agent": browser.get("user_agent", ""),
        "viewport": prov.get("viewport") or {},
        "signer": (manifest.get("signer") or {}).get("fingerprint", ""),
        "signer_operator": (manifest.get("signer") or {}).get("operator", ""),
        "manifest_sha256": item.manifest_sha256,
        "timestamp": stamp.detail if stamp is not None else None,
        # Asked of a TSA when sealed (the manifest says where) but not obtained yet.
        "stamp_awaited": bool((prov.get("timestamp") or {}).get("tsa")),
        "stamp_file": f"items/{item.item_id}/{STAMP_NAME}",
        "created": manifest.get("created", ""),
        "title": (prov.get("page") or {}).get("title", ""),
        "text_lines": _text_excerpt(item),
        "screenshot": f"items/{item.item_id}/{SCREENSHOT_NAME}" if screenshot else None,
        "shot_size": size,
        # Taller than the figure's 120 mm box at the page's 180 mm width: only its top shows.
        "shot_cut": size is not None and size[1] * 180 > size[0] * 120,
        "warc_sha256": warc.sha256 if warc else None,
        "files": item.files,
        "notices": _notices(prov),
        "events": events,
        "checks": item.checks,
    }


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (None if it is not a PNG)."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _concerns(entry: Mapping[str, Any], item_id: str) -> bool:
    """The entry is about the item, or releases it (an export names its items)."""
    if entry.get("item_id") == item_id:
        return True
    released = (entry.get("details") or {}).get("items") or ()
    return entry.get("action") == "exported" and item_id in released


def _text_excerpt(item: ExportedItem) -> list[str]:
    path = item.folder / TEXT_NAME
    if item.file(TEXT_NAME) is None:
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(_TEXT_EXCERPT + 1)
    cut = len(text) > _TEXT_EXCERPT
    lines = [line for line in text[:_TEXT_EXCERPT].splitlines() if line.strip()]
    if cut:
        lines.append(f"[… the full text is in items/{item.item_id}/{TEXT_NAME}]")
    return lines


def _notices(prov: Mapping[str, Any]) -> list[str]:
    """What a reader must know before relying on the capture."""
    notices = [f"Partial capture: {reason}" for reason in prov.get("status_reasons") or ()]
    access = prov.get("access") or {}
    if access.get("allow_private_network"):
        used = ", ".join(access.get("private_network_used") or ()) or "none used"
        notices.append(
            "Captured with the lab-only private-network override (--allow-private-network): "
            f"the address was not on the public internet ({used}). Such a capture is for "
            "testing and training, not evidence of what the public could see."
        )
    robots = prov.get("robots") or {}
    for directive in ("noarchive", "noindex", "nofollow"):
        if robots.get(directive):
            notices.append(
                f"The page asks not to be archived or indexed: it gives the '{directive}' "
                "directive (robots meta tag or X-Robots-Tag header)."
            )
    blocked = access.get("blocked_requests") or ()
    if blocked:
        first = ", ".join(str(b.get("url", "")) for b in blocked[:3])
        notices.append(
            f"{len(blocked)} request(s) the page made were blocked by the lawful-access "
            f"rules and not fetched (for example {first}); the page may look different to "
            "a visitor whose browser fetches them."
        )
    return notices


def _event(entry: Mapping[str, Any]) -> dict[str, Any]:
    details = entry.get("details") or {}
    parts = []
    for key in sorted(details):
        value = details[key]
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if len(shown) > _DETAIL_VALUE:
            shown = shown[:_DETAIL_VALUE] + "…"
        parts.append(f"{key}: {shown}")
    return {
        "seq": entry.get("seq"),
        "time": entry.get("time", ""),
        "action": entry.get("action", ""),
        "actor": entry.get("actor", ""),
        "item_id": entry.get("item_id") or "",
        "details": "; ".join(parts),
        "signer": (entry.get("signer") or {}).get("fingerprint", ""),
    }


# -- printing ------------------------------------------------------------------------------


class _Printer:
    """One Chromium, launched in its own thread and kept until closed, that prints
    reports to PDF. Playwright's objects belong to the thread that made them, so every
    print runs there; callers hand it a job and wait for its result."""

    def __init__(self, browser: BrowserChoice) -> None:
        self._browser = browser
        self._jobs: queue.Queue[tuple[str, ExportView, Future[bytes]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="report-printer", daemon=True)

    def __enter__(self) -> _Printer:
        tempfile.gettempdir()  # fixed now: the driver's start changes TMPDIR for a moment
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(_PRINT_TIMEOUT_MS / 1000 * 2)

    def print_pdf(self, html: str, view: ExportView) -> bytes:
        # Launched at the first print, not before: verification keeps both cores busy,
        # copying into the zip leaves one for the browser.
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        result: Future[bytes] = Future()
        self._jobs.put((html, view, result))
        return result.result()

    def _run(self) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        try:
            with browser_home() as home:
                with driver_temp_dir(home):
                    playwright = sync_playwright().start()
                try:
                    launched = playwright.chromium.launch(**launch_options(self._browser, home))
                    try:
                        while (job := self._jobs.get()) is not None:
                            html, view, result = job
                            try:
                                result.set_result(_print_pdf(launched, html, view))
                            except PlaywrightError as exc:
                                result.set_exception(_print_failed(exc))
                            except BaseException as exc:
                                result.set_exception(exc)
                    finally:
                        launched.close()
                finally:
                    playwright.stop()
        except PlaywrightError as exc:
            self._fail_all(_print_failed(exc))
        except BaseException as exc:
            self._fail_all(exc)

    def _fail_all(self, error: BaseException) -> None:
        """The browser could not start: every print asked for, now or later, fails."""
        while (job := self._jobs.get()) is not None:
            job[2].set_exception(error)


def _print_failed(exc: Exception) -> CaptureFailed:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CaptureFailed(
        f"the report PDF could not be printed: {first}",
        hint="`osint-capture doctor` checks the browser",
    )


def _print_pdf(launched: Browser, html: str, view: ExportView) -> bytes:
    folder = Path(tempfile.mkdtemp(prefix="osint-capture-report-"))
    try:
        for item in view.items:
            if item.file(SCREENSHOT_NAME) is not None:
                target = folder / "items" / item.item_id
                target.mkdir(parents=True)
                shutil.copyfile(item.folder / SCREENSHOT_NAME, target / SCREENSHOT_NAME)
        page_file = folder / REPORT_HTML_NAME
        page_file.write_text(html, encoding="utf-8")
        allowed = folder.resolve().as_uri() + "/"

        def only_the_report(route: Route) -> None:
            url = route.request.url
            if url.startswith(allowed) and ".." not in url:
                route.continue_()
            else:
                route.abort("blockedbyclient")

        footer = (
            '<div style="font-size:8px;width:100%;padding:0 15mm;font-family:serif;'
            'display:flex;justify-content:space-between;color:#333">'
            f"<span>Case {_escape(view.case.case_id)} · bundle {_escape(view.bundle_name)} · "
            f"exported {_escape(view.exported_at)}</span>"
            '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span>'
            "</span></div>"
        )
        context = launched.new_context(java_script_enabled=False)
        try:
            context.route("**/*", only_the_report)
            page = context.new_page()
            page.goto(page_file.as_uri(), wait_until="load", timeout=_PRINT_TIMEOUT_MS)
            return page.pdf(
                format="Letter",
                print_background=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=footer,
                margin={"top": "18mm", "bottom": "20mm", "left": "18mm", "right": "18mm"},
            )
        finally:
            context.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _escape(text: str) -> str:
    return str(markupsafe.escape(text))
