"""The browser's floor for one capture of the sample post: what plain Playwright needs.

    python benchmarks/floor.py URL LAST_COMMENT_ID

The same Chromium with the same flags as a capture (:mod:`osint_capture.engine.browser`),
the same viewport; it loads the post, scrolls until the fixture's known last comment is
in the page (the floor knows the page, so it waits for nothing else: no quiet periods,
no fixed pauses), takes a full-page screenshot and closes. Run as a process of its own,
so that it pays for Python, Playwright's driver and the browser launch exactly as the
``osint-capture capture`` command it is compared with.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

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
        await page.goto(url)
        selector = f'li.comment[data-comment-id="{last_comment}"]'
        if not await page.evaluate(_SCROLL_UNTIL, selector):
            raise SystemExit(f"the last comment ({selector}) never appeared")
        with tempfile.TemporaryDirectory() as d:
            await page.screenshot(path=str(Path(d) / "s.png"), full_page=True)
        await browser.close()


def main() -> None:
    url, last_comment = sys.argv[1], sys.argv[2]
    executable = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(_drive(url, last_comment, executable))


if __name__ == "__main__":
    main()
