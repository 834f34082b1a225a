"""Ordinary, slow, huge and hostile pages: none may break, mislabel or wrongly refuse a capture.

Each fixture page of the sample site (``/robust/...``, and sites whose robots.txt answers
as many real servers do) is captured once by real Chromium through the library's capture
pipeline (:func:`~osint_capture.capture.capture_into_case`: rules, engine, WARC, seal,
custody log), several at a time on one browser as batch capture runs them; each test then
reads what came out as an examiner would: the sealed item, its WARC, its custody entries.
"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from chain_of_custody.errors import BrowserCrashed, CaptureFailed, Refused
from chain_of_custody.item import DOM_NAME, MANIFEST_NAME, SCREENSHOT_NAME, TEXT_NAME, WARC_NAME
from chain_of_custody.verify import verify_item
from osint_capture.capture import CaptureReport
from osint_capture.demo.sample_site import SampleSite
from osint_capture.demo.sample_site.server import (
    ARRIVED_TEXT,
    DRIP_FIRST,
    DRIP_LAST,
    HOSTILE_TITLE,
    HUGE_DOM_TEXT,
    LATE_TEXT,
    POST_AUTHOR,
    STUCK_TEXT,
    UNPARSED_TEXT,
)
from tests.capturing import Batch, Outcome, capture_all
from tests.pixels import read_pngs
from tests.warc_reading import Record, read_warc, responses

pytestmark = pytest.mark.browser

CASE = "ROBUST-1"
MIB = 1024 * 1024
# A robots.txt of 30 MB: a Disallow for every page past the first 600 KiB, which RFC
# 9309 lets a crawler ignore (it must parse at least 500 KiB; the capture parses that).
_HUGE_ROBOTS = (
    b"User-agent: *\nDisallow: /nocrawl/\n"
    + b"# padding\n" * (600 * 1024 // 10)
    + b"Disallow: /\n"
    + b"# more padding\n" * (30 * MIB // 15)
)


@dataclass(frozen=True)
class Page:
    """One capture to make: the page, on which site, with which options."""

    path: str
    site: str = "main"
    options: dict[str, Any] = field(default_factory=dict)


# The slowest first, so that the quick ones fill the time they spend waiting.
_SLOWEST_FIRST = (
    "huge-dom",
    "drip-25s",
    "out-of-memory",
    "crash-sign-in",
    "endless-document",
    "drip-endless",
    "stuck-sign-in",
    "stuck-article",
    "stuck-head-sign-in",
    "unparsed-sign-in",
    "unparsed-article",
)
# Each keeps a core busy to its end: they take turns (capture_all), in the order above.
_BURN_A_CORE = frozenset(
    {
        "huge-dom",
        "out-of-memory",
        "crash-sign-in",
        "endless-document",
        "stuck-sign-in",
        "stuck-article",
        "stuck-head-sign-in",
    }
)

PAGES: dict[str, Page] = {
    # 1. robots.txt answering as many real servers do
    **{
        f"robots-{status}": Page("/robust/arrived", f"robots-{status}", {"respect_robots": True})
        for status in (404, 403, 410, 500, 503)
    },
    "robots-500-informational": Page("/robust/arrived", "robots-500"),
    "robots-huge": Page("/robust/arrived", "robots-huge", {"respect_robots": True}),
    # 2. a deleted post
    "deleted-empty": Page("/robust/deleted"),
    "deleted-with-body": Page("/robust/no-such-post"),
    "deleted-empty-chunked": Page("/robust/deleted?chunked=1"),
    # 3. files
    "attachment": Page("/robust/attachment"),
    "attachment-inline": Page("/robust/attachment?inline=1"),
    "direct-pdf": Page("/robust/document.pdf"),
    "direct-pdf-untyped": Page("/robust/document.pdf?untyped=1"),
    # 4. slow documents
    "drip-25s": Page("/robust/drip?seconds=25", options={"settle_timeout": 40.0}),
    "drip-endless": Page("/robust/drip?seconds=600", options={"time_limit": 15.0}),
    # 5. memory
    "endless-resource": Page("/robust/endless-resource", options={"size_limit": 5 * MIB}),
    "endless-document": Page(
        "/robust/endless",
        options={"size_limit": 5 * MIB, "time_limit": 14.0, "max_scroll_rounds": 1},
    ),
    "out-of-memory": Page("/robust/out-of-memory"),
    # A sign-in page whose renderer runs out of memory as it loads, before any check.
    "crash-sign-in": Page("/robust/out-of-memory?page=sign-in"),
    # 6. metadata
    "deep-json-ld": Page("/robust/metadata?depth=5000&override=json"),
    "hostile-getattribute": Page("/robust/metadata?override=attr"),
    "okay-status": Page("/robust/okay-status"),
    # 7. the rendering budget. Loading and scrolling 200,000 elements took 46 s of this
    # minute in CI once, beside the batch's other burners: the DOM step gets a third of
    # what is left. Burners now take turns (_BURN_A_CORE); a longer limit would only make
    # its PDF, which never finishes, burn a core longer.
    "huge-dom": Page(
        "/robust/huge-dom?n=200000", options={"time_limit": 60.0, "max_scroll_rounds": 1}
    ),
    "alert-loop": Page("/robust/alert-loop"),
    "late": Page("/robust/late"),
    "animated": Page("/robust/animated"),
    # 9. a page that cannot be read (once its script hangs): judged on the document as
    # received
    # A hung page burns a core: a short limit that still runs out the access check, with
    # room for its document to arrive while the suite's other worker is busy too.
    "stuck-sign-in": Page("/robust/stuck?page=sign-in", options={"time_limit": 12.0}),
    "stuck-article": Page("/robust/stuck", options={"time_limit": 12.0}),
    # ... and one that hangs in the task that commits it (its script first in the head)
    "stuck-head-sign-in": Page(
        "/robust/stuck?page=sign-in&hang=head", options={"time_limit": 12.0}
    ),
    # ... and one the browser can be asked about, but has parsed nothing of
    "unparsed-sign-in": Page("/robust/unparsed?page=sign-in", options={"time_limit": 12.0}),
    "unparsed-article": Page("/robust/unparsed", options={"time_limit": 12.0}),
    # 8. pages that move themselves on
    "moves-by-script": Page("/robust/moves?how=script"),
    "moves-by-meta-refresh": Page("/robust/moves?how=meta"),
}

_SITES: dict[str, tuple[int, bytes] | None] = {
    "main": None,
    **{f"robots-{status}": (status, b"") for status in (404, 403, 410, 500, 503)},
    "robots-huge": (200, _HUGE_ROBOTS),
}


@contextlib.contextmanager
def _sites() -> Iterator[dict[str, SampleSite]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(SampleSite(robots=r)) for name, r in _SITES.items()}


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    order = [*_SLOWEST_FIRST, *(name for name in PAGES if name not in _SLOWEST_FIRST)]
    with _sites() as sites:
        outcomes = {
            name: Outcome(
                sites[PAGES[name].site].url(PAGES[name].path),
                PAGES[name].options,
                burns_cpu=name in _BURN_A_CORE,
            )
            for name in order
        }
        # Three at once: one burner and two others. Four (a burner and three others, beside
        # the suite's other worker) left a plain page too little time for its settle in CI,
        # and three take no longer: the burners' turns are the batch's longest path.
        home = tmp_path_factory.mktemp("robust") / "evidence"
        yield capture_all(home, CASE, outcomes, at_once=3)


def _captured_whole(outcome: Outcome) -> None:
    outcome.assert_sealed()


def _document(outcome: Outcome, path: str) -> Record:
    [record] = [r for r in responses(outcome.records(), path) if "robots" not in r.uri]
    return record


def _not_refused(captured: Batch, outcome: Outcome) -> None:
    assert captured.refusals_of(outcome.url) == []


def _kept_partial(captured: Batch, name: str) -> tuple[Outcome, CaptureReport]:
    """The capture ``name``: sealed whole, never refused, and partial."""
    outcome = captured[name]
    _captured_whole(outcome)
    _not_refused(captured, outcome)
    assert outcome.report is not None and outcome.report.status == "partial"
    return outcome, outcome.report


# -- 1. robots.txt --------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 410])
def test_an_empty_4xx_robots_txt_means_no_robots_txt(captured: Batch, status: int) -> None:
    outcome = captured[f"robots-{status}"]
    _captured_whole(outcome)
    assert outcome.report is not None and outcome.report.status == "complete"
    robots = outcome.provenance()["robots"]["robots_txt"]
    assert robots["status"] == status and robots["verdict"] == "no robots.txt"
    assert robots["allowed"] is True and robots["enforced"] is True and "error" not in robots
    [answer] = responses(outcome.records(), "/robots.txt")
    assert answer.http_status == str(status) and answer.body == b""
    # The page's own navigation was neither shared nor disturbed.
    assert ARRIVED_TEXT in (outcome.item / TEXT_NAME).read_text()
    assert outcome.steps()["navigate"]["state"] == "done"


@pytest.mark.parametrize("status", [500, 503])
def test_an_empty_5xx_robots_txt_is_unreachable_and_refuses_only_when_respected(
    captured: Batch, status: int
) -> None:
    outcome = captured[f"robots-{status}"]
    assert isinstance(outcome.error, Refused), outcome.error
    assert f"HTTP {status}" in outcome.error.message and "unreachable" in outcome.error.message
    informational = captured["robots-500-informational"]
    _captured_whole(informational)
    assert informational.report is not None and informational.report.status == "complete"
    robots = informational.provenance()["robots"]["robots_txt"]
    assert (robots["status"], robots["verdict"]) == (500, "robots.txt unreachable")
    # Not waited for before the page (informational), yet recorded in its place.
    assert list(informational.steps())[:3] == ["launch-browser", "robots-txt", "navigate"]


def test_a_30_mb_robots_txt_is_recorded_and_its_first_500_kib_parsed(
    captured: Batch,
) -> None:
    outcome = captured["robots-huge"]
    _captured_whole(outcome)
    assert outcome.report is not None and outcome.report.status == "complete"
    robots = outcome.provenance()["robots"]["robots_txt"]
    assert robots["status"] == 200 and robots["verdict"] == "allowed", robots
    assert "500 KiB" in robots["parsed"]
    [answer] = responses(outcome.records(), "/robots.txt")
    assert answer.http_status == "200"
    assert answer.headers.get("WARC-Truncated") == "length"
    assert _HUGE_ROBOTS.startswith(answer.body) and len(answer.body) >= 500 * 1024


# -- 2. a deleted post -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deleted-empty", "deleted-empty-chunked"])
def test_a_deleted_post_with_an_empty_404_is_captured_as_what_the_server_answered(
    captured: Batch, name: str
) -> None:
    outcome = captured[name]
    _captured_whole(outcome)
    assert outcome.report is not None
    assert outcome.report.status == "complete", outcome.report.partial_reasons
    provenance = outcome.provenance()
    assert provenance["http_status"] == 404
    # The whole browser shows an error page of its own; the headless shell, the body.
    shows_its_own = not outcome.in_headless_shell()
    assert provenance["browser_error_page"] is shows_its_own
    assert ("own error page" in outcome.steps()["navigate"]["detail"]) is shows_its_own
    page = _document(outcome, "/robust/deleted")
    assert page.http_status == "404" and page.body == b""
    assert (outcome.item / SCREENSHOT_NAME).stat().st_size > 0  # what the browser showed


def test_a_deleted_post_with_a_body_is_captured_with_its_status(captured: Batch) -> None:
    outcome = captured["deleted-with-body"]
    _captured_whole(outcome)
    assert outcome.report is not None and outcome.report.status == "complete"
    assert outcome.provenance()["http_status"] == 404
    assert outcome.provenance()["browser_error_page"] is False
    assert b"No such page." in _document(outcome, "/robust/no-such-post").body


# -- 3. files ------------------------------------------------------------------------------


def test_a_download_link_is_kept_in_the_warc(captured: Batch) -> None:
    outcome = captured["attachment"]
    _captured_whole(outcome)
    page = _document(outcome, "/robust/attachment")
    assert page.http_status == "200" and page.body.startswith(b"name,last seen\n")
    assert page.http_header("Content-Disposition") is not None
    assert outcome.report is not None
    assert any("download" in reason for reason in outcome.report.partial_reasons)


def test_a_text_type_the_browser_downloads_is_kept_whole_and_says_so(captured: Batch) -> None:
    # text/csv with no Content-Disposition: Chromium downloads it all the same (in the
    # whole browser and the shell), so it is read whole while paused, not streamed.
    outcome = captured["attachment-inline"]
    _captured_whole(outcome)
    page = _document(outcome, "/robust/attachment")
    assert page.http_header("Content-Disposition") is None
    assert page.body == b"name,last seen\nJordan Avery,Pine St station\n"
    assert "WARC-Truncated" not in page.headers
    assert outcome.report is not None and outcome.report.status == "partial"
    [reason] = outcome.report.partial_reasons
    assert "a file this browser downloads instead of showing (text/csv)" in reason
    assert "kept whole in the WARC (44 bytes)" in reason
    assert not (outcome.item / SCREENSHOT_NAME).exists()


@pytest.mark.parametrize("name", ["direct-pdf", "direct-pdf-untyped"])
def test_a_direct_pdf_link_is_complete_despite_the_browsers_own_viewer(
    captured: Batch, name: str
) -> None:
    # The WARC holds the server's PDF, not the page of Chromium's viewer the renderer got.
    outcome = captured[name]
    _captured_whole(outcome)
    assert outcome.report is not None
    assert _document(outcome, "/robust/document.pdf").body.startswith(b"%PDF-1.4")
    if not outcome.in_headless_shell():
        assert outcome.report.status == "complete", outcome.report.partial_reasons
        return
    # The headless shell has no viewer: it would download the file (refused). The PDF is
    # kept, and the item says plainly that nothing shows it.
    assert outcome.report.status == "partial"
    [reason] = outcome.report.partial_reasons
    assert "a file this browser downloads instead of showing" in reason
    assert "downloads are refused" in reason and "no screenshot" in reason
    assert not (outcome.item / SCREENSHOT_NAME).exists()
    assert outcome.steps()["screenshot"]["state"] != "done"


# -- 4. slow documents -------------------------------------------------------------------


def test_a_page_dripping_for_25_s_keeps_its_whole_html(captured: Batch) -> None:
    outcome = captured["drip-25s"]
    _captured_whole(outcome)
    page = _document(outcome, "/robust/drip")
    assert "WARC-Truncated" not in page.headers
    assert DRIP_FIRST.encode() in page.body and page.body.rstrip().endswith(b"</html>")
    assert DRIP_LAST.encode() in page.body
    assert DRIP_LAST in (outcome.item / TEXT_NAME).read_text()


def test_a_page_still_dripping_at_the_time_limit_is_kept_as_partial_not_refused(
    captured: Batch,
) -> None:
    outcome, _ = _kept_partial(captured, "drip-endless")
    steps = outcome.steps()
    assert steps["access-check"]["state"] == "done"
    # robots.txt waits for the page's load event, but not for one that never comes: it
    # was fetched while the page still dripped, long before the load was given up on.
    assert steps["robots-txt"]["state"] == "done"
    assert steps["robots-txt"]["ended"] < steps["access-check"]["started"]
    assert outcome.provenance()["robots"]["robots_txt"]["status"] == 200
    page = _document(outcome, "/robust/drip")
    assert page.headers.get("WARC-Truncated") == "time"
    assert DRIP_FIRST.encode() in page.body
    assert DRIP_FIRST in (outcome.item / TEXT_NAME).read_text()


# -- 5. memory -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["endless-resource", "endless-document"])
def test_an_endless_body_stops_at_the_size_limit(captured: Batch, name: str) -> None:
    outcome, report = _kept_partial(captured, name)
    assert any("size limit" in r for r in report.partial_reasons)
    resources = outcome.provenance()["resources"]
    assert resources["body_bytes"] <= 5 * MIB
    endless_url = outcome.url if name == "endless-document" else "/robust/endless?kind=bin"
    [endless] = [r for r in responses(outcome.records(), "/robust/endless") if endless_url in r.uri]
    assert endless.headers.get("WARC-Truncated") == "length"


def test_a_browser_crash_is_a_crash_with_what_was_recorded_kept(captured: Batch) -> None:
    outcome = captured["out-of-memory"]
    error = outcome.error
    assert isinstance(error, BrowserCrashed) and error.exit_code == 4, error
    assert error.item_id is not None and error.item_id in error.message
    _not_refused(captured, outcome)
    item = captured.store.case_dir(CASE) / "items" / error.item_id
    result = verify_item(item, custody_log=item.parent.parent / "custody.jsonl")
    assert result.ok, [(s.number, s.detail) for s in result.steps if not s.ok]
    manifest = json.loads((item / MANIFEST_NAME).read_bytes())
    assert manifest["status"] == "partial"
    assert "crashed" in manifest["provenance"]["browser_crash"]
    assert any("crashed" in r for r in manifest["provenance"]["status_reasons"])
    logged = [e for e in captured.custody() if e.get("item_id") == error.item_id]
    assert [e["action"] for e in logged] == ["captured"]
    page = [r for r in read_warc(item / WARC_NAME) if "/robust/out-of-memory" in r.uri]
    assert page, "the page recorded before the crash is in the WARC"


# -- 6. metadata ---------------------------------------------------------------------------


def test_json_ld_5000_levels_deep_and_an_overridden_json_parse_keep_the_metadata(
    captured: Batch,
) -> None:
    outcome = captured["deep-json-ld"]
    _captured_whole(outcome)
    assert outcome.steps()["metadata"]["state"] == "done"
    page = outcome.provenance()["page"]
    assert page["authors"] == [POST_AUTHOR] and page["title"] == HOSTILE_TITLE
    deep = json.dumps(page["json_ld"])
    assert "nested deeper than 20 levels: not kept" in deep


def test_an_overridden_get_attribute_changes_nothing_read(captured: Batch) -> None:
    outcome = captured["hostile-getattribute"]
    _captured_whole(outcome)
    assert outcome.steps()["metadata"]["state"] == "done"
    page = outcome.provenance()["page"]
    assert page["authors"] == [POST_AUTHOR]
    assert page["opengraph"]["og:title"] == [HOSTILE_TITLE]


def test_a_status_line_reading_200_okay_is_recorded(captured: Batch) -> None:
    outcome = captured["okay-status"]
    _captured_whole(outcome)  # verify_item runs the whole WARC check
    assert outcome.report is not None and outcome.report.status == "complete"
    page = _document(outcome, "/robust/okay-status")
    assert page.http_status == "200"
    # The reason phrase is written percent-encoded as UTF-8, whatever Chromium decoded.
    with open(outcome.item / WARC_NAME, "rb") as fh:
        lines = [
            record.http_headers.statusline
            for record in ArchiveIterator(fh)
            if record.rec_type == "response"
            and "/robust/okay-status" in (record.rec_headers.get_header("WARC-Target-URI") or "")
        ]
    assert len(lines) == 1 and lines[0].startswith("200 ") and "kay" in lines[0], lines
    assert lines[0].isascii() and "%" in lines[0], lines


# -- 7. the rendering budget -------------------------------------------------------------


def test_a_200000_element_page_keeps_its_dom_and_text_first(captured: Batch) -> None:
    outcome = captured["huge-dom"]
    _captured_whole(outcome)
    steps = outcome.steps()
    assert steps["dom"]["state"] == "done", steps["dom"]
    assert steps["text"]["state"] == "done", steps["text"]
    assert HUGE_DOM_TEXT in (outcome.item / TEXT_NAME).read_text()
    assert "<span>199999 </span>" in (outcome.item / DOM_NAME).read_text()
    names = list(steps)
    assert names.index("dom") < names.index("text") < names.index("screenshot")


def test_an_alert_loop_blocks_no_step(captured: Batch) -> None:
    outcome = captured["alert-loop"]
    _captured_whole(outcome)
    assert outcome.report is not None
    assert outcome.report.status == "complete", outcome.report.partial_reasons
    assert outcome.provenance()["contained"]["dialogs_dismissed"]
    for step in ("dom", "text", "screenshot", "pdf"):
        assert outcome.steps()[step]["state"] == "done"


def test_what_a_page_fetches_soon_after_loading_is_waited_for(captured: Batch) -> None:
    # Its network and DOM are still at once after the load event: the wait for quiet
    # still lasts the quiet period after it, so the deferred fetch is in the capture.
    outcome = captured["late"]
    _captured_whole(outcome)
    assert outcome.report is not None
    assert outcome.report.status == "complete", outcome.report.partial_reasons
    assert LATE_TEXT in (outcome.item / TEXT_NAME).read_text()
    with open(outcome.item / WARC_NAME, "rb") as warc:
        uris = {
            record.rec_headers.get_header("WARC-Target-URI")
            for record in ArchiveIterator(warc)
            if record.rec_type == "response"
        }
    assert any(uri.endswith("/robust/late.json") for uri in uris), uris


# -- 8. pages that move themselves on ------------------------------------------------------


def test_the_screenshot_stills_animations(captured: Batch) -> None:
    """A finite animation is shown at its end, an endless one not at all, in the page and
    in a frame inside it (as Playwright's `animations: "disabled"` shows them)."""
    outcome = captured["animated"]
    _captured_whole(outcome)
    assert outcome.report is not None
    png = (outcome.report.item_dir / SCREENSHOT_NAME).read_bytes()
    read = read_pngs([png], [(100, 100), (100, 400), (100, 700)])
    fade, blink, framed = read["colours"][0]
    assert fade == [0, 128, 0], "the ten-minute fade is shown at its end"
    assert blink == [0, 0, 255], "the endless blink is stopped: the square's own colour"
    assert framed == [255, 0, 255], "in a frame as well"


@pytest.mark.parametrize("name", ["moves-by-script", "moves-by-meta-refresh"])
def test_renderings_refer_to_the_document_they_show(captured: Batch, name: str) -> None:
    outcome = captured[name]
    _captured_whole(outcome)
    assert outcome.report is not None
    assert outcome.report.status == "complete", outcome.report.partial_reasons
    arrived = outcome.url.split("/robust/")[0] + "/robust/arrived"
    provenance = outcome.provenance()
    assert provenance["final_url"] == arrived and provenance["http_status"] == 200
    assert provenance["redirect_chain"] == [{"url": arrived, "status": 200, "location": None}]
    assert [n["url"] for n in provenance["navigations"]] == [outcome.url, arrived]
    records = outcome.records()
    [shown] = [r for r in responses(records, "/robust/arrived")]
    renderings = [r for r in records if r.type in ("resource", "conversion")]
    assert len(renderings) == 4
    for rendering in renderings:
        assert rendering.headers["WARC-Refers-To-Target-URI"] == arrived
        assert rendering.headers["WARC-Refers-To"] == shown.headers["WARC-Record-ID"]
    assert ARRIVED_TEXT in (outcome.item / TEXT_NAME).read_text()


# -- a page nothing can read -------------------------------------------------------------


# The page's script hangs the renderer once the stylesheet before it has loaded. A check
# that reads the page in between (a busy machine) sees it whole and judges that; one that
# comes later cannot read it and judges the document as received (its message says so).
# Either way a sign-in page is refused and an article kept, its document whole.


def test_a_sign_in_page_that_hangs_the_browser_is_still_refused(captured: Batch) -> None:
    outcome = captured["stuck-sign-in"]
    assert isinstance(outcome.error, Refused), outcome.error
    assert "password form" in outcome.error.message
    (refusal,) = captured.refusals_of(outcome.url)
    assert "password form" in refusal["details"]["reason"]


def test_a_public_page_that_hangs_the_browser_is_kept_as_partial(captured: Batch) -> None:
    outcome, _ = _kept_partial(captured, "stuck-article")
    check = outcome.steps()["access-check"]
    if "could not be read" not in check["detail"]:  # read before the hang
        assert check["state"] == "done", check
        assert any(s["state"] == "failed" for s in outcome.steps().values()), "hung after"
    else:
        assert check["state"] == "partial" and "could not be read" in check["detail"]
    # The WARC holds the article as sent (its apostrophe escaped in the HTML).
    assert html.escape(STUCK_TEXT).encode() in _document(outcome, "/robust/stuck").body


def test_a_sign_in_page_that_hangs_as_it_commits_is_never_sealed(captured: Batch) -> None:
    # Its renderer hangs in the task that commits the page, and then often never hands the
    # recorder the document's bytes. What arrived is judged: refused when the form did;
    # when it did not, nothing shows the page is public and nothing of it is kept.
    outcome = captured["stuck-head-sign-in"]
    assert outcome.report is None
    if isinstance(outcome.error, Refused):
        assert "password form" in outcome.error.message
        assert len(captured.refusals_of(outcome.url)) == 1
    else:
        assert isinstance(outcome.error, CaptureFailed), outcome.error
        assert "not received whole" in outcome.error.message
        assert captured.refusals_of(outcome.url) == []
    kept = [e for e in captured.custody() if e["action"] == "captured"]
    assert outcome.url not in [e["details"]["requested_url"] for e in kept]


def test_a_sign_in_page_whose_body_is_never_parsed_is_judged_as_received(
    captured: Batch,
) -> None:
    # The browser answers, but has parsed nothing of the body: no sign of a public page.
    outcome = captured["unparsed-sign-in"]
    assert isinstance(outcome.error, Refused), outcome.error
    assert "password form" in outcome.error.message
    assert "judged on the document as received" in outcome.error.message
    (refusal,) = captured.refusals_of(outcome.url)
    assert "judged on the document as received" in refusal["details"]["reason"]


def test_an_article_whose_body_is_never_parsed_is_kept_as_partial(captured: Batch) -> None:
    outcome, _ = _kept_partial(captured, "unparsed-article")
    check = outcome.steps()["access-check"]
    assert check["state"] == "partial", check
    assert "nothing of its body had been parsed" in check["detail"]
    assert html.escape(UNPARSED_TEXT).encode() in _document(outcome, "/robust/unparsed").body


def test_a_sign_in_page_that_crashes_the_browser_is_still_refused(captured: Batch) -> None:
    # The renderer dies before the access check can read the page: the document as
    # received still shows the wall, and a wall is never sealed as evidence.
    outcome = captured["crash-sign-in"]
    assert isinstance(outcome.error, Refused), outcome.error
    assert "password form" in outcome.error.message
    assert len(captured.refusals_of(outcome.url)) == 1
