"""The scroll's rounds against a page model: which requests a round waits for.

The real scroll is tested against Chromium with the sample site's infinite comments
(test_capture_post). A loader that starts in the few milliseconds between one round's
wait and the next round cannot be timed in a real page, so its case is driven here: a
model page whose "load more" request starts just as the last round checks the bottom.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from osint_capture.engine.model import CaptureOptions, Clock
from osint_capture.engine.pagejs import AT_BOTTOM_JS, HEIGHT_JS, SCROLL_JS, STILL_JS
from osint_capture.engine.steps import _scroll


class _LateLoaderPage:
    """A page 1000 px tall that, when first checked at the bottom, starts one request;
    0.6 s later it ends and the page has grown by 500 px. Its recorder's open requests
    and quiet time follow the same rules as the real recorder's."""

    def __init__(self) -> None:
        long_ago = time.monotonic() - 10.0
        self.height = 1000
        self.dom_changed = long_ago
        self.last_change = long_ago  # of the open requests
        self.inflight: set[str] = set()
        self.loader_started = False
        self.steps: list[tuple[str, str, str]] = []

    # -- the recorder's side --------------------------------------------------------

    def inflight_ids(self) -> frozenset[str]:
        return frozenset(self.inflight)

    def quiet_for_ignoring(self, ignoring: frozenset[str]) -> float:
        if self.inflight - ignoring:
            return 0.0
        return time.monotonic() - self.last_change

    # -- the page's side -------------------------------------------------------------

    async def evaluate(self, function: str, *args: Any, timeout: float) -> Any:
        if function in (SCROLL_JS, HEIGHT_JS):
            return self.height
        if function == STILL_JS:
            return (time.monotonic() - self.dom_changed) * 1000
        if function == AT_BOTTOM_JS:
            if not self.loader_started:
                self.loader_started = True
                self.inflight.add("more-comments")
                self.last_change = time.monotonic()
                asyncio.get_running_loop().call_later(0.6, self._loaded)
            return True
        return None  # scrolling back to the top

    def _loaded(self) -> None:
        self.inflight.discard("more-comments")
        self.height += 500
        self.dom_changed = self.last_change = time.monotonic()

    def record(self, name: str, state: str, started: str, detail: str = "") -> None:
        self.steps.append((name, state, detail))


def test_a_request_started_after_a_rounds_wait_is_waited_for_by_the_next_round() -> None:
    page = _LateLoaderPage()
    run = SimpleNamespace(
        clock=Clock(30.0),
        options=CaptureOptions(),
        recorder=page,
        evaluate=page.evaluate,
        steps=page,
        loaded_at=0.0,
        settled_open=frozenset(),
    )
    asyncio.run(_scroll(run))  # type: ignore[arg-type]
    assert page.loader_started
    # Ignored as "open all along", the loader would have let the page count as stable
    # at 1000 px, before its comments arrived.
    [(name, state, detail)] = page.steps
    assert (name, state) == ("scroll", "done")
    assert detail.startswith("page stopped growing at 1500 px after ")
