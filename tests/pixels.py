"""PNG pixels read by Chromium's own decoder (a canvas in a blank page): no image library."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from playwright.sync_api import Page, sync_playwright

from osint_capture.engine.browser import chromium_args, find_browser

_PIXELS_JS = """
async ({pngs, points}) => {
  const read = async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return {size: [canvas.width, canvas.height],
            data: ctx.getImageData(0, 0, canvas.width, canvas.height).data};
  };
  const images = [];
  for (const png of pngs) images.push(await read(png));
  const colours = images.map(({size, data}) => points.map(([x, y]) => {
    const i = (y * size[0] + x) * 4;
    return [data[i], data[i + 1], data[i + 2]];
  }));
  let differ = null;
  if (images.length === 2 && images[0].size.join() === images[1].size.join()) {
    const [a, b] = [images[0].data, images[1].data];
    differ = 0;
    for (let i = 0; i < a.length; i += 4) {
      if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) differ++;
    }
  }
  return {sizes: images.map((image) => image.size), colours, differ};
}
"""


def read_pngs(
    pngs: list[bytes], points: Sequence[tuple[int, int]] = (), *, page: Page | None = None
) -> dict[str, Any]:
    """Each PNG's size and RGB at ``points``; for two, how many pixels differ (None when
    their sizes do). Read in ``page`` (any page of a browser already open), else in a
    browser of its own."""
    sources = [f"data:image/png;base64,{base64.b64encode(png).decode()}" for png in pngs]
    argument = {"pngs": sources, "points": [list(p) for p in points]}
    if page is not None:
        answer: dict[str, Any] = page.evaluate(_PIXELS_JS, argument)
        return answer
    executable = find_browser(None).executable
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(executable) if executable else None, args=chromium_args()
        )
        try:
            answer = browser.new_page().evaluate(_PIXELS_JS, argument)
        finally:
            browser.close()
    return answer
