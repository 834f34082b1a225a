"""The ``robots-txt`` step: the host's robots.txt, fetched beside the page, never in it.

It is fetched by the browser (so it is in the WARC, with the headers it came with), but
in a browser context of its own: the page's navigation is never shared or disturbed by
it (an empty 404 makes Chromium show its own error page, a navigation of its own), and
no cookie it sets reaches the page. Its verdict follows RFC 9309 (:mod:`..lawful.robots`)
and never by itself makes an item partial: what it could not fetch is recorded as such.

Captures that share a browser (a batch) fetch each robots.txt afresh, but in a page kept
for robots.txt alone (:class:`RobotsTabs`): making a context and a page for each took
about a sixth of a batch's time on 2 cores (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from chain_of_custody.errors import Refused
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.exchange import Exchange
from osint_capture.engine.model import Clock
from osint_capture.engine.pagerun import PageRun, close_context, first_line, ms, new_page
from osint_capture.engine.recorder import Recorder
from osint_capture.lawful.rules import RequestGate, RobotsPolicy

__all__ = ["ROBOTS_PARSE_LIMIT", "RobotsAnswer", "RobotsFetch", "RobotsTabs", "robots_step"]

# RFC 9309 2.5: a crawler must parse at least the first 500 KiB; that much is read.
ROBOTS_PARSE_LIMIT = 500 * 1024
# What is kept of a robots.txt in the WARC: a little past the parsing limit.
_ROBOTS_KEEP = 1 << 20
_ROBOTS_TIME = 10.0
_BLANK_TIME = 2.0
# The longest robots.txt waits for the page's load event, from when the page is sent
# off, before it is fetched anyway (a page that never loads still has it, in time).
_ROBOTS_HOLD = 1.0


@dataclass(frozen=True)
class RobotsAnswer:
    """What the robots.txt fetch got: its status and text (if 200), an error, its exchanges."""

    url: str
    status: int | None
    text: str | None
    error: str | None
    exchanges: tuple[Exchange, ...]
    cut: bool = False  # longer than what is parsed
    ended: str = field(default_factory=utc_now)


class RobotsFetch:
    """``url``'s robots.txt, fetched beside the page once started, answered once.

    Under --respect-robots it is started with the capture, its verdict needed before the
    page loads. Otherwise it waits for the page (:meth:`start_by`): it starts when the
    page's load event fires (the ``access-check`` step starts it), while the capture
    waits for the page to go still, or :data:`_ROBOTS_HOLD` after the page was sent off
    if the load is slower. Fetched while the page loaded, on 2 cores, its context and
    page competed with the page's load; held for the load alone, a page that used up
    its load time had robots.txt fetched at the end with no time left (both in
    docs/PERFORMANCE.md). The step takes the answer once it is in (without
    --respect-robots, never before the page loads).
    """

    def __init__(
        self,
        tabs: RobotsTabs,
        url: str,
        work_dir: Path,
        gate: RequestGate | None,
        clock: Clock,
    ) -> None:
        parts = urlsplit(url)
        self._args = (tabs, f"{parts.scheme}://{parts.netloc}/robots.txt", work_dir)
        self._gate, self._clock = gate, clock
        self._task: asyncio.Task[RobotsAnswer] | None = None
        self._held: asyncio.TimerHandle | None = None
        self.started = ""

    def start_by(self, delay: float) -> None:
        """Start within ``delay`` seconds, or sooner when :meth:`start` is called."""
        if self._task is None and self._held is None:
            self._held = asyncio.get_running_loop().call_later(delay, self.start)

    def start(self) -> None:
        self.hold_off()
        if self._task is None:
            self.started = utc_now()
            tabs, robots_url, work_dir = self._args
            self._task = asyncio.ensure_future(
                _fetch(tabs, robots_url, work_dir, self._gate, self._clock)
            )

    def hold_off(self) -> None:
        """Cancel a start :meth:`start_by` set, if it has not come yet: once the page's
        steps have ended, only :meth:`answer` may still start the fetch."""
        if self._held is not None:
            self._held.cancel()
            self._held = None

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def answer(self) -> RobotsAnswer:
        self.start()
        assert self._task is not None
        return await self._task

    async def abandon(self) -> None:
        """Stop a fetch still under way (or not to start); an answer nobody took is no
        error."""
        self.hold_off()
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            # wait() raises nothing of the task's own, and lets a cancel of this
            # capture through.
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()


class RobotsTabs:
    """Pages for robots.txt alone, each in a browser context no capture's page ever
    shares; with ``keep``, a page whose fetch ended cleanly is kept for the next one.

    A kept page is left on ``about:blank`` while its fetch's recorder (and so the
    lawful-access gate) still holds it, so it loads nothing unrecorded between fetches;
    before each fetch its context's cookies are cleared, and the fetch's own DevTools
    session disables the cache, so each robots.txt is asked of the server afresh and
    with nothing an earlier answer set. ``made`` counts the pages made.
    """

    def __init__(self, new_context: Callable[[], Awaitable[BrowserContext]], *, keep: bool) -> None:
        self._new_context = new_context
        self.keep = keep
        self._idle: list[tuple[BrowserContext, Page]] = []
        self.made = 0

    @contextlib.asynccontextmanager
    async def tab(self) -> AsyncIterator[_Tab]:
        """A page for one fetch: kept afterwards if the fetch says it may be, else closed
        with its context (also when the fetch fails or is cancelled)."""
        tab = await self._take()
        try:
            if tab.used:  # a new context has none
                await tab.context.clear_cookies()
            yield tab
        finally:
            if self.keep and tab.reusable and not tab.page.is_closed():
                self._idle.append((tab.context, tab.page))
            else:
                await close_context(tab.context)

    async def _take(self) -> _Tab:
        while self._idle:
            context, page = self._idle.pop()
            if not page.is_closed():
                return _Tab(context, page, used=True)
        making = asyncio.ensure_future(self._new_context())
        try:
            context = await asyncio.shield(making)
        except asyncio.CancelledError:
            # A cancel that lands while it is being made closes it once made, so none is
            # left open on the shared browser.
            making.add_done_callback(_close_when_made)
            raise
        try:
            page = await new_page(context)
        except BaseException as exc:
            await close_context(context)
            if isinstance(exc, TimeoutError):
                # An answer like any other failure of the browser's: robots.txt unreachable.
                raise PlaywrightError("no page opened for robots.txt in time") from None
            raise
        self.made += 1
        return _Tab(context, page)


@dataclass
class _Tab:
    context: BrowserContext
    page: Page
    used: bool = False  # by an earlier fetch
    reusable: bool = False  # set by a fetch that ended cleanly, on about:blank


async def robots_step(run: PageRun) -> None:
    """``robots-txt``: fetched and judged (rule 6); refuses only under --respect-robots.

    Without --respect-robots the verdict is information only, so the page does not wait
    for it, nor it for the page longer than its load (:meth:`RobotsFetch.start_by`): the
    step is recorded (in its place, second) once the answer is in.
    """
    policy = run.rules.robots_policy
    fetch = run.robots_fetch
    if policy is None or fetch is None:
        return
    if run.options.respect_robots:
        await _judge(run, policy, fetch)
    else:
        fetch.start_by(_ROBOTS_HOLD)
        run.after_steps.append(lambda: _judge(run, policy, fetch, position=1))


async def _judge(
    run: PageRun,
    policy: RobotsPolicy,
    fetch: RobotsFetch,
    position: int | None = None,
) -> None:
    answer = await fetch.answer()
    run.aside_exchanges.extend(answer.exchanges)
    verdict, refusal = policy(answer.text, answer.status, run.url)
    record: dict[str, object] = {"url": answer.url, "status": answer.status}
    if answer.error is not None:
        record["error"] = answer.error
    run.result.robots = {**record, **verdict}
    if answer.text is not None:
        run.result.robots["text"] = answer.text
        if answer.cut:
            run.result.robots["parsed"] = (
                f"the first {ROBOTS_PARSE_LIMIT // 1024} KiB (RFC 9309 2.5); the rest not read"
            )
    run.steps.record(
        "robots-txt",
        "done",
        fetch.started,
        str(verdict.get("verdict", "")),
        position=position,
        ended=answer.ended,
    )
    if refusal is not None:
        raise Refused(
            refusal, hint="captured without --respect-robots, robots.txt is informational"
        )


async def _fetch(
    tabs: RobotsTabs,
    robots_url: str,
    work_dir: Path,
    gate: RequestGate | None,
    clock: Clock,
) -> RobotsAnswer:
    """robots.txt, in a browser context of its own; the browser failing is an answer too
    (unreachable), never an error of the capture."""
    deadline = time.monotonic() + min(_ROBOTS_TIME, clock.left(load=True))
    recorder: Recorder | None = None
    error: str | None = None
    try:
        async with tabs.tab() as tab:
            page = tab.page
            cdp = await tab.context.new_cdp_session(page)
            try:
                recorder = Recorder(
                    cdp, work_dir / ".bodies" / "robots", size_limit=_ROBOTS_KEEP, gate=gate
                )
                await recorder.start()
                if tabs.keep:  # a kept page would otherwise answer the next from its cache
                    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                try:
                    try:
                        left = max(0.5, deadline - time.monotonic())
                        await page.goto(robots_url, wait_until="commit", timeout=ms(left))
                    except PlaywrightError as exc:
                        # An empty 4xx/5xx shows Chromium's error page: the status is known.
                        error = first_line(exc)
                    whole = await _wait_for_body(recorder, deadline)
                    if tabs.keep and whole:
                        # Emptied while the recorder's gate still holds it; a page that
                        # will not be is closed instead, and the answer stands.
                        with contextlib.suppress(PlaywrightError):
                            await page.goto("about:blank", timeout=ms(_BLANK_TIME))
                            tab.reusable = True
                finally:
                    await recorder.stop()
                    recorder.apply_sent_headers()
            finally:
                # Not kept unless let go of: a cancel during the detach must not put back
                # a page whose session may still hold its requests.
                kept, tab.reusable = tab.reusable, False
                if kept:
                    tab.reusable = await _detached(cdp)
                # else: closing its context ends the session (a detach after Chromium's
                # error page was once never answered)
    except PlaywrightError as exc:
        error = f"the browser could not fetch it: {first_line(exc)}"
    if recorder is None:
        return RobotsAnswer(robots_url, None, None, error, ())
    exchanges = tuple(recorder.exchanges)
    for ex in exchanges:
        ex.aside = "robots.txt, fetched in a browser context of its own"
    document = _last_document(recorder.exchanges)
    if document is None:
        blocked = next((b for b in recorder.blocked), None)
        why = f"{blocked.reason} ({blocked.url})" if blocked else (error or "nothing received")
        return RobotsAnswer(robots_url, None, None, why, exchanges)
    text = _read_text(document) if document.status == 200 else None
    parsed_part = document.body_size > ROBOTS_PARSE_LIMIT
    if (
        document.withheld
        or document.truncated == "length"
        or (error and "ERR_HTTP_RESPONSE_CODE_FAILURE" in error)
    ):
        # Stopped by the recorder past what is parsed, or an empty error response whose
        # status is the answer: no error of the fetch.
        error = None
    return RobotsAnswer(robots_url, document.status, text, error, exchanges, cut=parsed_part)


# Closings started from a callback, kept until done (a task nobody holds may be lost).
_closing: set[asyncio.Future[None]] = set()


def _close_when_made(making: asyncio.Future[BrowserContext]) -> None:
    if not making.cancelled() and making.exception() is None:
        closing = asyncio.ensure_future(close_context(making.result()))
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)


async def _detached(cdp: CDPSession) -> bool:
    """Whether the session let go of its page in time: a page still held (its requests
    paused by nobody) is not kept."""
    try:
        await asyncio.wait_for(cdp.detach(), _BLANK_TIME)
    except (PlaywrightError, TimeoutError):
        return False
    return True


async def _wait_for_body(recorder: Recorder, deadline: float) -> bool:
    """Until the robots.txt document's body is whole and closed (or cut), or the deadline;
    whether it ended so before the deadline."""
    while time.monotonic() < deadline:
        document = _last_document(recorder.exchanges)
        # The body file is closed (its digest taken) only once every byte is in it:
        # "complete" alone can come first, while the stream's first bytes are on the way.
        finished = document is not None and (
            document.body_sha256 is not None
            or (document.body_path is None and document.complete)
            or document.truncated
            or document.failure
        )
        if document is not None and finished and not document.is_redirect:
            return True
        await asyncio.sleep(0.05)
    return False


def _last_document(exchanges: list[Exchange]) -> Exchange | None:
    docs = [ex for ex in exchanges if ex.resource_type == "Document"]
    return docs[-1] if docs else None


def _read_text(document: Exchange) -> str:
    if document.body_path is None or not document.body_path.exists():
        return ""
    with open(document.body_path, "rb") as fh:
        head = fh.read(ROBOTS_PARSE_LIMIT)
    return head.decode("utf-8", errors="replace")
