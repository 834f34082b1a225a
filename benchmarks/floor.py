"""The browser's floor for captures of the sample post: what plain Playwright needs.

    python benchmarks/floor.py URL LAST_COMMENT_ID [EXECUTABLE]
    python benchmarks/floor.py --batch FILE --concurrency N LAST_COMMENT_ID [EXECUTABLE]

The same Chromium with the same flags as a capture (:mod:`osint_capture.engine.browser`),
the same viewport; it loads the post, scrolls until the fixture's known last comment is
in the page (the floor knows the page, so it waits for nothing else: no quiet periods,
no fixed pauses), takes a full-page screenshot and closes. Run as a process of its own,
so that it pays for Python, Playwright's driver and the browser launch exactly as the
``osint-capture capture`` command it is compared with.

``--batch`` is the floor of ``osint-capture capture-batch``: one browser for every URL
in FILE, N at once, each in a fresh context (load, scroll, screenshot, close), with the
batch's own politeness rule (a host's captures start at least 1 s apart).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Page, async_playwright

from osint_capture.engine.browser import chromium_args, sandbox_available

# Scroll a screen at a time (lazy images load on the way), one step per rendered frame,
# until the last comment exists; bounded so a broken fixture cannot hang the benchmark.
_SCROLL_UNTIL = """
async (selector) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (let i = 0; i < 2000 && !document.querySelector(selector); i++) {
    window.scrollBy(0, Math.floor(window.innerHeight * 0.9));
    await frame();
  }
  return !!document.querySelector(selector);
}
"""


async def _drive(url: str, last_comment: str, executable: str | None) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            args=chromium_args(),
            chromium_sandbox=sandbox_available(),
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await _load_scroll_shoot(page, url, last_comment)
        await browser.close()


async def _load_scroll_shoot(page: Page, url: str, last_comment: str) -> None:
    await page.goto(url)
    selector = f'li.comment[data-comment-id="{last_comment}"]'
    if not await page.evaluate(_SCROLL_UNTIL, selector):
        raise SystemExit(f"the last comment ({selector}) never appeared")
    with tempfile.TemporaryDirectory() as d:
        await page.screenshot(path=str(Path(d) / "s.png"), full_page=True)


_HOST_DELAY = 1.0  # capture-batch's default --host-delay


async def _batch(
    urls: list[str], concurrency: int, last_comment: str, executable: str | None
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            args=chromium_args(),
            chromium_sandbox=sandbox_available(),
        )
        todo = list(urls)
        next_start: dict[str, float] = {}

        async def worker() -> None:
            while todo:
                url = todo.pop(0)
                host = urlsplit(url).netloc
                # Reserved when taken, so workers on one host keep the delay between them.
                start = max(time.monotonic(), next_start.get(host, 0.0))
                next_start[host] = start + _HOST_DELAY
                await asyncio.sleep(max(0.0, start - time.monotonic()))
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                await _load_scroll_shoot(await context.new_page(), url, last_comment)
                await context.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await browser.close()


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--batch"]:
        listing, concurrency = Path(args[1]), int(args[3])
        last_comment = args[4]
        executable = args[5] if len(args) > 5 else None
        urls = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        asyncio.run(_batch(urls, concurrency, last_comment, executable))
        return
    url, last_comment = args[0], args[1]
    executable = args[2] if len(args) > 2 else None
    asyncio.run(_drive(url, last_comment, executable))


if __name__ == "__main__":
    main()
