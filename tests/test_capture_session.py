"""Many captures on one browser: one launch, a fresh context for each, every item intact.

Drives real Chromium against the sample site on 127.0.0.1 through the library's capture
session (what batch capture runs on), then checks the items as an examiner would.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from cases import actions
from cases.store import EvidenceStore
from chain_of_custody.errors import Refused
from chain_of_custody.item import MANIFEST_NAME, TEXT_NAME
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import verify_item
from osint_capture.capture import CaptureReport, capture_into_case
from osint_capture.demo.sample_site import SampleSite
from osint_capture.engine.browser import BROWSER_ENV, BrowserChoice, find_browser
from osint_capture.engine.model import CaptureOptions
from osint_capture.engine.pagerun import close_context, new_page
from osint_capture.engine.session import CaptureSession, run_on_session
from tests.processes import processes
from tests.warc_reading import read_warc, responses

pytestmark = pytest.mark.browser

CASE = "SESSION-1"


def _provenance(report: CaptureReport) -> dict[str, object]:
    manifest = json.loads((report.item_dir / MANIFEST_NAME).read_bytes())
    provenance: dict[str, object] = manifest["provenance"]
    return provenance


def test_captures_share_one_browser_launch_each_in_a_fresh_context(
    tmp_path: Path, site: SampleSite
) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    signer = Signer(operator="Det. Sam Rivera", private_key=generate_private_key())
    actions.open_case(
        store,
        CASE,
        title="Session test",
        category="missing-person",
        investigator="Det. Alex Moreno",
        authority="Lt. J. Park, approval 26-114",
        signer=signer,
    )
    browser = find_browser(None)
    options = CaptureOptions(allow_private_network=True)
    paths = ("/post/1", "/post/1", "/returning-visitor", "/returning-visitor")

    async def capture_all() -> tuple[list[CaptureReport], int, int]:
        async with CaptureSession(browser) as session:
            reports = [
                await capture_into_case(
                    session, store, CASE, site.url(path), options, signer=signer
                )
                for path in paths
            ]
            return reports, session.launches, session.robots_pages

    reports, launches, robots_pages = asyncio.run(capture_all())

    assert launches == 1, "one browser launch served every capture"
    # Pages kept for robots.txt served the captures (one, unless a busy machine made the
    # emptying of one run out of time), each fetching it afresh, and none sending back
    # the cookie an earlier answer set.
    assert 1 <= robots_pages < len(paths)
    for report in reports:
        records = read_warc(report.warc)
        (robots,) = responses(records, "/robots.txt")
        assert robots.http_header("Set-Cookie") == "robots-seen=yes; Path=/; Max-Age=3600"
        assert robots.headers["WARC-Date"] >= _provenance(report)["capture_started"]
        (asked,) = [r for r in records if r.type == "request" and r.uri.endswith("/robots.txt")]
        assert asked.headers["X-Osint-Capture-Request-Headers"] == "network"
        assert asked.http_header("Cookie") is None
        assert asked.http_header("Cache-Control") == "no-cache"  # never from the cache
    assert len({r.item_id for r in reports}) == len(paths)
    log = store.case_dir(CASE) / "custody.jsonl"
    for number, report in enumerate(reports):
        result = verify_item(report.item_dir, custody_log=log)
        assert result.ok, [(s.number, s.detail) for s in result.steps if not s.ok]
        browser_record = _provenance(report)["browser"]
        assert isinstance(browser_record, dict)
        assert browser_record["context"]["fresh"] is True
        assert browser_record["context"]["shared_with_other_captures"] is False
        assert browser_record["context"]["captures_before_on_this_browser"] == number
    assert [r.status for r in reports[:2]] == ["complete", "complete"]
    assert reports[0].title == reports[1].title

    # The first visit set a cookie and localStorage; the second, in its own context,
    # must arrive with neither.
    for report in reports[2:]:
        text = (report.item_dir / TEXT_NAME).read_text(encoding="utf-8")
        assert "Cookie received: none" in text, text
        assert "localStorage seen: none" in text, text
        # The server did set the cookie each time, and the WARC keeps its answer whole.
        (page,) = responses(read_warc(report.warc), "/returning-visitor")
        assert page.http_header("Set-Cookie") == "visited=yes; Path=/; Max-Age=3600"


def test_a_second_visit_in_one_context_would_be_seen(site: SampleSite) -> None:
    """The control for the test above: the fixture does tell a returning visitor."""

    async def visit_twice() -> str:
        from playwright.async_api import async_playwright

        from osint_capture.engine.browser import chromium_args, sandbox_available

        choice = find_browser(None)
        async with async_playwright() as pw:
            chromium = await pw.chromium.launch(
                executable_path=str(choice.executable) if choice.executable else None,
                args=chromium_args(),
                chromium_sandbox=sandbox_available(),
                headless=True,
            )
            try:
                page = await (await chromium.new_context()).new_page()
                await page.goto(site.url("/returning-visitor"))
                await page.goto(site.url("/returning-visitor"))
                text: str = await page.evaluate("document.body.innerText")
                return text
            finally:
                await chromium.close()

    text = asyncio.run(visit_twice())
    assert "Cookie received: visited=yes" in text
    assert "localStorage seen: yes" in text


# -- one capture: the driver starts while the command prepares ---------------------


def _children() -> set[tuple[int, str]]:
    """This process's children (pid, name), running or not yet reaped."""
    return {(p.pid, p.name) for p in processes() if p.ppid == os.getpid()}


@pytest.fixture
def driver_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where Node is to keep its compile cache of the driver: a folder of this test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NODE_COMPILE_CACHE", raising=False)
    return tmp_path / "cache" / "osint-capture" / "node-compile-cache"


def test_a_refusal_while_the_driver_starts_leaves_nothing_running(driver_cache: Path) -> None:
    before, children = dict(os.environ), _children()
    during: dict[str, str | None] = {}

    def prepare() -> NoReturn:
        # What the command's own checks see while the driver starts beside them.
        during["TMPDIR"] = os.environ.get("TMPDIR")
        raise Refused("the rules refuse this capture")

    with pytest.raises(Refused, match="the rules refuse this capture"):
        run_on_session(find_browser(None), prepare)

    assert _children() - children == set(), "the driver was stopped (and no browser left)"
    assert dict(os.environ) == before, "the environment is as it was"
    home_tmp = during["TMPDIR"]
    assert home_tmp is not None and home_tmp != before.get("TMPDIR")
    assert not Path(home_tmp).exists(), "the session's private home is gone"


def test_the_work_runs_on_the_started_session_and_node_caches_the_driver(
    driver_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BROWSER_ENV, raising=False)  # found, not named
    before, children = dict(os.environ), _children()

    def prepare() -> Callable[[CaptureSession], Awaitable[tuple[BrowserChoice, bool]]]:
        async def work(session: CaptureSession) -> tuple[BrowserChoice, bool]:
            return session.browser_choice, session.browser_connected

        return work

    choice, connected = run_on_session(None, prepare)

    # Found with the session's own driver; its version is the launched browser's to say
    # (no `--version` run before the launch).
    assert choice.source in ("playwright", "distribution") and choice.version == ""
    assert choice.executable is not None and choice.executable.is_file()
    assert connected is False, "no capture ran, so no browser was launched"
    assert _children() - children == set()
    assert dict(os.environ) == before
    assert any(p.is_file() for p in driver_cache.rglob("*")), "Node cached the driver's code"


class _DeadBrowserContext:
    """A context of a browser killed as a page is opened: Playwright never answers."""

    async def new_page(self) -> None:
        await asyncio.sleep(3)

    async def close(self) -> None:
        await asyncio.sleep(3)


def test_a_page_or_close_a_dead_browser_never_answers_is_given_up() -> None:
    async def scenario() -> float:
        began = time.monotonic()
        context: Any = _DeadBrowserContext()
        with pytest.raises(TimeoutError):
            await new_page(context, 0.1)
        await close_context(context, 0.1)  # no error: the browser is gone anyway
        return time.monotonic() - began

    assert asyncio.run(scenario()) < 1.5
