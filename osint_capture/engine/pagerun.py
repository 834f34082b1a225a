"""One capture in progress, as every step sees it, and the bounds on every wait."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from osint_capture.engine.exchange import Exchange
from osint_capture.engine.model import CaptureOptions, Clock, EngineResult, StepLog
from osint_capture.engine.recorder import Recorder
from osint_capture.lawful.rules import PageRules

if TYPE_CHECKING:
    from osint_capture.engine.robotsfetch import RobotsFetch

__all__ = [
    "PAGE_OPEN_TIME",
    "PageRun",
    "PageScriptError",
    "bound",
    "close_context",
    "first_line",
    "ms",
    "new_page",
]

_WORLD = "osint-capture"
_MAX_FRAMES = 50  # frames inside the page given a world of their own (frame_worlds)


class PageScriptError(Exception):
    """Our own script could not run in the page, or threw there."""


@dataclass
class PageRun:
    """The page under capture, its recorder, the rules, the clock and what was found.

    ``main`` is the page's own document once ``navigate`` has it; ``load_fired`` and
    ``settle_started`` carry the load event from ``access-check`` to ``settle``; what
    is fetched beside the page (robots.txt) puts its exchanges in ``aside_exchanges``;
    ``crashed`` says why the browser or the page's renderer is gone, once it is.
    """

    page: Page
    cdp: Any  # Playwright's CDPSession: typed loosely, its answers are plain dicts
    recorder: Recorder
    url: str
    options: CaptureOptions
    rules: PageRules
    clock: Clock
    result: EngineResult
    steps: StepLog
    work_dir: Path
    main: Exchange | None = None
    aside_exchanges: list[Exchange] = field(default_factory=list)
    crashed: str | None = None
    closing: bool = False  # the capture is closing the page itself: no crash
    crash_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # robots.txt, fetched beside the page (``robots-txt`` holds it until the page's load,
    # when ``access-check`` starts it, and takes its answer), and what must still run
    # once the steps are done (its record, when it was not awaited).
    robots_fetch: RobotsFetch | None = None
    after_steps: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    load_fired: bool = False
    settle_started: str = ""
    # When the load event fired (or was given up on), by the monotonic clock: nothing
    # ends the wait for quiet sooner than the quiet period after it.
    loaded_at: float = 0.0
    # The requests still open when ``settle`` ended (a long-poll), which the first
    # scroll round does not wait for; anything that starts after it, it does.
    settled_open: frozenset[str] | None = None
    _main_frame: str | None = field(default=None, repr=False)
    _world: int | None = field(default=None, repr=False)

    async def evaluate(self, function: str, *args: Any, timeout: float) -> Any:
        """Run the JS ``function`` (an expression) on ``args`` in an isolated world.

        An isolated world shares the page's DOM but not its JavaScript: a page that
        overrides ``querySelectorAll``, ``JSON.parse`` or ``getAttribute`` changes nothing
        of what the capture reads. Raises PageScriptError (or TimeoutError).
        """
        return await self._bounded(self._evaluate(function, args), timeout)

    async def send(self, method: str, params: dict[str, Any], *, timeout: float) -> Any:
        """A DevTools call on the page's session, bounded like :meth:`evaluate`.

        Raises PageScriptError (the browser's own error, or a crash) or TimeoutError.
        """
        return await self._bounded(self._send(method, params), timeout)

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.cdp.send(method, params)
        except Exception as exc:  # the browser's own error: navigated away, crashed, closed
            raise PageScriptError(first_line(exc)) from None

    async def _bounded(self, call: Awaitable[Any], timeout: float) -> Any:
        work = asyncio.ensure_future(call)
        crash = asyncio.ensure_future(self.crash_event.wait())
        try:
            done, _ = await asyncio.wait(
                {work, crash}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            crash.cancel()
            if not work.done():
                work.cancel()  # timed out, crashed, or this capture cancelled (Ctrl-C)
        if work in done:
            return work.result()
        if crash in done:
            # A call into a crashed renderer never answers: stop waiting for it.
            raise PageScriptError(self.crashed or "the browser crashed")
        raise TimeoutError(f"no answer within {timeout:.1f} s")

    async def _run_in(self, world: int, function: str, args: tuple[Any, ...]) -> Any:
        """The raw ``Runtime.evaluate`` answer of ``function(...args)`` in ``world``."""
        return await self.cdp.send(
            "Runtime.evaluate",
            {
                "expression": f"({function})(...{json.dumps(list(args))})",
                "contextId": world,
                "returnByValue": True,
                "awaitPromise": True,
            },
        )

    async def _evaluate(self, function: str, args: tuple[Any, ...]) -> Any:
        try:
            for attempt in (1, 2):
                world = self._world or await self._new_world()
                try:
                    answer = await self._run_in(world, function, args)
                    break
                except Exception:
                    # The world went with its document (the page moved on): a new one.
                    self._world = None
                    if attempt == 2:
                        raise
        except Exception as exc:  # the browser's own error: navigated away, crashed, closed
            raise PageScriptError(first_line(exc)) from None
        return _value(answer)

    async def frame_worlds(self, *, timeout: float) -> list[int]:
        """An isolated world in each frame inside the page (at most 50; the page's own is
        :meth:`evaluate`'s): their ids, for :meth:`evaluate_in`. A frame that cannot have
        one is passed over."""
        return list(await self._bounded(self._frame_worlds(), timeout))

    async def _frame_worlds(self) -> list[int]:
        try:
            tree = await self.cdp.send("Page.getFrameTree")
        except Exception as exc:
            raise PageScriptError(first_line(exc)) from None
        todo: list[dict[str, Any]] = list(tree["frameTree"].get("childFrames", []))
        worlds: list[int] = []
        while todo and len(worlds) < _MAX_FRAMES:
            node = todo.pop()
            todo.extend(node.get("childFrames", []))
            with contextlib.suppress(Exception):  # gone meanwhile, or not scriptable
                world = await self.cdp.send(
                    "Page.createIsolatedWorld",
                    {"frameId": node["frame"]["id"], "worldName": _WORLD},
                )
                worlds.append(int(world["executionContextId"]))
        return worlds

    async def evaluate_in(self, world: int, function: str, *, timeout: float) -> Any:
        """Run the JS ``function`` (no arguments) in ``world``, one of :meth:`frame_worlds`.

        Raises PageScriptError (or TimeoutError).
        """
        return await self._bounded(self._evaluate_in(world, function), timeout)

    async def _evaluate_in(self, world: int, function: str) -> Any:
        try:
            answer = await self._run_in(world, function, ())
        except Exception as exc:
            raise PageScriptError(first_line(exc)) from None
        return _value(answer)

    async def _new_world(self) -> int:
        if self._main_frame is None:
            tree = await self.cdp.send("Page.getFrameTree")
            self._main_frame = str(tree["frameTree"]["frame"]["id"])
        world = await self.cdp.send(
            "Page.createIsolatedWorld", {"frameId": self._main_frame, "worldName": _WORLD}
        )
        self._world = int(world["executionContextId"])
        return self._world

    @property
    def withheld(self) -> bool:
        """The page is a file kept in the WARC and not shown to the browser: nothing to
        render, so the rendering steps are skipped."""
        return self.main is not None and self.main.withheld is not None


def _value(answer: dict[str, Any]) -> Any:
    """The value of a ``Runtime.evaluate`` answer; what the script threw raises."""
    details = answer.get("exceptionDetails")
    if details is not None:
        thrown = details.get("exception", {}).get("description") or details.get("text")
        raise PageScriptError(str(thrown or "script error").splitlines()[0])
    return answer.get("result", {}).get("value")


# Playwright never answers a new_page asked of a browser that dies meanwhile (seen in a
# batch whose browser was killed: the capture waited for ever), and it takes no timeout.
PAGE_OPEN_TIME = 30.0


async def new_page(context: BrowserContext, seconds: float = PAGE_OPEN_TIME) -> Page:
    """``context.new_page()``, given up after ``seconds`` (TimeoutError)."""
    async with asyncio.timeout(seconds):
        return await context.new_page()


async def close_context(context: BrowserContext, seconds: float = PAGE_OPEN_TIME) -> None:
    """``context.close()``, given up after ``seconds``; a browser already gone is no error."""
    with contextlib.suppress(PlaywrightError, TimeoutError):
        async with asyncio.timeout(seconds):
            await context.close()


def ms(seconds: float) -> float:
    """Playwright's timeouts are in milliseconds, and 0 would mean "no timeout"."""
    return max(1.0, seconds * 1000.0)


def bound(clock: Clock, cap: float | None = None, *, load: bool = False) -> float:
    """A timeout for one call: what is left of the capture, at most ``cap``.

    Every await on the page is bounded: a page stuck in ``while(true){}`` must not
    hold the capture past its time limit.
    """
    left = clock.left(load=load)
    return max(0.5, min(left, cap) if cap is not None else left)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
