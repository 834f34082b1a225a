"""One capture in progress, as every step sees it, and the bounds on every wait."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from osint_capture.engine.exchange import Exchange
from osint_capture.engine.model import CaptureOptions, Clock, EngineResult, StepLog
from osint_capture.engine.recorder import Recorder
from osint_capture.lawful.rules import PageRules

__all__ = ["PageRun", "bound", "first_line", "ms"]


@dataclass
class PageRun:
    """The page under capture, its recorder, the rules, the clock and what was found.

    ``main`` is the page's own document once ``navigate`` has it; ``load_fired`` and
    ``settle_started`` carry the load event from ``access-check`` to ``settle``.
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
    load_fired: bool = False
    settle_started: str = ""

    @property
    def withheld(self) -> bool:
        """The page is a file kept in the WARC and not shown to the browser: nothing to
        render, so the rendering steps are skipped."""
        return self.main is not None and self.main.withheld is not None


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
