"""RobotsFetch's hold: without --respect-robots, robots.txt waits for the page's load
event (``start``), or starts by itself after the hold; once the page's steps have ended
(``hold_off``) or the fetch is abandoned, the hold never starts it. The fetch itself is
tested against Chromium (test_capture_robustness, test_capture_post)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from osint_capture.engine.model import Clock
from osint_capture.engine.robotsfetch import RobotsFetch


class _NoTabs:
    """Tabs that fail at once: what matters here is only whether a fetch began."""

    def __init__(self) -> None:
        self.asked = 0

    def tab(self) -> Any:
        self.asked += 1
        raise RuntimeError("no browser in this test")


def _fetch(tabs: _NoTabs) -> RobotsFetch:
    return RobotsFetch(tabs, "http://a.example/post/1", Path("/nonexistent"), None, Clock(30.0))  # type: ignore[arg-type]


def test_held_fetch_starts_by_itself_after_the_hold() -> None:
    async def run() -> tuple[str, str, int]:
        tabs = _NoTabs()
        fetch = _fetch(tabs)
        fetch.start_by(0.05)
        before = fetch.started
        await asyncio.sleep(0.2)
        after = fetch.started
        await fetch.abandon()
        return before, after, tabs.asked

    before, after, asked = asyncio.run(run())
    assert before == "" and after != "" and asked == 1


def test_start_comes_before_the_hold_and_the_hold_does_not_start_it_again() -> None:
    async def run() -> tuple[str, str, int]:
        tabs = _NoTabs()
        fetch = _fetch(tabs)
        fetch.start_by(0.05)
        fetch.start()  # the load event
        first = fetch.started
        await asyncio.sleep(0.2)
        await fetch.abandon()
        return first, fetch.started, tabs.asked

    first, later, asked = asyncio.run(run())
    assert first != "" and later == first and asked == 1


def test_a_hold_called_off_or_abandoned_never_starts_the_fetch() -> None:
    async def run() -> list[tuple[str, int]]:
        seen = []
        for stop in ("hold_off", "abandon"):
            tabs = _NoTabs()
            fetch = _fetch(tabs)
            fetch.start_by(0.05)
            if stop == "hold_off":
                fetch.hold_off()
            else:
                await fetch.abandon()
            await asyncio.sleep(0.2)
            seen.append((fetch.started, tabs.asked))
        return seen

    assert asyncio.run(run()) == [("", 0), ("", 0)]
