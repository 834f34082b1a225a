"""Drive Chromium through one capture, as ordered, named steps.

Steps (each recorded with its state, times and what it found):

1. ``launch-browser``   a fresh browser and an empty context (no cookies, no
   stored logins, no extensions, service workers blocked, downloads refused,
   pop-ups closed and logged).
2. ``robots-txt``       the target host's robots.txt, fetched by the browser
   itself so it is in the WARC; its verdict is recorded.
3. ``navigate``         load the URL; every redirect hop is kept. HTTP 429 is
   honoured (``Retry-After``, bounded) and then given up.
4. ``access-check``     the lawful-access rules look at what loaded (login walls,
   bot challenges) before anything else happens.
5. ``settle``           wait for the load event and for the network to go quiet.
6. ``scroll``           scroll to the bottom, step by step, until the page stops
   growing, so lazy images and infinite-scroll content load.
7. ``screenshot``, ``pdf``, ``dom``, ``text``   the page as a person sees it.
8. ``metadata``         title, OpenGraph and JSON-LD post metadata, robots
   directives, the TLS certificate chain.

A step that runs out of time or fails makes the capture *partial*, with the
reason recorded; what the page showed is kept. The whole capture is bounded by
``time_limit``: loading steps stop early enough to leave time to render.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, WebSocketRoute, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from chain_of_custody.errors import CaptureFailed, Refused, UsageError
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.browser import BrowserChoice, chromium_args, sandbox_available
from osint_capture.engine.recorder import BlockedRequest, Exchange, Recorder, RequestGate
from osint_capture.lawful.rules import PageSignals

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "AccessInspector",
    "CaptureOptions",
    "EngineResult",
    "StepRecord",
    "run_capture",
]

DEFAULT_TIME_LIMIT = 60.0
DEFAULT_SIZE_LIMIT = 200 * 1024 * 1024
_MAX_RETRY_AFTER = 30.0
_MAX_429_ATTEMPTS = 3


@dataclass(frozen=True)
class CaptureOptions:
    """Every option a capture runs with; all of it is recorded in the manifest."""

    time_limit: float = DEFAULT_TIME_LIMIT
    size_limit: int = DEFAULT_SIZE_LIMIT
    allow_private_network: bool = False
    respect_robots: bool = False
    viewport_width: int = 1280
    viewport_height: int = 800
    settle_timeout: float = 10.0
    quiet_period: float = 0.5
    max_scroll_rounds: int = 30

    def __post_init__(self) -> None:
        if not 5 <= self.time_limit <= 3600:
            raise UsageError("--time-limit must be between 5 and 3600 seconds")
        if self.size_limit < 1024 * 1024:
            raise UsageError("--size-limit must be at least 1 MiB")
        if not (200 <= self.viewport_width <= 4096 and 200 <= self.viewport_height <= 4096):
            raise UsageError("--viewport must be between 200x200 and 4096x4096")
        if not 0.5 <= self.settle_timeout <= 600:
            raise UsageError("--settle-timeout must be between 0.5 and 600 seconds")

    def as_record(self) -> dict[str, Any]:
        # Integers only: the manifest is canonical JSON, which has no floats.
        return {
            "time_limit_ms": round(self.time_limit * 1000),
            "size_limit_bytes": self.size_limit,
            "allow_private_network": self.allow_private_network,
            "respect_robots": self.respect_robots,
            "viewport": f"{self.viewport_width}x{self.viewport_height}",
            "settle_timeout_ms": round(self.settle_timeout * 1000),
            "quiet_period_ms": round(self.quiet_period * 1000),
            "max_scroll_rounds": self.max_scroll_rounds,
        }


@dataclass(frozen=True)
class StepRecord:
    name: str
    state: str  # done, partial, failed, skipped
    started: str
    ended: str
    detail: str = ""


# Returns a refusal reason, or None when the page may be captured.
AccessInspector = Callable[[PageSignals], str | None]
# Given the robots.txt text (or None if unavailable) and the URL: (verdict, refusal or None).
RobotsPolicy = Callable[[str | None, int | None, str], tuple[dict[str, Any], str | None]]


@dataclass
class EngineResult:
    requested_url: str
    started: str
    ended: str = ""
    final_url: str = ""
    http_status: int = 0
    title: str = ""
    user_agent: str = ""
    browser_version: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    blocked: list[BlockedRequest] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    partial_reasons: list[str] = field(default_factory=list)
    renderings: dict[str, Path] = field(default_factory=dict)
    page_metadata: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, Any] | None = None
    redirect_chain: list[dict[str, Any]] = field(default_factory=list)
    robots: dict[str, Any] = field(default_factory=dict)
    popups: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    main_exchange: Exchange | None = None
    recorder_errors: list[str] = field(default_factory=list)
    total_bytes: int = 0


class _Clock:
    def __init__(self, limit: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + limit
        # Loading stops early enough to leave time for screenshot, PDF and DOM.
        self.load_deadline = self.deadline - min(15.0, limit * 0.3)

    def left(self, load: bool = False) -> float:
        end = self.load_deadline if load else self.deadline
        return max(0.0, end - time.monotonic())


class _Steps:
    def __init__(self, result: EngineResult) -> None:
        self._result = result

    def record(self, name: str, state: str, started: str, detail: str = "") -> None:
        self._result.steps.append(StepRecord(name, state, started, utc_now(), detail))
        if state in ("partial", "failed"):
            self._result.partial_reasons.append(f"{name}: {detail}")


_SIGNALS_JS = """
() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const pw = [...document.querySelectorAll('input[type=password]')].filter(visible);
  const forms = pw.map(p => (p.form ? p.form.innerText : '')).join(' ').slice(0, 500);
  const text = document.body ? document.body.innerText : '';
  const markers = [];
  const q = (sel, name) => { if (document.querySelector(sel)) markers.push(name); };
  // Visible challenge widgets only: an invisible score script (reCAPTCHA v3) on an
  // otherwise public page is not a barrier.
  q('.g-recaptcha, iframe[src*="recaptcha/api2/anchor"], iframe[title="reCAPTCHA"]', 'reCAPTCHA');
  q('.h-captcha, iframe[src*="hcaptcha.com"]', 'hCaptcha');
  q('.cf-turnstile, iframe[src*="challenges.cloudflare"]', 'Turnstile');
  q('#challenge-form, #challenge-stage, #cf-challenge-running', 'challenge form');
  const low = (document.title + ' ' + text.slice(0, 3000)).toLowerCase();
  for (const phrase of ['verify you are human', 'are you a robot', 'checking your browser',
                        'complete the security check', 'prove you are human']) {
    if (low.includes(phrase)) markers.push('"' + phrase + '"');
  }
  return {title: document.title, passwordFields: pw.length, textLength: text.trim().length,
          formText: forms, markers};
}
"""

_SCROLL_JS = """
async ([maxSteps, pause]) => {
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  let steps = 0;
  while (steps < maxSteps) {
    const before = window.scrollY;
    window.scrollBy(0, Math.max(200, Math.floor(window.innerHeight * 0.9)));
    steps += 1;
    await sleep(pause);
    const atBottom =
      window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2;
    if (atBottom || window.scrollY === before) break;
  }
  return document.documentElement.scrollHeight;
}
"""

_AT_BOTTOM_JS = "window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"

_METADATA_JS = """
() => {
  const meta = {};
  for (const m of document.querySelectorAll('meta[property], meta[name]')) {
    const key = (m.getAttribute('property') || m.getAttribute('name') || '').toLowerCase();
    if (!key) continue;
    if (key.startsWith('og:') || key.startsWith('article:') || key.startsWith('twitter:') ||
        ['author', 'description', 'robots', 'googlebot', 'date', 'keywords'].includes(key)) {
      (meta[key] = meta[key] || []).push(m.getAttribute('content') || '');
    }
  }
  const jsonld = [];
  for (const s of document.querySelectorAll('script[type="application/ld+json"]')) {
    try { jsonld.push(JSON.parse(s.textContent)); } catch (e) { jsonld.push({unparsable: true}); }
  }
  const canon = document.querySelector('link[rel=canonical]');
  return {title: document.title, meta, jsonld, canonical: canon ? canon.href : null,
          lang: document.documentElement.lang || null};
}
"""


def _ms(seconds: float) -> float:
    return max(1.0, seconds * 1000.0)


def _bound(clock: _Clock, cap: float | None = None, *, load: bool = False) -> float:
    """A timeout for one call: what is left of the capture, at most ``cap``.

    Every await on the page is bounded: a page stuck in ``while(true){}`` must not
    hold the capture past its time limit.
    """
    left = clock.left(load=load)
    return max(0.5, min(left, cap) if cap is not None else left)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _clean_text(text: str) -> tuple[str, int]:
    """UTF-8 cannot hold a lone UTF-16 surrogate (pages can contain them): each
    becomes U+FFFD, and the number replaced is reported."""
    cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if cleaned == text:
        return text, 0
    return cleaned, sum(1 for a, b in zip(text, cleaned, strict=True) if a != b)


def _header(exchange: Exchange, name: str) -> str | None:
    for key, value in exchange.response_headers:
        if key.lower() == name.lower():
            return value
    return None


def _retry_after(exchange: Exchange) -> float | None:
    value = _header(exchange, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _post_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    """Author and published time from OpenGraph/article tags and JSON-LD."""
    meta: dict[str, list[str]] = raw.get("meta", {})
    authors: list[str] = list(meta.get("article:author", [])) + list(meta.get("author", []))
    published: list[str] = list(meta.get("article:published_time", []))

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        author = node.get("author")
        for a in author if isinstance(author, list) else [author]:
            if isinstance(a, dict) and isinstance(a.get("name"), str):
                authors.append(a["name"])
            elif isinstance(a, str):
                authors.append(a)
        for key in ("datePublished", "dateCreated"):
            if isinstance(node.get(key), str):
                published.append(node[key])
        for key in ("@graph", "mainEntity"):
            if key in node:
                walk(node[key])

    walk(raw.get("jsonld", []))

    def dedup(values: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in values if v))

    return {
        "title": raw.get("title", ""),
        "authors": dedup(authors),
        "published": dedup(published),
        "opengraph": {k: v for k, v in meta.items() if k.startswith(("og:", "article:"))},
        "meta": {k: v for k, v in meta.items() if not k.startswith(("og:", "article:"))},
        "json_ld": raw.get("jsonld", []),
        "canonical": raw.get("canonical"),
        "lang": raw.get("lang"),
    }


def _pem(der_b64: str) -> str:
    body = der_b64.strip()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


async def run_capture(
    url: str,
    options: CaptureOptions,
    work_dir: Path,
    browser: BrowserChoice,
    *,
    gate: RequestGate | None = None,
    inspector: AccessInspector | None = None,
    robots_policy: RobotsPolicy | None = None,
) -> EngineResult:
    """Capture ``url`` into ``work_dir``; raise Refused or CaptureFailed, else a result.

    A result may be partial: ``partial_reasons`` says why.
    """
    clock = _Clock(options.time_limit)
    result = EngineResult(requested_url=url, started=utc_now())
    steps = _Steps(result)
    async with async_playwright() as pw:
        t = utc_now()
        try:
            chromium = await pw.chromium.launch(
                executable_path=str(browser.executable) if browser.executable else None,
                args=chromium_args(),
                # Playwright adds --no-sandbox unless told the sandbox is wanted.
                chromium_sandbox=sandbox_available(),
                headless=True,
                timeout=_ms(min(30.0, clock.left())),
            )
        except PlaywrightError as exc:
            raise CaptureFailed(
                f"the browser did not start: {str(exc).splitlines()[0]}",
                hint="run `osint-capture doctor`",
            ) from None
        try:
            result.browser_version = chromium.version
            context = await chromium.new_context(
                viewport={"width": options.viewport_width, "height": options.viewport_height},
                accept_downloads=False,
                service_workers="block",
                ignore_https_errors=False,
                java_script_enabled=True,
            )
            page = await context.new_page()
            context.on("page", lambda p: _contain_popup(p, result))
            page.on("download", lambda d: result.downloads.append(d.url))
            page.on("dialog", lambda d: _dismiss_dialog(d, result))
            cdp = await context.new_cdp_session(page)
            recorder = Recorder(cdp, work_dir / ".bodies", size_limit=options.size_limit, gate=gate)
            await recorder.start()
            if gate is not None:
                # CDP Fetch never pauses WebSocket handshakes: gate them here instead.
                await context.route_web_socket(
                    lambda _url: True, lambda ws: _gate_web_socket(ws, gate, recorder)
                )
            result.user_agent = await page.evaluate("navigator.userAgent")
            steps.record("launch-browser", "done", t, f"Chromium {result.browser_version}")
            try:
                await _capture_page(
                    page,
                    cdp,
                    recorder,
                    url,
                    options,
                    clock,
                    result,
                    steps,
                    inspector,
                    robots_policy,
                    work_dir,
                )
            finally:
                await recorder.stop()
                recorder.apply_sent_headers()
                result.exchanges = list(recorder.exchanges)
                result.blocked = list(recorder.blocked)
                result.recorder_errors = list(recorder.errors)
                result.total_bytes = recorder.total_bytes
                if recorder.size_limit_reached:
                    result.partial_reasons.append(
                        f"size limit of {options.size_limit} bytes reached; later bytes not kept"
                    )
            await context.close()
        finally:
            await chromium.close()
    if result.recorder_errors:
        result.partial_reasons.append(
            f"the recorder met {len(result.recorder_errors)} error(s), first: "
            f"{result.recorder_errors[0]}"
        )
    gated = [b for b in result.blocked if b.rule == "access"]
    if gated:
        # Something the page asked for was not fetched: the capture is not the whole page.
        result.partial_reasons.append(
            f"{len(gated)} request(s) blocked by the lawful-access rules, first: "
            f"{gated[0].url} ({gated[0].reason})"
        )
    for ex in result.exchanges:
        if ex.truncated and not (ex.is_redirect or ex.canceled or ex.browser_initiated):
            result.partial_reasons.append(f"response body incomplete ({ex.truncated}): {ex.url}")
    result.ended = utc_now()
    return result


async def _gate_web_socket(ws: WebSocketRoute, gate: RequestGate, recorder: Recorder) -> None:
    """Connect a page's WebSocket only if the gate allows its address.

    Its messages are not recorded in the WARC (a documented limit); what matters for
    the access rules is that a refused socket never connects.
    """
    verdict = await gate(ws.url)
    if verdict is None:
        ws.connect_to_server()
        return
    rule, reason = verdict
    recorder.blocked.append(BlockedRequest(url=ws.url, reason=reason, time=utc_now(), rule=rule))
    await ws.close(code=1008, reason="blocked by the capture's access rules")


# Event callbacks are synchronous; the coroutines they start are kept here until done.
_background: set[asyncio.Future[Any]] = set()


def _in_background(coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _contain_popup(popup: Page, result: EngineResult) -> None:
    result.popups.append(popup.url)
    _in_background(popup.close())


def _dismiss_dialog(dialog: Any, result: EngineResult) -> None:
    result.dialogs.append(f"{dialog.type}: {dialog.message}")
    _in_background(dialog.dismiss())


async def _capture_page(
    page: Page,
    cdp: Any,
    recorder: Recorder,
    url: str,
    options: CaptureOptions,
    clock: _Clock,
    result: EngineResult,
    steps: _Steps,
    inspector: AccessInspector | None,
    robots_policy: RobotsPolicy | None,
    work_dir: Path,
) -> None:
    if robots_policy is not None:
        await _robots_step(page, url, clock, result, steps, robots_policy)

    # navigate, honouring 429 Retry-After within a bound
    t = utc_now()
    attempts = 0
    waited = 0.0
    while True:
        attempts += 1
        first_new = len(recorder.exchanges)
        try:
            await page.goto(url, wait_until="commit", timeout=_ms(clock.left(load=True)))
        except PlaywrightTimeoutError:
            if _main_document(recorder, first_new) is None:
                steps.record("navigate", "failed", t, "nothing loaded before the time limit")
                raise CaptureFailed(
                    f"nothing loaded from {url} within the time limit", hint="is the site up?"
                ) from None
        except PlaywrightError as exc:
            message = str(exc).splitlines()[0]
            wall = _main_document(recorder, first_new)
            if wall is not None and wall.withheld and wall.body_size > 0:
                # A large file kept whole in the WARC; the browser was deliberately not
                # shown it, so its navigation "failed". Not a failed capture.
                break
            steps.record("navigate", "failed", t, message)
            if wall is not None and inspector is not None:
                # Chromium gives up on an auth challenge it cannot answer; the 401/407
                # that it got is what the access rules judge.
                refusal = inspector(_status_signals(wall, result))
                if refusal is not None:
                    raise Refused(refusal) from None
            if "ERR_TOO_MANY_REDIRECTS" in message:
                raise CaptureFailed(f"redirect loop at {url}") from None
            if "ERR_BLOCKED_BY_CLIENT" in message:
                # The page itself (or a redirect hop of it) was stopped before it left
                # the browser: say by which rule.
                hops = [b for b in recorder.blocked if b.time >= t]
                for rule, error in (("access", Refused), ("dns", CaptureFailed)):
                    hit = next((b for b in reversed(hops) if b.rule == rule), None)
                    if hit is not None:
                        raise error(f"{hit.reason} ({hit.url})") from None
            raise CaptureFailed(f"could not load {url}: {message}") from None
        current = _main_document(recorder, first_new)
        if current is None:
            steps.record("navigate", "failed", t, "no document was received")
            raise CaptureFailed(f"nothing loaded from {url}")
        if current.status != 429:
            break
        delay = _retry_after(current)
        if (
            delay is None
            or attempts >= _MAX_429_ATTEMPTS
            or waited + delay > _MAX_RETRY_AFTER
            or delay > clock.left(load=True)
        ):
            steps.record("navigate", "failed", t, f"HTTP 429 after {attempts} attempt(s)")
            raise CaptureFailed(
                f"the site answered HTTP 429 Too Many Requests {attempts} time(s)"
                + (f"; Retry-After {delay:g} s is beyond the bound" if delay else ""),
                hint="try again later",
            )
        waited += delay
        await asyncio.sleep(delay)
    final_doc = _main_document(recorder, first_new)
    if final_doc is None:  # pragma: no cover - the loop leaves only with a document
        raise CaptureFailed(f"nothing loaded from {url}")
    main = final_doc
    result.main_exchange = main
    if main.withheld:
        kept = "kept whole" if main.truncated is None else "kept up to the size limit"
        result.partial_reasons.append(
            f"the page itself is {main.withheld}: {kept} in the WARC "
            f"({main.body_size} bytes), not handed to the browser to keep memory bounded, "
            "so there is no screenshot, PDF or rendered text of it"
        )
    result.redirect_chain = [
        {"url": ex.url, "status": ex.status, "location": ex.location}
        for ex in recorder.exchanges[first_new:]
        if ex.network_id == main.network_id
    ]
    result.http_status = main.status
    steps.record(
        "navigate",
        "done",
        t,
        f"HTTP {main.status} after {len(result.redirect_chain) - 1} redirect(s)"
        + (f", {attempts - 1} retry after 429" if attempts > 1 else ""),
    )
    if main.withheld:
        # The browser holds no rendering of the file (and may still show the previous
        # page): render nothing rather than something else. The status-based access
        # rules still apply to it (a file behind a 401 is behind a login wall).
        if inspector is not None:
            refusal = inspector(_status_signals(main, result))
            if refusal is not None:
                steps.record("access-check", "failed", utc_now(), refusal)
                raise Refused(refusal)
        result.final_url = main.url
        for name in ("settle", "access-check", "scroll", "screenshot", "pdf", "dom", "text"):
            steps.record(name, "skipped", utc_now(), "the page is a file kept in the WARC")
        with contextlib.suppress(PlaywrightError, TimeoutError):
            await asyncio.wait_for(page.goto("about:blank"), timeout=_bound(clock, 5.0))
        await _metadata_step(page, cdp, clock, result, steps)
        return

    # settle: load event then network quiet
    t = utc_now()
    load_fired = True
    try:
        await page.wait_for_load_state(
            "load", timeout=_ms(min(options.settle_timeout, clock.left(load=True)))
        )
    except PlaywrightError:  # includes the timeout: either way, no load event to wait for
        load_fired = False

    if inspector is not None:
        await _access_step(page, result, steps, inspector, clock)

    quiet = await recorder.wait_quiet(
        options.quiet_period,
        time.monotonic() + min(options.settle_timeout, clock.left(load=True)),
    )
    if load_fired and quiet:
        steps.record("settle", "done", t, "load event fired and the network went quiet")
    else:
        what = [] if load_fired else ["the load event did not fire"]
        if not quiet:
            open_urls = recorder.inflight_urls()
            what.append(
                f"the network did not go quiet ({len(open_urls)} request(s) still open: "
                + ", ".join(open_urls[:3])
                + ")"
            )
        steps.record(
            "settle", "partial", t, "; ".join(what) + f" within {options.settle_timeout:g} s"
        )

    await _scroll_step(page, recorder, options, clock, steps)
    # Back to the top for the screenshot; a page that navigated away meanwhile is
    # still rendered as it now is, and the steps say so.
    with contextlib.suppress(PlaywrightError, TimeoutError):
        await asyncio.wait_for(page.evaluate("window.scrollTo(0, 0)"), timeout=_bound(clock))
    result.final_url = page.url
    await _render_steps(page, clock, result, steps, work_dir=work_dir)
    await _metadata_step(page, cdp, clock, result, steps)


def _status_signals(document: Exchange, result: EngineResult) -> PageSignals:
    """What the access rules can judge of a document the browser did not render."""
    chain = tuple(hop["url"] for hop in result.redirect_chain) or (document.url,)
    return PageSignals(
        url=document.url,
        title="",
        status=document.status,
        redirect_chain=chain,
        password_fields=0,
        visible_text_length=0,
        form_text="",
        challenge_markers=(),
    )


def _main_document(recorder: Recorder, first: int) -> Exchange | None:
    """The last hop of the first top-level document exchange made since ``first``."""
    docs = [ex for ex in recorder.exchanges[first:] if ex.resource_type == "Document"]
    if not docs:
        return None
    network_id = docs[0].network_id
    hops = [ex for ex in docs if ex.network_id == network_id]
    return hops[-1]


async def _robots_step(
    page: Page,
    url: str,
    clock: _Clock,
    result: EngineResult,
    steps: _Steps,
    policy: RobotsPolicy,
) -> None:
    t = utc_now()
    parts = urlsplit(url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    text: str | None = None
    status: int | None = None
    try:
        response = await page.goto(
            robots_url, wait_until="commit", timeout=_ms(min(10.0, clock.left(load=True)))
        )
        if response is not None:
            status = response.status
            body = await asyncio.wait_for(response.body(), timeout=_bound(clock, 10.0, load=True))
            text = body.decode("utf-8", errors="replace") if status == 200 else None
    except (PlaywrightError, TimeoutError) as exc:
        result.robots = {"url": robots_url, "error": _first_line(exc)}
    verdict, refusal = policy(text, status, url)
    result.robots = {"url": robots_url, "status": status, **result.robots, **verdict}
    if text is not None:
        result.robots["text"] = text
    steps.record("robots-txt", "done", t, str(verdict.get("verdict", "")))
    if refusal is not None:
        raise Refused(
            refusal, hint="captured without --respect-robots, robots.txt is informational"
        )


async def _access_step(
    page: Page, result: EngineResult, steps: _Steps, inspector: AccessInspector, clock: _Clock
) -> None:
    t = utc_now()
    try:
        raw = await asyncio.wait_for(page.evaluate(_SIGNALS_JS), timeout=_bound(clock, 10.0))
    except (PlaywrightError, TimeoutError) as exc:
        # Fail closed: a page that cannot be checked for a login wall or a challenge is
        # not captured.
        steps.record("access-check", "failed", t, _first_line(exc))
        raise Refused(
            f"the page could not be checked for a login wall or a bot challenge "
            f"({_first_line(exc)})",
            hint="lawful public-access rules 4 and 5 fail closed",
        ) from None
    signals = PageSignals(
        url=page.url,
        title=raw.get("title", ""),
        status=result.http_status,
        redirect_chain=tuple(hop["url"] for hop in result.redirect_chain),
        password_fields=int(raw.get("passwordFields", 0)),
        visible_text_length=int(raw.get("textLength", 0)),
        form_text=str(raw.get("formText", "")),
        challenge_markers=tuple(raw.get("markers", [])),
    )
    refusal = inspector(signals)
    if refusal is not None:
        steps.record("access-check", "failed", t, refusal)
        raise Refused(refusal)
    steps.record("access-check", "done", t, "public page: no login wall, no bot challenge")


async def _scroll_step(
    page: Page, recorder: Recorder, options: CaptureOptions, clock: _Clock, steps: _Steps
) -> None:
    t = utc_now()
    rounds = 0
    stable = 0
    height = 0
    try:
        while rounds < options.max_scroll_rounds and clock.left(load=True) > 1.0:
            rounds += 1
            new_height = int(
                await asyncio.wait_for(
                    page.evaluate(_SCROLL_JS, [60, 120]), timeout=max(1.0, clock.left(load=True))
                )
            )
            await recorder.wait_quiet(
                options.quiet_period, time.monotonic() + min(3.0, clock.left(load=True))
            )
            bottom = int(
                await asyncio.wait_for(page.evaluate(_AT_BOTTOM_JS), timeout=_bound(clock, 5.0))
            )
            final_height = int(
                await asyncio.wait_for(
                    page.evaluate("document.documentElement.scrollHeight"),
                    timeout=_bound(clock, 5.0),
                )
            )
            if final_height == new_height == height and bottom:
                stable += 1
                if stable >= 2:
                    break
            else:
                stable = 0
            height = final_height
    except (PlaywrightError, TimeoutError) as exc:
        steps.record("scroll", "failed", t, str(exc).splitlines()[0] if str(exc) else "timed out")
        return
    if stable >= 2:
        steps.record(
            "scroll", "done", t, f"page stopped growing at {height} px after {rounds} round(s)"
        )
    elif rounds >= options.max_scroll_rounds:
        steps.record(
            "scroll", "partial", t, f"scroll limit of {rounds} rounds reached at {height} px"
        )
    else:
        steps.record("scroll", "partial", t, f"time limit reached while scrolling ({height} px)")


async def _render_steps(
    page: Page, clock: _Clock, result: EngineResult, steps: _Steps, work_dir: Path
) -> None:
    async def one(
        name: str, filename: str, make: Callable[[Path, float], Awaitable[str | None]]
    ) -> None:
        t = utc_now()
        left = clock.left()
        if left < 0.5:
            steps.record(name, "failed", t, "no time left")
            return
        path = work_dir / filename
        try:
            note = await asyncio.wait_for(make(path, left), timeout=left)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one rendering failing must not lose the others
            steps.record(name, "failed", t, _first_line(exc))
            path.unlink(missing_ok=True)
            return
        result.renderings[name] = path
        steps.record(
            name, "done", t, f"{path.stat().st_size} bytes" + (f"; {note}" if note else "")
        )

    async def screenshot(path: Path, left: float) -> str | None:
        await page.screenshot(
            path=str(path), full_page=True, timeout=_ms(left), animations="disabled"
        )
        return None

    async def pdf(path: Path, left: float) -> str | None:
        await page.pdf(path=str(path), print_background=True)
        return None

    def write_clean(path: Path, text: str) -> str | None:
        cleaned, replaced = _clean_text(text)
        path.write_text(cleaned, encoding="utf-8")
        return f"{replaced} lone surrogate(s) replaced by U+FFFD" if replaced else None

    async def dom(path: Path, left: float) -> str | None:
        return write_clean(path, await page.content())

    async def text(path: Path, left: float) -> str | None:
        body = await page.evaluate("document.body ? document.body.innerText : ''")
        return write_clean(path, str(body))

    await one("screenshot", "screenshot.png", screenshot)
    await one("pdf", "page.pdf", pdf)
    await one("dom", "dom.html", dom)
    await one("text", "text.txt", text)


async def _metadata_step(
    page: Page, cdp: Any, clock: _Clock, result: EngineResult, steps: _Steps
) -> None:
    t = utc_now()
    try:
        raw = await asyncio.wait_for(page.evaluate(_METADATA_JS), timeout=max(0.5, clock.left()))
        result.page_metadata = _post_metadata(raw)
        result.title = str(raw.get("title", ""))
    except (PlaywrightError, TimeoutError) as exc:
        steps.record("metadata", "failed", t, str(exc).splitlines()[0] if str(exc) else "timed out")
        return
    main = result.main_exchange
    if main is not None and urlsplit(main.url).scheme == "https":
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(main.url))
        tls: dict[str, Any] = {"origin": origin, "http_protocol": main.protocol}
        details = main.security_details or {}
        for key in (
            "protocol",
            "keyExchange",
            "keyExchangeGroup",
            "cipher",
            "subjectName",
            "issuer",
            "validFrom",
            "validTo",
            "sanList",
            "certificateTransparencyCompliance",
        ):
            if key in details:
                tls[key] = details[key]
        try:
            answer = await asyncio.wait_for(
                cdp.send("Network.getCertificate", {"origin": origin}),
                timeout=max(0.5, clock.left()),
            )
            tls["chain_pem"] = [_pem(c) for c in answer.get("tableNames", [])]
        except (PlaywrightError, TimeoutError) as exc:
            tls["chain_error"] = str(exc).splitlines()[0] if str(exc) else "timed out"
        result.tls = tls
    steps.record(
        "metadata",
        "done",
        t,
        json.dumps(result.page_metadata.get("authors", []), ensure_ascii=False),
    )
