"""One Chromium for many captures, each in a fresh, isolated browser context.

::

    async with CaptureSession() as session:
        first = await session.capture(url, options, work_dir, rules)
        second = await session.capture(other_url, options, other_dir, rules)

The browser is launched once, at the first capture, and closed with the session (a
session for one capture closes it as soon as the capture is done); with
no browser named, the session finds one (:func:`.browser.find_browser`) as it starts. Each
capture gets a new browser context (no cookies, storage, cache or service workers shared
with any other capture; downloads refused, pop-ups closed, dialogs dismissed), its own
recorder on the page's DevTools session, and the steps of :mod:`.steps`. Captures may
run concurrently on one session. :func:`run_capture` is the one-URL form.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    WebSocketRoute,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from chain_of_custody.errors import CaptureFailed
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.browser import (
    BrowserChoice,
    browser_home,
    driver_temp_dir,
    find_browser,
    launch_options,
)
from osint_capture.engine.model import (
    BrowserContextRecord,
    CaptureOptions,
    Clock,
    EngineResult,
    StepLog,
)
from osint_capture.engine.pagerun import PAGE_OPEN_TIME, PageRun, close_context, ms, new_page
from osint_capture.engine.recorder import BlockedRequest, Recorder, RequestGate
from osint_capture.engine.robotsfetch import RobotsFetch, RobotsTabs
from osint_capture.engine.steps import run_page_steps
from osint_capture.lawful.rules import AccessInspector, PageRules, RobotsPolicy, redact_url

__all__ = ["CaptureSession", "quiet_driver_leftovers", "run_capture", "run_on_session"]

_LAUNCH_TIMEOUT = 30.0
_R = TypeVar("_R")


class CaptureSession:
    """A browser launched once and shared by captures, each in its own fresh context."""

    def __init__(self, browser: BrowserChoice | None = None, *, one_capture: bool = False) -> None:
        # None: found when the session starts, with the driver it starts anyway.
        self._choice = browser
        # A session for one capture closes its browser as soon as the capture is done,
        # while the item is sealed (~0.15 s): nothing else will run on it.
        self._one_capture = one_capture
        self._closing: asyncio.Future[None] | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._launch_lock = asyncio.Lock()
        self._captures = 0
        self._user_agent = ""  # the launched browser's own, asked once per launch
        self._robots_tabs: RobotsTabs | None = None  # of the launched browser
        self._home: Path | None = None
        self._home_cleanup = contextlib.ExitStack()
        self.launches = 0

    def make_home(self) -> Path:
        """The browser's HOME, config, temp folders and profile: private, gone with the
        session (made by the session's start when not made before)."""
        if self._home is None:
            stack = contextlib.ExitStack()
            self._home = stack.enter_context(browser_home())
            self._home_cleanup = stack.pop_all()
        return self._home

    async def __aenter__(self) -> CaptureSession:
        home = self.make_home()
        try:
            # The driver is started inside the home, so its profiles are made there too.
            with driver_temp_dir(home):
                self._playwright = await async_playwright().start()
            if self._choice is None:
                bundled = self._playwright.chromium.executable_path
                # Not `--version` (~35 ms before the launch): the launched browser says.
                self._choice = await asyncio.to_thread(
                    find_browser, bundled_path=bundled, versioned=False
                )
        except BaseException:
            if self._playwright is not None:
                await self._playwright.stop()
                self._playwright = None
            self._home_cleanup.close()
            self._home = None
            raise
        return self

    @property
    def browser_choice(self) -> BrowserChoice:
        """The browser this session's captures run in (known once the session started)."""
        if self._choice is None:
            raise RuntimeError("CaptureSession used outside `async with`")
        return self._choice

    @property
    def browser_connected(self) -> bool:
        """Whether a browser is running and connected; the next capture relaunches one
        when it is not (a batch uses this to tell a dead browser from a failed page)."""
        return self._browser is not None and self._browser.is_connected()

    @property
    def robots_pages(self) -> int:
        """How many pages the launched browser has made for robots.txt (a session of
        many captures keeps one for the next capture's)."""
        return 0 if self._robots_tabs is None else self._robots_tabs.made

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the browser and stop Playwright's driver."""
        closing, self._closing = self._closing, None
        playwright, self._playwright = self._playwright, None
        try:
            if closing is not None:
                await closing
            await self._close_browser()
        finally:
            try:
                if playwright is not None:
                    await playwright.stop()  # never leave the driver running
            finally:
                self._home = None
                self._home_cleanup.close()

    async def _close_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(PlaywrightError):
                await browser.close()

    async def capture(
        self,
        url: str,
        options: CaptureOptions,
        work_dir: Path,
        rules: PageRules | None = None,
    ) -> EngineResult:
        """Capture ``url`` into ``work_dir``; raise Refused or CaptureFailed, else a result.

        A result may be partial: ``partial_reasons`` says why.
        """
        rules = rules or PageRules()
        clock = Clock(options.time_limit)
        result = EngineResult(requested_url=url, started=utc_now())
        steps = StepLog(result)
        t = utc_now()
        browser = await self._browser_for(clock)
        self._captures += 1
        result.context = BrowserContextRecord(launch_number=self._captures)
        result.browser_version = browser.version
        result.user_agent = self._user_agent

        context = await browser.new_context(
            viewport={"width": options.viewport_width, "height": options.viewport_height},
            accept_downloads=False,
            service_workers="block",
            ignore_https_errors=False,
            java_script_enabled=True,
        )
        tabs = self._robots_tabs
        assert tabs is not None  # made with the browser
        try:
            await _capture_in(context, tabs, url, options, work_dir, rules, clock, result, steps, t)
        finally:
            if self._one_capture:
                self._closing = asyncio.ensure_future(self._close_browser())
            else:
                await close_context(context)
        _conclude(result)
        result.ended = utc_now()
        return result

    async def _browser_for(self, clock: Clock) -> Browser:
        async with self._launch_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None or self._home is None:
                raise RuntimeError("CaptureSession used outside `async with`")
            try:
                self._browser = await self._playwright.chromium.launch(
                    **launch_options(self.browser_choice, self._home),
                    timeout=ms(min(_LAUNCH_TIMEOUT, clock.left())),
                )
            except PlaywrightError as exc:
                raise CaptureFailed(
                    f"the browser did not start: {str(exc).splitlines()[0]}",
                    hint="run `osint-capture doctor`",
                ) from None
            self.launches += 1
            self._captures = 0
            self._user_agent = await _user_agent_of(self._browser)
            self._robots_tabs = _robots_tabs(self._browser, keep=not self._one_capture)
            return self._browser


def _robots_tabs(browser: Browser, *, keep: bool) -> RobotsTabs:
    """Pages for robots.txt on ``browser``, kept from one capture to the next with
    ``keep`` (a session of many captures), each in a context of its own."""

    async def new_context() -> BrowserContext:
        return await browser.new_context(accept_downloads=False, service_workers="block")

    return RobotsTabs(new_context, keep=keep)


async def _user_agent_of(browser: Browser) -> str:
    """The browser's own user-agent string, as every page it opens reports it (none is
    overridden): asked of the browser once (~10 ms), not of each page (~50 ms, a page's
    first script)."""
    try:
        cdp = await browser.new_browser_cdp_session()
        try:
            version = await cdp.send("Browser.getVersion")
        finally:
            with contextlib.suppress(PlaywrightError):
                await cdp.detach()
    except PlaywrightError:
        return ""
    return str(version.get("userAgent", ""))


async def _capture_in(
    context: BrowserContext,
    tabs: RobotsTabs,
    url: str,
    options: CaptureOptions,
    work_dir: Path,
    rules: PageRules,
    clock: Clock,
    result: EngineResult,
    steps: StepLog,
    launched: str,
) -> None:
    """The page, its recorder and the gates in this context; then the steps."""
    robots = None
    if rules.robots_policy is not None:
        # Beside the page, in a context of its own. Its verdict comes before the page
        # under --respect-robots: begun at once; otherwise held by its step until the
        # page has loaded, so that the two do not compete (see RobotsFetch).
        robots = RobotsFetch(tabs, url, work_dir, rules.gate, clock)
        if options.respect_robots:
            robots.start()
    try:
        await _page_in(
            context,
            robots,
            url,
            options,
            work_dir,
            rules,
            clock,
            result,
            steps,
            launched,
        )
    finally:
        if robots is not None:
            await robots.abandon()


async def _page_in(
    context: BrowserContext,
    robots: RobotsFetch | None,
    url: str,
    options: CaptureOptions,
    work_dir: Path,
    rules: PageRules,
    clock: Clock,
    result: EngineResult,
    steps: StepLog,
    launched: str,
) -> None:
    gate = rules.gate
    refused_sockets: list[BlockedRequest] = []
    if gate is not None:
        # CDP Fetch never pauses WebSocket handshakes: gate them here instead. Routed
        # before the context has a page, which costs ~60 ms less than after.
        await context.route_web_socket(
            lambda _url: True, lambda ws: _gate_web_socket(ws, gate, refused_sockets)
        )
    try:
        page = await new_page(context, min(PAGE_OPEN_TIME, max(1.0, clock.left())))
    except TimeoutError:
        raise CaptureFailed(
            "the browser did not open the capture's page in time",
            hint="run `osint-capture doctor`",
        ) from None
    context.on("page", lambda p: _contain_popup(p, result))
    page.on("download", lambda d: result.downloads.append(d.url))
    page.on("dialog", lambda d: _dismiss_dialog(d, result))
    cdp = await context.new_cdp_session(page)
    recorder = Recorder(cdp, work_dir / ".bodies", size_limit=options.size_limit, gate=gate)
    await recorder.start()
    if not result.user_agent:  # the browser could not say: the page can
        result.user_agent = await page.evaluate("navigator.userAgent")
    assert result.context is not None
    steps.record(
        "launch-browser",
        "done",
        launched,
        f"Chromium {result.browser_version}; a fresh browser context "
        f"(capture {result.context.launch_number} on this browser launch)",
    )
    run = PageRun(page, cdp, recorder, url, options, rules, clock, result, steps, work_dir)
    run.robots_fetch = robots
    page.on("crash", lambda _page: _crashed(run, "the page's renderer crashed"))
    page.on("close", lambda _page: _crashed(run, "the page was closed (by itself or the browser)"))
    try:
        await run_page_steps(run)
    finally:
        run.closing = True
        if robots is not None:
            robots.hold_off()  # a page refused or failed before its load: none is fetched
        await recorder.stop()
        recorder.apply_sent_headers()
        result.crash = run.crashed
        result.exchanges = [*run.aside_exchanges, *recorder.exchanges]
        result.blocked = sorted([*recorder.blocked, *refused_sockets], key=lambda b: b.time)
        result.recorder_errors = list(recorder.errors)
        result.total_bytes = recorder.total_bytes
        if recorder.size_limit_reached:
            result.partial_reasons.append(
                f"size limit of {options.size_limit} bytes reached; later bytes not kept"
            )


def _crashed(run: PageRun, why: str) -> None:
    if not run.closing and run.crashed is None:
        run.crashed = why
        run.crash_event.set()


def _conclude(result: EngineResult) -> None:
    """What makes a capture partial beyond its steps: the recorder's own findings."""
    if result.crash is not None:
        result.partial_reasons.insert(
            0, f"the browser crashed ({result.crash}); kept is what was recorded until then"
        )
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
        if ex.truncated and not (ex.is_redirect or ex.canceled or ex.browser_initiated or ex.aside):
            result.partial_reasons.append(f"response body incomplete ({ex.truncated}): {ex.url}")


def run_on_session(
    browser: BrowserChoice | None,
    prepare: Callable[[], Callable[[CaptureSession], Awaitable[_R]]],
) -> _R:
    """Run the work that ``prepare`` returns (one capture) on a session of its own.

    Playwright's driver starts while ``prepare`` runs in a thread: what a command still
    has to import and check overlaps the driver's own start-up (~0.5 s). ``prepare`` may
    raise (a refusal); no browser has been launched by then, and the driver is stopped
    again. A result the work returned is returned even if Ctrl-C comes while the session
    closes: it is evidence already sealed.
    """
    done: list[_R] = []

    async def main() -> _R:
        quiet_driver_leftovers()
        # The driver starts with TMPDIR in the session's private home: the real one is
        # looked up (and cached) for ``prepare`` first.
        tempfile.gettempdir()
        session = CaptureSession(browser, one_capture=True)
        # The environment the driver needs is written here, before ``prepare``'s thread
        # starts, and restored once it has ended: never while another thread reads it.
        with driver_temp_dir(session.make_home()):
            starting = asyncio.ensure_future(session.__aenter__())
            thread = asyncio.ensure_future(asyncio.to_thread(prepare))
            try:
                work = await asyncio.shield(thread)
            except BaseException:
                # prepare runs to its end (it may be logging a refusal), and whatever
                # the driver's start came to, nothing of it may outlive us, even if a
                # second Ctrl-C comes meanwhile.
                try:
                    await asyncio.wait([thread])
                    if not thread.cancelled():
                        thread.exception()  # retrieved: the error raised is the one told
                    with contextlib.suppress(BaseException):
                        await starting
                finally:
                    await session.close()
                raise
            await starting
        try:
            result = await work(session)
            done.append(result)
            return result
        finally:
            await session.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        if done:
            return done[0]
        raise


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
    """Capture one URL on a browser of its own (a session of one capture)."""
    async with CaptureSession(browser, one_capture=True) as session:
        rules = PageRules(gate=gate, inspector=inspector, robots_policy=robots_policy)
        return await session.capture(url, options, work_dir, rules)


async def _gate_web_socket(
    ws: WebSocketRoute, gate: RequestGate, refused: list[BlockedRequest]
) -> None:
    """Connect a page's WebSocket only if the gate allows its address.

    Its messages are not recorded in the WARC (a documented limit); what matters for
    the access rules is that a refused socket never connects.
    """
    verdict = await gate(ws.url)
    if verdict is None:
        ws.connect_to_server()
        return
    rule, reason = verdict
    blocked = BlockedRequest(url=redact_url(ws.url), reason=reason, time=utc_now(), rule=rule)
    refused.append(blocked)
    await ws.close(code=1008, reason="blocked by the capture's access rules")


# Event callbacks are synchronous; the coroutines they start are kept here until done.
_background: set[asyncio.Future[Any]] = set()


def _in_background(coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    task.add_done_callback(_retrieved)


def _retrieved(task: asyncio.Future[Any]) -> None:
    # A pop-up or dialog the browser took away first is no error of the capture; any
    # other error is left to asyncio to report.
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, PlaywrightError):
        asyncio.get_running_loop().call_exception_handler(
            {"message": "closing a pop-up or dialog failed", "exception": error}
        )


def quiet_driver_leftovers() -> None:
    """Let the running loop leave unsaid what Playwright leaves behind when its driver or
    browser goes away under it (Ctrl-C reaches them too): futures failed with the
    browser's closing (``TargetClosedError``) or the driver's end that nobody awaits any
    more, which asyncio would print with a traceback as the command exits. Every other
    unretrieved error is still printed."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        closed = isinstance(error, PlaywrightError) and type(error).__name__ == "TargetClosedError"
        if closed or (type(error) is Exception and str(error) == _DRIVER_GONE):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


# What Playwright's transport says when its driver's output ends (the driver is gone).
_DRIVER_GONE = "Connection closed while reading from the driver"


def _contain_popup(popup: Page, result: EngineResult) -> None:
    result.popups.append(popup.url)
    _in_background(popup.close())


def _dismiss_dialog(dialog: Any, result: EngineResult) -> None:
    result.dialogs.append(f"{dialog.type}: {dialog.message}")
    _in_background(dialog.dismiss())
