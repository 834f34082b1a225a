"""The named steps of one capture, in order; each is recorded with its state and times.

:data:`PAGE_STEPS` is the one list of them (``launch-browser`` comes before, from the
session):

``robots-txt``    the host's robots.txt, fetched by the browser so it is in the WARC;
``navigate``      load the URL, every redirect hop kept; HTTP 429 honoured, bounded;
``access-check``  the lawful-access rules judge what loaded (login walls, bot
                  challenges), after the load event; a page that cannot be checked is
                  refused (fail closed);
``settle``        the network goes quiet;
``scroll``        scroll to the bottom until the page stops growing (lazy images,
                  infinite-scroll comments);
``screenshot``, ``pdf``, ``dom``, ``text``, ``metadata``   see :mod:`.render`.

A step that times out or fails makes the capture *partial*; the rest still run. When the
page is a file withheld from the browser (a direct link to a video), the steps that need
a rendered page are recorded as ``skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from chain_of_custody.errors import CaptureFailed, Refused
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.exchange import Exchange
from osint_capture.engine.pagejs import AT_BOTTOM_JS, HEIGHT_JS, SCROLL_JS, SIGNALS_JS, STILL_JS
from osint_capture.engine.pagerun import PageRun, PageScriptError, bound, first_line, ms
from osint_capture.engine.render import (
    dom_step,
    metadata_step,
    pdf_step,
    screenshot_step,
    text_step,
)
from osint_capture.engine.robotsfetch import robots_step
from osint_capture.lawful.rules import PageSignals, redact_url
from osint_capture.lawful.static import signals_from_document

__all__ = ["PAGE_STEPS", "Step", "run_page_steps"]

_MAX_RETRY_AFTER = 30.0
_MAX_429_ATTEMPTS = 3
_WITHHELD_SKIP = "the page is a file kept in the WARC"
# What Playwright says when Chromium shows its own page for an error status with no body.
_EMPTY_ERROR = "ERR_HTTP_RESPONSE_CODE_FAILURE"
# Playwright's word for a navigation the browser turned into a download.
_DOWNLOAD = "Download is starting"
# How a document the browser would only download is described (``Exchange.withheld``).
_DOWNLOADED = "a file this browser downloads instead of showing"
_ACCESS_CHECK_TIME = 10.0


@dataclass(frozen=True)
class Step:
    """One named step; ``renders`` steps need a page the browser rendered."""

    name: str
    run: Callable[[PageRun], Awaitable[None]]
    renders: bool


async def run_page_steps(run: PageRun) -> None:
    """Run :data:`PAGE_STEPS` in order; raises Refused or CaptureFailed to stop.

    A crash of the browser stops the steps without raising: what was recorded until then
    is kept, and the result says it crashed (``EngineResult.crash``). A crash is never by
    itself a refusal, but a page it struck before the access check is judged on its
    document as received, and a wall there is refused.
    """
    for step in PAGE_STEPS:
        if run.crashed is not None:
            run.steps.record(step.name, "skipped", utc_now(), f"not run: {run.crashed}")
            continue
        if step.renders and run.withheld:
            run.steps.record(step.name, "skipped", utc_now(), _WITHHELD_SKIP)
            continue
        try:
            await step.run(run)
        except CaptureFailed:
            if run.crashed is None:
                raise
        # A refusal is never swallowed, crash or not: a wall is not evidence.
    if run.crashed is not None:
        _judge_after_crash(run)
    for finish in run.after_steps:
        await finish()


def _judge_after_crash(run: PageRun) -> None:
    """A page whose browser crashed before the access check judged it is judged on its
    document as received: a sign-in page that crashes the browser is still refused."""
    judged = any(
        s.name == "access-check" and s.state in ("done", "failed", "partial")
        for s in run.result.steps
    )
    if judged or run.main is None or run.main.withheld:
        return
    chain = tuple(hop["url"] for hop in run.result.redirect_chain)
    _judge_status(run, run.main, utc_now())
    _judge_document(run, run.main, chain, utc_now(), whole_needed=False)


# -- navigate -----------------------------------------------------------------------


async def navigate_step(run: PageRun) -> None:
    """``navigate``: load the URL, honouring 429 Retry-After within a bound."""
    t = utc_now()
    attempts, waited = 0, 0.0
    while True:
        attempts += 1
        first_new = len(run.recorder.exchanges)
        document, kept_whole = await _load(run, t, first_new)
        if kept_whole or document.status != 429:
            break
        delay = _retry_after(document)
        if (
            delay is None
            or attempts >= _MAX_429_ATTEMPTS
            or waited + delay > _MAX_RETRY_AFTER
            or delay > run.clock.left(load=True)
        ):
            run.steps.record("navigate", "failed", t, f"HTTP 429 after {attempts} attempt(s)")
            raise CaptureFailed(
                f"the site answered HTTP 429 Too Many Requests {attempts} time(s)"
                + (f"; Retry-After {delay:g} s is beyond the bound" if delay else ""),
                hint="try again later",
            )
        waited += delay
        await asyncio.sleep(delay)
    main = _main_document(run, first_new) or document
    _record_main(run, main, first_new, attempts, t)
    if main.withheld:
        await _withheld_document(run, main)


async def _load(run: PageRun, t: str, first_new: int) -> tuple[Exchange, bool]:
    """One navigation: the page's document (and whether it is a file kept whole in the
    WARC and withheld from the browser), or the error that says why there is none."""
    run.result.browser_error_page = False  # of this attempt (a 429 may come before)
    try:
        await run.page.goto(run.url, wait_until="commit", timeout=ms(run.clock.left(load=True)))
    except PlaywrightTimeoutError:
        if _main_document(run, first_new) is None:
            run.steps.record("navigate", "failed", t, "nothing loaded before the time limit")
            raise CaptureFailed(
                f"nothing loaded from {run.url} within the time limit", hint="is the site up?"
            ) from None
    except PlaywrightError as exc:
        wall = _main_document(run, first_new)
        message = first_line(exc)
        if wall is not None and wall.withheld:
            # A file kept in the WARC; the browser was deliberately not shown it, so its
            # navigation "failed". Not a failed capture.
            return wall, True
        if (
            wall is not None
            and _DOWNLOAD in message
            and wall.truncated is None
            and run.recorder.read_whole(wall.network_id)
        ):
            # A type this browser has no viewer for (the headless shell has none for
            # PDF): it turned the page into a download, which is refused. The server's
            # bytes were read whole while the response was paused; they are the
            # evidence, with nothing rendered in their place. A download whose bytes
            # were streamed to the browser instead is not known whole: it fails below.
            wall.withheld = f"{_DOWNLOADED} ({wall.mime_type or 'no type'})"
            return wall, True
        if wall is not None and wall.status >= 400 and _EMPTY_ERROR in message:
            # The server answered (a deleted post: 404 with an empty body) and Chromium
            # shows its own error page for it: that answer is the evidence. The status
            # rules still judge it (a bare 401 is a login wall).
            _judge_status(run, wall, t)
            run.result.browser_error_page = True
            return wall, False
        _navigation_failed(run, message, wall, t)
    current = _main_document(run, first_new)
    if current is None:
        run.steps.record("navigate", "failed", t, "no document was received")
        raise CaptureFailed(f"nothing loaded from {run.url}")
    return current, False


def _judge_status(run: PageRun, document: Exchange, t: str) -> None:
    """The status-based access rules on a document the browser did not render."""
    if run.rules.inspector is not None:
        refusal = run.rules.inspector(_status_signals(document, run))
        if refusal is not None:
            run.steps.record("navigate", "failed", t, refusal)
            raise Refused(refusal) from None


def _navigation_failed(run: PageRun, message: str, wall: Exchange | None, t: str) -> None:
    """Raise what a failed navigation means: a refusal, a redirect loop, a failure."""
    if wall is not None:
        # Chromium gives up on an auth challenge it cannot answer; the 401/407 that it
        # got is what the access rules judge.
        _judge_status(run, wall, t)
    run.steps.record("navigate", "failed", t, message)
    if "ERR_TOO_MANY_REDIRECTS" in message:
        raise CaptureFailed(f"redirect loop at {run.url}") from None
    if "ERR_BLOCKED_BY_CLIENT" in message:
        # The page itself (or a redirect hop of it) was stopped before it left the
        # browser: say by which rule.
        hops = [b for b in run.recorder.blocked if b.time >= t]
        for rule, error in (("access", Refused), ("dns", CaptureFailed)):
            hit = next((b for b in reversed(hops) if b.rule == rule), None)
            if hit is not None:
                raise error(f"{hit.reason} ({hit.url})") from None
    raise CaptureFailed(f"could not load {run.url}: {message}") from None


def _record_main(run: PageRun, main: Exchange, first_new: int, attempts: int, t: str) -> None:
    result = run.result
    run.main = result.main_exchange = main
    if main.withheld:
        kept = "kept whole" if main.truncated is None else "kept up to the size limit"
        shown = (
            "the browser shows no page for it (downloads are refused)"
            if main.withheld.startswith(_DOWNLOADED)
            else "not handed to the browser to keep memory bounded"
        )
        result.partial_reasons.append(
            f"the page itself is {main.withheld}: {kept} in the WARC "
            f"({main.body_size} bytes), {shown}, "
            "so there is no screenshot, PDF or rendered text of it"
        )
    result.redirect_chain = _chain_of(
        [ex for ex in run.recorder.exchanges[first_new:] if ex.network_id == main.network_id]
    )
    result.http_status = main.status
    run.steps.record(
        "navigate",
        "done",
        t,
        f"HTTP {main.status} after {len(result.redirect_chain) - 1} redirect(s)"
        + (f", {attempts - 1} retry after 429" if attempts > 1 else "")
        + (
            "; the answer had no body, so the browser shows its own error page"
            if result.browser_error_page
            else ""
        ),
    )


async def _withheld_document(run: PageRun, main: Exchange) -> None:
    """The browser holds no rendering of the file (and may still show the previous
    page): render nothing rather than something else. The status-based access rules
    still apply to it (a file behind a 401 is behind a login wall)."""
    if run.rules.inspector is not None:
        refusal = run.rules.inspector(_status_signals(main, run))
        if refusal is not None:
            run.steps.record("access-check", "failed", utc_now(), refusal)
            raise Refused(refusal)
    run.result.final_url = main.url
    with contextlib.suppress(PlaywrightError, TimeoutError):
        await asyncio.wait_for(run.page.goto("about:blank"), timeout=bound(run.clock, 5.0))


def _main_document(run: PageRun, first: int) -> Exchange | None:
    """The last hop of the first top-level document exchange made since ``first``."""
    docs = [ex for ex in run.recorder.exchanges[first:] if ex.resource_type == "Document"]
    if not docs:
        return None
    network_id = docs[0].network_id
    hops = [ex for ex in docs if ex.network_id == network_id]
    return hops[-1]


def _status_signals(document: Exchange, run: PageRun) -> PageSignals:
    """What the access rules can judge of a document the browser did not render."""
    chain = tuple(hop["url"] for hop in run.result.redirect_chain) or (document.url,)
    return PageSignals(url=document.url, title="", status=document.status, redirect_chain=chain)


def _retry_after(exchange: Exchange) -> float | None:
    value = next((v for k, v in exchange.response_headers if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


# -- access-check and settle ----------------------------------------------------------


async def access_step(run: PageRun) -> None:
    """``access-check``: after the load event, rules 4 and 5 judge the page.

    The page is read in an isolated world, where its scripts cannot hide a password box.
    A page that moves itself on (a meta refresh, a script) is read again once it has
    arrived, and judged again where it ends up (:func:`scroll_step`). A page that cannot
    be read by the deadline is judged on its status and on its document as the server
    sent it (:mod:`..lawful.static`); if neither shows a wall it is kept as partial with
    the reason: a timeout is not a login wall.
    """
    run.settle_started = utc_now()
    run.load_fired = await _wait_for_load(run)
    run.loaded_at = time.monotonic()
    if run.robots_fetch is not None:
        run.robots_fetch.start()  # held until the page had loaded (robots_step)
    # The DOM is watched from the load event on, not from after the check has read the
    # page: settle's still period then runs while the check does (a change resets it).
    with contextlib.suppress(PageScriptError, TimeoutError):
        await run.evaluate(STILL_JS, timeout=bound(run.clock, 0.5))
    if run.rules.inspector is None or run.main is None:
        return
    chain = tuple(hop["url"] for hop in run.result.redirect_chain)
    await _check_access(run, run.main, chain, "")


async def _check_access(
    run: PageRun, document: Exchange, chain: tuple[str, ...], where: str
) -> None:
    """Read the page's signals and judge them; refuse a wall (raises Refused)."""
    inspector = run.rules.inspector
    assert inspector is not None
    t = utc_now()
    started = time.monotonic()
    raw, problem = await _read_signals(run)
    if raw is None:
        if run.crashed is not None:
            return  # judged on the document once the steps stop (run_page_steps)
        _judge_document(run, document, chain, t)
        run.steps.record(
            "access-check",
            "partial",
            t,
            f"{where}the page could not be read for a login wall or a bot challenge within "
            f"{time.monotonic() - started:.0f} s ({problem}); judged on its HTTP status and the "
            "document as received, which show none: review the renderings before relying "
            "on this capture",
        )
        return
    signals = PageSignals.from_page_script(
        raw, url=_shown_url(run), status=document.status, redirect_chain=chain
    )
    refusal = inspector(signals)
    if refusal is not None:
        run.steps.record("access-check", "failed", t, where + refusal)
        raise Refused(refusal)
    run.steps.record(
        "access-check", "done", t, where + "public page: no login wall, no bot challenge"
    )


async def _read_signals(run: PageRun) -> tuple[dict[str, Any] | None, str]:
    """The page's signals, read until they come or the check's time is up."""
    deadline = time.monotonic() + bound(run.clock, _ACCESS_CHECK_TIME)
    problem = "timed out"
    unparsed = "nothing of its body had been parsed"
    seen_unparsed = False  # told even when a later read went unanswered
    while time.monotonic() < deadline and run.crashed is None:
        try:
            answer = await run.evaluate(SIGNALS_JS, timeout=max(0.5, deadline - time.monotonic()))
        except (PageScriptError, TimeoutError) as exc:
            problem = first_line(exc) if str(exc) else "timed out"
            # Most often the page is moving on (a meta refresh): read it once it has.
            await _before_reading_again(run, deadline)
            continue
        if isinstance(answer, dict):
            if not answer.get("unparsed"):
                return answer, ""
            problem, seen_unparsed = unparsed, True
            await _before_reading_again(run, deadline)
            continue
        problem = f"the page gave no answer ({type(answer).__name__})"
    if seen_unparsed and problem != unparsed:
        problem = f"{unparsed}; then {problem}"
    return None, problem


async def _before_reading_again(run: PageRun, deadline: float) -> None:
    """Wait for the page's (next) load event, bounded, and at least 0.2 s: that wait ends
    at once past the load deadline, or after a load event the page has since undone
    (document.open), and a page that answers at once with an error must not be read
    again in a spin."""
    waited = time.monotonic()
    await _wait_for_load(run, max(0.2, min(2.0, deadline - time.monotonic())))
    if time.monotonic() - waited < 0.2:
        await asyncio.sleep(max(0.0, min(0.2, deadline - time.monotonic())))


def _judge_document(
    run: PageRun,
    document: Exchange,
    chain: tuple[str, ...],
    t: str,
    *,
    whole_needed: bool = True,
) -> None:
    """Rules 4 and 5 on the HTML as the server sent it, every form counted as shown
    (the page itself could not be read); raises Refused for a wall, and, with
    ``whole_needed``, CaptureFailed when no wall shows in a document that was not
    received whole (a document the page abandoned to move on, a withheld file and one cut
    by the size limit excepted)."""
    inspector = run.rules.inspector
    if inspector is None:
        return
    static = signals_from_document(
        document.body_path, url=document.url, status=document.status, redirect_chain=chain
    )
    refusal = inspector(static)
    if refusal is not None:
        refusal += " (judged on the document as received: the page could not be read)"
        run.steps.record("access-check", "failed", t, refusal)
        raise Refused(refusal)
    if not whole_needed or document.canceled or document.withheld:
        return  # a crash keeps what was recorded; a page that moved on is judged there
    if document.truncated == "length":
        return  # cut by the size limit: judged on what was kept, as the rest is
    if document.truncated is not None or not document.complete:
        # What did not arrive may be the wall: a page that hangs its renderer in the task
        # that commits it never hands the recorder its document's bytes. With neither the
        # page nor the whole document to judge, nothing shows it is public.
        why = (
            f"it was cut: {document.truncated}"
            if document.truncated is not None
            else "the recorder had not received all of it"
        )
        reason = (
            "the page could not be read for a login wall or a bot challenge, and its "
            f"document was not received whole ({why}): nothing shows the page is public, "
            "so nothing of it is kept"
        )
        run.steps.record("access-check", "failed", t, reason)
        raise CaptureFailed(
            reason, hint="try again later; a page that keeps hanging the browser cannot be captured"
        )


async def _wait_for_load(run: PageRun, cap: float | None = None) -> bool:
    """Wait for the load event (bounded); whether it fired."""
    seconds = min(run.options.settle_timeout, run.clock.left(load=True))
    if cap is not None:
        seconds = min(seconds, cap)
    load = asyncio.ensure_future(run.page.wait_for_load_state("load", timeout=ms(seconds)))
    crash = asyncio.ensure_future(run.crash_event.wait())
    try:
        # A crashed page never fires its load event, nor says so: stop waiting at once.
        await asyncio.wait({load, crash}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        crash.cancel()
        if not load.done():
            load.cancel()  # also when this capture is cancelled (Ctrl-C) meanwhile
    if not load.done() or load.cancelled():
        await asyncio.wait([load])
        return False
    # PlaywrightError includes the timeout: either way, no load event to wait for.
    return load.exception() is None


def _shown_url(run: PageRun) -> str:
    """The address of what the browser shows; for its own error page, the document's."""
    url = run.page.url
    if url.startswith("chrome-error:") and run.main is not None:
        return run.main.url
    return url


async def _wait_still(
    run: PageRun,
    deadline: float,
    *,
    ignoring: frozenset[str] = frozenset(),
    after_load: bool = True,
    grown_past: int | None = None,
) -> str:
    """Wait until no request has been open for the quiet period — or, sooner, for the
    still period while the page's DOM has not changed for as long either — or the
    deadline: ``"quiet"`` if it went quiet, else ``"busy"``. Requests in ``ignoring`` do
    not count. With ``grown_past``, it also ends (``"grew"``) once the page is taller
    than that: there is more to scroll, and what is open is waited for by a later round.

    A page still loading something, or still changing, is waited for as before; one
    whose network and DOM have both stopped is not waited for any longer — but, with
    ``after_load``, never sooner than the quiet period after the load event, so that
    what a page starts shortly after loading (a timer, a deferred fetch) is waited for
    as it always was. A page that cannot answer (a script hogging it) is judged on its
    network alone.
    """
    options, recorder = run.options, run.recorder
    earliest = run.loaded_at + options.quiet_period if after_load else 0.0
    watching = True
    while (now := time.monotonic()) < deadline:
        quiet_for = recorder.quiet_for_ignoring(ignoring)
        if quiet_for >= options.quiet_period:
            return "quiet"
        # A DOM still for less than the still period cannot be still long enough sooner
        # than the rest of it: until then it is asked at the loop's 50 ms, not every 1 ms.
        dom_wait = 0.0
        if watching and grown_past is not None:
            try:
                height = int(await run.evaluate(HEIGHT_JS, timeout=min(0.5, deadline - now)))
            except (PageScriptError, TimeoutError, TypeError, ValueError):
                watching = False
            else:
                if height > grown_past:
                    return "grew"
        if watching and quiet_for >= options.still_period and now >= earliest:
            try:
                still_ms = float(await run.evaluate(STILL_JS, timeout=min(0.5, deadline - now)))
            except (PageScriptError, TimeoutError, TypeError, ValueError):
                watching = False
            else:
                if still_ms >= options.still_period * 1000 and (
                    recorder.quiet_for_ignoring(ignoring) >= options.still_period
                ):
                    return "quiet"
                dom_wait = options.still_period - still_ms / 1000
        wait = options.quiet_period - quiet_for
        if watching:
            wait = min(wait, max(options.still_period - quiet_for, earliest - now, dom_wait, 0.0))
        await asyncio.sleep(min(0.05, max(wait, 0.0), deadline - now) + 0.001)
    return "quiet" if recorder.quiet_for_ignoring(ignoring) >= options.quiet_period else "busy"


async def settle_step(run: PageRun) -> None:
    """``settle``: the load event fired (access-check waited for it), then no request
    open for the quiet period, or for the still period with the DOM unchanged as long.

    What a page starts shortly after its load event is waited for by the scroll that
    follows (its waits never end sooner than the quiet period after the load event), so
    scrolling begins as soon as the page is still rather than idling here first.
    """
    options, clock = run.options, run.clock
    # The DOM has been watched since the load event (access_step); were it not (its
    # call went unanswered), the wait's first call starts watching it.
    waited = await _wait_still(
        run,
        time.monotonic() + min(options.settle_timeout, clock.left(load=True)),
        after_load=False,
    )
    quiet = waited == "quiet"
    run.settled_open = run.recorder.inflight_ids()
    started = run.settle_started or utc_now()
    if run.load_fired and quiet:
        run.steps.record("settle", "done", started, "load event fired and the network went quiet")
        return
    what = [] if run.load_fired else ["the load event did not fire"]
    if not quiet:
        open_urls = run.recorder.inflight_urls()
        what.append(
            f"the network did not go quiet ({len(open_urls)} request(s) still open: "
            + ", ".join(open_urls[:3])
            + ")"
        )
    run.steps.record(
        "settle", "partial", started, "; ".join(what) + f" within {options.settle_timeout:g} s"
    )


# -- scroll ---------------------------------------------------------------------------


async def scroll_step(run: PageRun) -> None:
    """``scroll``: to the bottom until the page height is stable twice, then back up."""
    try:
        await _scroll(run)
    finally:
        # Back to the top for the screenshot; a page that navigated away meanwhile is
        # still rendered as it now is, and the steps say so. Bounded on its own: a page
        # looping on alert() must not make it wait out the capture.
        with contextlib.suppress(PageScriptError, TimeoutError):
            await run.evaluate("() => window.scrollTo(0, 0)", timeout=bound(run.clock, 5.0))
    moved = _shown_document(run)
    shown = run.result.main_exchange
    if moved and shown is not None and run.rules.inspector is not None:
        # Judged where it ended up: a teaser that moves itself on to a sign-in page is
        # a wall, reached by the way it took.
        chain = tuple(url for nav in run.result.navigations for url in nav["redirect_chain"])
        await _check_access(run, shown, chain, f"where the page moved on to ({shown.url}): ")


def _shown_document(run: PageRun) -> bool:
    """Make the result describe the document the renderings show.

    A page may move itself on (a script, a meta refresh): its status, redirect chain and
    the record the renderings refer to are then those of the document it arrived at,
    and ``navigations`` lists every top-level document on the way. Whether it moved on.
    """
    result = run.result
    first = run.main
    if first is None:
        result.final_url = _shown_url(run)
        return False
    later: dict[str, list[Exchange]] = {}
    for ex in run.recorder.exchanges[first.order + 1 :]:
        if ex.resource_type == "Document" and ex.frame_id == first.frame_id:
            later.setdefault(ex.network_id, []).append(ex)
    first_hops = [
        ex
        for ex in run.recorder.exchanges[: first.order + 1]
        if ex.network_id == first.network_id and ex.resource_type == "Document"
    ]
    navigations = [first_hops or [first], *later.values()]
    result.navigations = [
        {
            "url": redact_url(hops[-1].url),
            "status": hops[-1].status,
            "redirect_chain": [redact_url(h.url) for h in hops],
        }
        for hops in navigations
    ]
    # The last document that became the page: one that never did (a download, a load
    # cut short by the next) is on the way, not what the renderings show.
    page_url = run.page.url.split("#", 1)[0]
    shown_hops = next(
        (hops for hops in reversed(navigations[1:]) if hops[-1].url.split("#", 1)[0] == page_url),
        None,
    )
    if shown_hops is None:
        result.final_url = _shown_url(run)
        return False
    shown = shown_hops[-1]
    result.main_exchange = shown
    result.http_status = shown.status
    result.redirect_chain = _chain_of(shown_hops)
    result.final_url = shown.url
    return True


def _chain_of(hops: list[Exchange]) -> list[dict[str, Any]]:
    """A document's hops as ``redirect_chain`` records them."""
    return [
        {
            "url": redact_url(ex.url),
            "status": ex.status,
            "location": None if ex.location is None else redact_url(ex.location),
        }
        for ex in hops
    ]


async def _scroll(run: PageRun) -> None:
    clock, options = run.clock, run.options
    t = utc_now()
    rounds = stable = 0
    # The height the last round ended at; none before the first, whose own scroll to the
    # bottom and wait are then its whole test (as the later rounds', it must not grow).
    height: int | None = None
    # What the next round does not wait for: what was open as the last wait ended (or
    # as settle's did), taken then, so that a request the page starts between that wait
    # and this round (a loader the last scroll triggered late) is waited for, not taken
    # for one that was open all along.
    next_before = run.settled_open
    try:
        while rounds < options.max_scroll_rounds and clock.left(load=True) > 1.0:
            rounds += 1
            # What was open before this round (a long-poll, a trickle) is not waited for
            # again: only what the scrolling itself asked for.
            before = run.recorder.inflight_ids() if next_before is None else next_before
            next_before = None
            new_height = int(
                await run.evaluate(SCROLL_JS, [60, 120], timeout=max(1.0, clock.left(load=True)))
            )
            last = rounds >= options.max_scroll_rounds
            waited = await _wait_still(
                run,
                time.monotonic() + min(3.0, clock.left(load=True)),
                ignoring=before,
                grown_past=None if last else new_height,
            )
            if waited == "grew":
                # More to scroll already: go on at once, as a reader would; this round's
                # requests are waited for by the next one (the last round waits for its
                # own).
                next_before, stable, height = before, 0, new_height
                continue
            next_before = run.recorder.inflight_ids()
            bottom = int(await run.evaluate(AT_BOTTOM_JS, timeout=bound(clock, 5.0)))
            final_height = int(await run.evaluate(HEIGHT_JS, timeout=bound(clock, 5.0)))
            same = final_height == new_height and height in (None, new_height)
            stable = stable + 1 if same and bottom else 0
            height = final_height
            if stable >= 2:
                break
    except (PageScriptError, TimeoutError, TypeError, ValueError) as exc:
        run.steps.record("scroll", "failed", t, first_line(exc) if str(exc) else "timed out")
        return
    reached = height or 0
    if stable >= 2:
        detail = f"page stopped growing at {reached} px after {rounds} round(s)"
        run.steps.record("scroll", "done", t, detail)
    elif rounds >= options.max_scroll_rounds:
        detail = f"scroll limit of {rounds} rounds reached at {reached} px"
        run.steps.record("scroll", "partial", t, detail)
    else:
        run.steps.record(
            "scroll", "partial", t, f"time limit reached while scrolling ({reached} px)"
        )


PAGE_STEPS: tuple[Step, ...] = (
    Step("robots-txt", robots_step, renders=False),
    Step("navigate", navigate_step, renders=False),
    Step("access-check", access_step, renders=True),
    Step("settle", settle_step, renders=True),
    Step("scroll", scroll_step, renders=True),
    # The DOM and text first: cheapest and most useful, and never starved by a slow
    # screenshot of a huge page.
    Step("dom", dom_step, renders=True),
    Step("text", text_step, renders=True),
    Step("metadata", metadata_step, renders=False),
    Step("screenshot", screenshot_step, renders=True),
    Step("pdf", pdf_step, renders=True),
)
