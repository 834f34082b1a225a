"""A headless Chromium that opens a replay served on 127.0.0.1 and reads the archived page.

ReplayWeb.page shows the archived page in a nested frame whose URL holds
``/mp_/ORIGINAL_URL``; that frame is read like the live page would be: the post text, its
author, and the comments, scrolled in as a visitor would. Every request the browser makes
(pages, frames, workers and the service worker) is recorded, so a test can assert that
none left 127.0.0.1; and any that tried would go to a dead proxy on 127.0.0.1, never out.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from osint_capture.demo.sample_site.server import COMMENT_PAGES, COMMENTS_PER_PAGE

__all__ = ["Replayed", "read_replay"]

_TOTAL = COMMENT_PAGES * COMMENTS_PER_PAGE


@dataclass
class Replayed:
    """What the archived page showed, and every URL the browser asked for."""

    frame_url: str = ""
    text: str = ""
    comments: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {
            urlsplit(u).hostname or ""
            for u in self.requests
            if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        }


async def _read(url: str, archived_url: str, timeout: float) -> Replayed:
    from playwright.async_api import async_playwright

    from osint_capture.engine.browser import chromium_args, find_browser, sandbox_available

    seen = Replayed()
    choice = find_browser(None)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(choice.executable) if choice.executable else None,
            # Anything not for 127.0.0.1 goes to a proxy port nobody listens on.
            args=[
                *chromium_args(),
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=127.0.0.1",
            ],
            chromium_sandbox=sandbox_available(),
            headless=True,
        )
        try:
            context = await browser.new_context(service_workers="allow")
            context.on("request", lambda r: seen.requests.append(r.url))
            context.on("serviceworker", lambda w: seen.requests.append(w.url))
            page = await context.new_page()
            await page.goto(url)
            deadline = time.monotonic() + timeout
            frame = None
            # On a busy machine the service worker's first start can leave the replay
            # frame unmade; a visitor would reload, and so does this.
            retry_at = time.monotonic() + 12
            while frame is None and time.monotonic() < deadline:
                frame = next((f for f in page.frames if f"mp_/{archived_url}" in f.url), None)
                if frame is None and time.monotonic() > retry_at:
                    await page.reload()
                    retry_at = time.monotonic() + 12
                elif frame is None:
                    await asyncio.sleep(0.25)
            assert frame is not None, (
                f"no replay frame for {archived_url}: {[f.url for f in page.frames]}"
            )
            seen.frame_url = frame.url
            await frame.wait_for_selector(
                "#post-body[data-rendered='true']", timeout=timeout * 1000
            )
            # Scroll as a visitor would until every page of comments has come in.
            while time.monotonic() < deadline:
                count = await frame.evaluate("document.querySelectorAll('li.comment').length")
                if count >= _TOTAL:
                    break
                await frame.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                await asyncio.sleep(0.3)
            seen.comments = await frame.evaluate(
                "[...document.querySelectorAll('li.comment')].map(e => e.innerText)"
            )
            seen.text = await frame.evaluate("document.body.innerText")
        finally:
            await browser.close()
    return seen


def read_replay(url: str, archived_url: str, *, timeout: float = 60) -> Replayed:
    """Open ``url`` (a replay page) and read the archived page ``archived_url`` from it."""
    return asyncio.run(_read(url, archived_url, timeout))
