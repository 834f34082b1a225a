"""The steps that keep the page as a person sees it, and what it says about itself.

``screenshot``, ``pdf``, ``dom`` and ``text`` each write one rendering (file names from
:mod:`chain_of_custody.item`); one failing never loses the others. ``metadata`` reads
title, OpenGraph, JSON-LD and robots meta tags, and the TLS details and certificate
chain of the page's origin.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError

from chain_of_custody.item import DOM_NAME, PDF_NAME, SCREENSHOT_NAME, TEXT_NAME
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.pagejs import METADATA_JS, METADATA_LIMITS, SHOT_PREPARE_JS, SHOT_UNDO_JS
from osint_capture.engine.pagerun import PageRun, PageScriptError, first_line

__all__ = [
    "dom_step",
    "metadata_step",
    "pdf_step",
    "post_metadata",
    "screenshot_step",
    "text_step",
]

# Make the rendering at the path within the seconds left; an optional note for the record.
_Maker = Callable[[PageRun, Path, float], Awaitable[str | None]]

_TLS_FIELDS = (
    "protocol",
    "keyExchange",
    "keyExchangeGroup",
    "cipher",
    "subjectName",
    "issuer",
    "validFrom",
    "validTo",
    "sanList",
    "certificateTransparencyCompliance",
)


# Each rendering's share of the time left when it starts: the later ones are never
# starved by an earlier one (a 200,000-element page's screenshot, a page looping on
# alert()); the last takes what is left.
_SHARE = {"dom": 1 / 3, "text": 1 / 3, "metadata": 1 / 4, "screenshot": 1 / 2, "pdf": 1.0}
_MIN_BOUND = 2.0


def _budget(run: PageRun, name: str) -> float:
    left = run.clock.left()
    return min(left, max(_MIN_BOUND, left * _SHARE[name]))


async def _render(run: PageRun, name: str, filename: str, make: _Maker) -> None:
    t = utc_now()
    left = _budget(run, name)
    if left < 0.5:
        run.steps.record(name, "failed", t, "no time left")
        return
    path = run.work_dir / filename
    try:
        note = await asyncio.wait_for(make(run, path, left), timeout=left)
    except TimeoutError:
        run.steps.record(name, "failed", t, f"not done within its {left:.1f} s")
        path.unlink(missing_ok=True)
        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one rendering failing must not lose the others
        run.steps.record(name, "failed", t, first_line(exc))
        path.unlink(missing_ok=True)
        return
    run.result.renderings[name] = path
    run.steps.record(
        name, "done", t, f"{path.stat().st_size} bytes" + (f"; {note}" if note else "")
    )


def _clean_text(text: str) -> tuple[str, int]:
    """UTF-8 cannot hold a lone UTF-16 surrogate (pages can contain them): each
    becomes U+FFFD, and the number replaced is reported."""
    cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if cleaned == text:
        return text, 0
    return cleaned, sum(1 for a, b in zip(text, cleaned, strict=True) if a != b)


def _write_clean(path: Path, text: str) -> str | None:
    cleaned, replaced = _clean_text(text)
    path.write_text(cleaned, encoding="utf-8")
    return f"{replaced} lone surrogate(s) replaced by U+FFFD" if replaced else None


async def _screenshot(run: PageRun, path: Path, left: float) -> str | None:
    """The whole page as Playwright's full-page screenshot takes it (the same size, the
    animations stilled in the page and the frames inside it, no caret), but encoded with
    Chromium's ``optimizeForSpeed``: the same pixels (lossless PNG, compared), in ~0.2 s
    less of the browser's time, in a file ~40 % larger."""
    deadline = asyncio.get_running_loop().time() + left

    def remaining() -> float:
        return max(0.5, deadline - asyncio.get_running_loop().time())

    size = await run.evaluate(SHOT_PREPARE_JS, timeout=remaining())
    # Frames inside the page are stilled too, each in a world of its own.
    frames: list[int] = []
    with contextlib.suppress(PageScriptError, TimeoutError):
        frames = await run.frame_worlds(timeout=remaining())
    for world in list(frames):
        try:
            await run.evaluate_in(world, SHOT_PREPARE_JS, timeout=remaining())
        except (PageScriptError, TimeoutError):
            frames.remove(world)
    params: dict[str, Any] = {"format": "png", "optimizeForSpeed": True}
    note = None
    if isinstance(size, dict) and size.get("width") and size.get("height"):
        width, height = int(size["width"]), int(size["height"])
        params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        options = run.options
        params["captureBeyondViewport"] = (
            width > options.viewport_width or height > options.viewport_height
        )
    else:
        note = "the document has no body (or no size) to measure: the viewport only"
    try:
        answer = await run.send("Page.captureScreenshot", params, timeout=remaining())
    finally:
        with contextlib.suppress(PageScriptError, TimeoutError):
            await run.evaluate(SHOT_UNDO_JS, timeout=remaining())
        for world in frames:
            with contextlib.suppress(PageScriptError, TimeoutError):
                await run.evaluate_in(world, SHOT_UNDO_JS, timeout=remaining())
    path.write_bytes(base64.b64decode(answer["data"]))
    return note


async def _pdf(run: PageRun, path: Path, left: float) -> str | None:
    await run.page.pdf(path=str(path), print_background=True)
    return None


async def _dom(run: PageRun, path: Path, left: float) -> str | None:
    # Playwright serialises the DOM in its own utility world: page scripts cannot
    # change what it reads.
    return _write_clean(path, await run.page.content())


async def _text(run: PageRun, path: Path, left: float) -> str | None:
    body = await run.evaluate("() => document.body ? document.body.innerText : ''", timeout=left)
    return _write_clean(path, str(body))


async def screenshot_step(run: PageRun) -> None:
    """``screenshot``: the whole page, top to bottom, as PNG."""
    await _render(run, "screenshot", SCREENSHOT_NAME, _screenshot)


async def pdf_step(run: PageRun) -> None:
    """``pdf``: the page printed, backgrounds included."""
    await _render(run, "pdf", PDF_NAME, _pdf)


async def dom_step(run: PageRun) -> None:
    """``dom``: the rendered DOM as HTML, after scripts ran and the page was scrolled."""
    await _render(run, "dom", DOM_NAME, _dom)


async def text_step(run: PageRun) -> None:
    """``text``: the page's visible text."""
    await _render(run, "text", TEXT_NAME, _text)


async def metadata_step(run: PageRun) -> None:
    """``metadata``: post metadata from the page, TLS details of its origin."""
    t = utc_now()
    result = run.result
    try:
        raw = await run.evaluate(
            METADATA_JS, METADATA_LIMITS, timeout=max(0.5, _budget(run, "metadata"))
        )
        if not isinstance(raw, dict):
            raise TypeError(f"the page's metadata came back as {type(raw).__name__}")
        metadata = post_metadata(raw)
    except Exception as exc:  # whatever the page holds, a failed step, never a failed capture
        run.steps.record("metadata", "failed", t, first_line(exc) if str(exc) else "timed out")
        return
    result.page_metadata = metadata
    result.title = str(raw.get("title", ""))
    await _tls_details(run)
    run.steps.record(
        "metadata",
        "done",
        t,
        json.dumps(result.page_metadata.get("authors", []), ensure_ascii=False),
    )


async def _tls_details(run: PageRun) -> None:
    main = run.result.main_exchange
    if main is None or urlsplit(main.url).scheme != "https":
        return
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(main.url))
    tls: dict[str, Any] = {"origin": origin, "http_protocol": main.protocol}
    details = main.security_details or {}
    tls.update({key: details[key] for key in _TLS_FIELDS if key in details})
    try:
        answer = await asyncio.wait_for(
            run.cdp.send("Network.getCertificate", {"origin": origin}),
            timeout=max(0.5, run.clock.left()),
        )
        tls["chain_pem"] = [_pem(c) for c in answer.get("tableNames", [])]
    except (PlaywrightError, TimeoutError) as exc:
        tls["chain_error"] = str(exc).splitlines()[0] if str(exc) else "timed out"
    run.result.tls = tls


def _pem(der_b64: str) -> str:
    body = der_b64.strip()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def post_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    """Author and published time from OpenGraph/article tags and JSON-LD."""
    meta: dict[str, list[str]] = raw.get("meta", {})
    authors: list[str] = list(meta.get("article:author", [])) + list(meta.get("author", []))
    published: list[str] = list(meta.get("article:published_time", []))
    _walk_json_ld(raw.get("jsonld", []), authors, published)

    def dedup(values: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in values if v))

    return {
        "title": raw.get("title", ""),
        "authors": dedup(authors),
        "published": dedup(published),
        "opengraph": {k: v for k, v in meta.items() if k.startswith(("og:", "article:"))},
        "meta": {k: v for k, v in meta.items() if not k.startswith(("og:", "article:"))},
        "json_ld": raw.get("jsonld", []),
        "canonical": raw.get("canonical"),
        "lang": raw.get("lang"),
    }


def _walk_json_ld(node: Any, authors: list[str], published: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_json_ld(item, authors, published)
        return
    if not isinstance(node, dict):
        return
    author = node.get("author")
    for a in author if isinstance(author, list) else [author]:
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            authors.append(a["name"])
        elif isinstance(a, str):
            authors.append(a)
    for key in ("datePublished", "dateCreated"):
        if isinstance(node.get(key), str):
            published.append(node[key])
    for key in ("@graph", "mainEntity"):
        if key in node:
            _walk_json_ld(node[key], authors, published)
