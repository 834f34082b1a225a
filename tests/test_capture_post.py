"""One real capture of the sample post, read back file by file, record by record."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from chain_of_custody.timeutil import parse_utc
from osint_capture.demo.sample_site import (
    COMMENT_PAGES,
    COMMENTS_PER_PAGE,
    POST_ARABIC,
    POST_AUTHOR,
    POST_HEADLINE,
    POST_PUBLISHED,
    SampleSite,
)
from tests.conftest import OPERATOR, Cli
from tests.pixels import read_pngs
from tests.warc_reading import Record, read_warc, responses

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def captured(cli: Cli, site: SampleSite) -> dict[str, Any]:
    case_id = cli.new_case("missing-person")
    proc, data = cli.capture(site.url("/post/1"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    data["case_id"] = case_id
    return data


@pytest.fixture(scope="module")
def manifest(captured: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(captured["manifest"]).read_bytes())


@pytest.fixture(scope="module")
def records(captured: dict[str, Any]) -> list[Record]:
    return read_warc(Path(captured["warc"]))


def test_json_output_names_absolute_paths(captured: dict[str, Any]) -> None:
    for key in ("item_id", "item_dir", "status", "final_url", "manifest", "warc", "screenshot"):
        assert key in captured
    assert captured["status"] == "complete", captured["partial_reasons"]
    for key in ("item_dir", "manifest", "warc", "screenshot"):
        path = Path(captured[key])
        assert path.is_absolute() and path.exists()
    item_dir = Path(captured["item_dir"])
    assert item_dir.parent.name == "items"
    assert item_dir.parent.parent.name == captured["case_id"]
    assert item_dir.name == captured["item_id"]


def test_warc_passes_warcio_check(captured: dict[str, Any]) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "warcio"), "check", "-v", captured["warc"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "digest pass" in proc.stdout


def test_every_record_has_sha256_digests(records: list[Record]) -> None:
    assert records[0].type == "warcinfo"
    for rec in records:
        assert rec.headers["WARC-Block-Digest"].startswith("sha256:")
        assert rec.headers["WARC-Payload-Digest"].startswith("sha256:")
    assert all(r.headers.get("WARC-Type") for r in records)


def test_warcinfo_names_tool_and_browser(records: list[Record]) -> None:
    info = records[0].body.decode()
    assert "software: osint-capture/" in info
    assert "browser: Chromium " in info
    assert "user-agent: Mozilla/5.0" in info


def test_everything_the_browser_loaded_is_recorded(records: list[Record], site: SampleSite) -> None:
    uris = {r.uri for r in records if r.type == "response"}
    requested = {r.uri for r in records if r.type == "request"}
    expected = [
        "/post/1",
        "/static/app.js",
        "/static/style.css",
        "/static/font.woff2",
        "/api/post/1",
        "/img/avatar.png",
        "/img/lazy-1.png",
        "/img/lazy-2.png",
        "/img/lazy-3.png",
        "/img/lazy-4.png",
    ] + [f"/api/comments?page={n}" for n in range(1, COMMENT_PAGES + 2)]
    for path in expected:
        assert site.url(path) in uris, f"no response record for {path}"
        assert site.url(path) in requested, f"no request record for {path}"
    # srcset: the browser picks one candidate; whichever it chose is kept
    assert uris & {site.url("/img/photo-480.png"), site.url("/img/photo-960.png")}


def test_request_records_hold_the_headers_really_sent(
    records: list[Record], site: SampleSite
) -> None:
    (request,) = [r for r in records if r.type == "request" and r.uri == site.url("/post/1")]
    assert request.headers["X-Osint-Capture-Request-Headers"] == "network"
    # added by the network stack, not by the page: proof these are the wire headers
    assert request.http_header("Accept-Encoding") is not None
    assert request.http_header("Host") == site.base_url.split("//")[1]


def test_the_user_agent_recorded_is_the_one_the_page_was_fetched_with(
    records: list[Record], manifest: dict[str, Any], site: SampleSite
) -> None:
    # Asked of the browser once per launch: it must be what every page of it sends.
    (request,) = [r for r in records if r.type == "request" and r.uri == site.url("/post/1")]
    user_agent = manifest["provenance"]["browser"]["user_agent"]
    assert user_agent.startswith("Mozilla/5.0")
    assert request.http_header("User-Agent") == user_agent
    assert f"user-agent: {user_agent}" in records[0].body.decode()


def test_bodies_are_what_the_server_sent(records: list[Record], site: SampleSite) -> None:
    import urllib.request

    for path in ("/api/post/1", "/static/app.js", "/img/lazy-3.png", "/static/font.woff2"):
        with urllib.request.urlopen(site.url(path)) as resp:
            served = resp.read()
        (rec,) = responses(records, site.url(path))
        assert rec.body == served, path
        assert rec.http_header("Content-Length") == str(len(served))


def test_renderings_are_resource_and_conversion_records(
    records: list[Record], captured: dict[str, Any]
) -> None:
    item = Path(captured["item_dir"])
    by_uri = {r.uri.split(":")[2]: r for r in records if r.uri.startswith("urn:osint-capture:")}
    assert by_uri["screenshot"].type == "resource"
    assert by_uri["pdf"].type == "resource"
    assert by_uri["dom"].type == "conversion"
    assert by_uri["text"].type == "conversion"
    for step, name in (
        ("screenshot", "screenshot.png"),
        ("pdf", "page.pdf"),
        ("dom", "dom.html"),
        ("text", "text.txt"),
    ):
        assert by_uri[step].body == (item / name).read_bytes()
        assert "WARC-Refers-To" in by_uri[step].headers


def test_screenshot_is_a_full_page_png(captured: dict[str, Any]) -> None:
    data = Path(captured["screenshot"]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width == 1280
    assert height > 3 * 800, "a full-page screenshot is taller than the viewport"


_SCROLL_UNTIL_JS = """
async (done) => {
  const status = () => document.getElementById("comments-status").textContent;
  for (let i = 0; i < 600 && status() !== done; i++) {
    window.scrollBy(0, 800);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  }
  window.scrollTo(0, 0);
  return status() === done;
}
"""


def test_screenshot_has_the_pixels_of_playwrights_own(
    captured: dict[str, Any], site: SampleSite
) -> None:
    """Our screenshot (Chromium's fast PNG encoding) against Playwright's full-page one
    of the same page in the same browser build: the same size, not one pixel apart."""
    from playwright.sync_api import sync_playwright

    from osint_capture.engine.browser import chromium_args, find_browser

    ours = Path(captured["screenshot"]).read_bytes()
    executable = find_browser(None).executable
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(executable) if executable else None, args=chromium_args()
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(site.url("/post/1"))
        # Scrolled (by script: a mouse over the page would show hover styles) until the
        # page says it has every comment, as the capture left it.
        done = f"All {COMMENT_PAGES * COMMENTS_PER_PAGE} comments loaded."
        assert page.evaluate(_SCROLL_UNTIL_JS, done), "the page never loaded every comment"
        theirs = page.screenshot(full_page=True, animations="disabled")
        read = read_pngs([ours, theirs], page=browser.new_page())
        browser.close()
    assert read["sizes"][0] == read["sizes"][1], read
    assert read["differ"] == 0, read


def test_pdf_holds_the_post(captured: dict[str, Any]) -> None:
    reader = PdfReader(Path(captured["item_dir"]) / "page.pdf")
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    assert "Jordan Avery" in text
    assert len(reader.pages) >= 2


def test_rendered_dom_and_text_after_scripts(captured: dict[str, Any]) -> None:
    item = Path(captured["item_dir"])
    dom = (item / "dom.html").read_text(encoding="utf-8")
    text = (item / "text.txt").read_text(encoding="utf-8")
    assert 'data-post-rendered="true"' in dom
    total = COMMENTS_PER_PAGE * COMMENT_PAGES
    assert f'data-comments-loaded="{total}"' in dom, "infinite scroll did not load every comment"
    for needle in (POST_HEADLINE, POST_ARABIC, "🚨", "🙏", f"Comment {total}:"):
        assert needle in text


def test_manifest_lists_every_file_with_size_and_hash(
    manifest: dict[str, Any], captured: dict[str, Any]
) -> None:
    item = Path(captured["item_dir"])
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.name for p in item.iterdir()} - {
        "manifest.json",
        "manifest.json.sig",
        "SHA256SUMS",
    }
    assert set(listed) == on_disk
    assert {"archive.warc.gz", "screenshot.png", "page.pdf", "dom.html", "text.txt"} <= on_disk
    for name, entry in listed.items():
        data = (item / name).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_manifest_provenance(
    manifest: dict[str, Any], captured: dict[str, Any], site: SampleSite
) -> None:
    p = manifest["provenance"]
    assert manifest["status"] == "complete", p["status_reasons"]
    assert manifest["case_id"] == captured["case_id"]
    assert p["requested_url"] == site.url("/post/1") == p["final_url"]
    assert p["http_status"] == 200
    assert p["redirect_chain"] == [{"url": site.url("/post/1"), "status": 200, "location": None}]
    assert p["capture_started"] < p["capture_ended"]
    assert p["capture_started"].endswith("Z")
    assert "source" in p["clock"]
    assert p["case"]["category"] == "missing-person"
    assert p["case"]["authority"] == "Lt. J. Park, approval 26-114"
    assert p["investigator"] == "Det. Alex Moreno"
    assert p["operator"] == OPERATOR
    assert p["tool"]["name"] == "osint-capture" and p["tool"]["version"]
    assert p["browser"]["name"] == "Chromium" and p["browser"]["version"]
    assert p["browser"]["user_agent"].startswith("Mozilla/5.0")
    assert p["viewport"] == {"width": 1280, "height": 800}
    assert p["workstation"]["os"]
    assert p["tls"] is None  # plain http; the HTTPS test covers the certificate chain
    assert p["options"]["time_limit_ms"] == 60000
    assert p["options"]["size_limit_bytes"] == 200 * 1024 * 1024
    assert p["options"]["allow_private_network"] is True
    assert p["access"]["allow_private_network"] is True
    assert p["access"]["private_network_used"], "the lab flag's use is flagged"
    assert [s["name"] for s in p["steps"]][:3] == ["launch-browser", "robots-txt", "navigate"]
    assert all(s["state"] == "done" for s in p["steps"]), p["steps"]
    steps = {s["name"]: s for s in p["steps"]}
    # Recorded in its place, but fetched once the page was waiting for its load event
    # (settle's start), not beside the page's own loading; unless navigating took most
    # of robots.txt's 1 s hold (a loaded machine), when it may have started by itself.
    sent = parse_utc(steps["navigate"]["started"])
    if parse_utc(steps["settle"]["started"]) - sent < timedelta(seconds=0.8):
        assert steps["robots-txt"]["started"] >= steps["settle"]["started"]


def test_manifest_post_metadata_and_robots(manifest: dict[str, Any]) -> None:
    p = manifest["provenance"]
    assert POST_HEADLINE in p["page"]["title"]
    assert POST_AUTHOR in p["page"]["authors"]
    assert POST_PUBLISHED in p["page"]["published"]
    assert p["page"]["opengraph"]["og:type"] == ["article"]
    assert p["robots"]["noarchive"] is True
    assert p["robots"]["x_robots_tag"] == ["noarchive"]
    assert p["robots"]["meta_robots"] == ["noarchive"]
    assert p["robots"]["robots_txt"]["verdict"] == "allowed"
    # decimal numbers from the page are kept as their decimal strings (canonical JSON)
    (ld,) = p["page"]["json_ld"]
    assert ld["contentLocation"]["geo"]["latitude"] == "31.3271"


def test_signature_verifies_with_openssl(
    captured: dict[str, Any], public_key: Path, manifest: dict[str, Any]
) -> None:
    item = Path(captured["item_dir"])
    proc = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(public_key),
            "-signature",
            str(item / "manifest.json.sig"),
            str(item / "manifest.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.strip() == "Verified OK", proc.stdout + proc.stderr
    assert manifest["signer"]["public_key"].strip() == public_key.read_text().strip()


def test_sha256sums_checks_with_sha256sum(captured: dict[str, Any]) -> None:
    proc = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=captured["item_dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "manifest.json.sig: OK" in proc.stdout


def test_custody_log_binds_the_manifest(cli: Cli, captured: dict[str, Any]) -> None:
    proc = cli.ok("custody", "show", captured["item_id"], "--json")
    events = json.loads(proc.stdout)
    (captured_event,) = [e for e in events if e["action"] == "captured"]
    manifest_sha = hashlib.sha256(Path(captured["manifest"]).read_bytes()).hexdigest()
    assert captured_event["details"]["manifest_sha256"] == manifest_sha
    assert captured_event["actor"] == OPERATOR


def test_independent_verifier_accepts_the_item(captured: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", captured["item_dir"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
