"""Redirects, encodings, large bodies, pages that never settle, and captures that fail."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from osint_capture.demo.sample_site import (
    CHUNKED_SENTENCE,
    GZIP_SENTENCE,
    SampleSite,
    expected_media_sha256,
)
from tests.conftest import Cli
from tests.warc_reading import read_warc, responses

pytestmark = pytest.mark.browser


def _manifest(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(data["manifest"]).read_bytes())


def _items(cli: Cli, case_id: str) -> list[Path]:
    items = cli.home / case_id / "items"
    return [p for p in items.iterdir() if not p.name.startswith(".")] if items.exists() else []


def test_redirect_hops_are_each_recorded(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/redirect/start"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    assert data["final_url"] == site.url("/post/1")
    chain = _manifest(data)["provenance"]["redirect_chain"]
    assert [(hop["url"], hop["status"]) for hop in chain] == [
        (site.url("/redirect/start"), 301),
        (site.url("/redirect/middle"), 302),
        (site.url("/post/1"), 200),
    ]
    records = read_warc(Path(data["warc"]))
    (first,) = responses(records, site.url("/redirect/start"))
    (second,) = responses(records, site.url("/redirect/middle"))
    assert first.http_status == "301" and first.http_header("Location") == "/redirect/middle"
    assert second.http_status == "302" and second.http_header("Location") == "/post/1"


def test_gzip_body_is_stored_decoded_with_original_headers_kept(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/gzip/article"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    records = read_warc(Path(data["warc"]))
    (page,) = responses(records, site.url("/gzip/article"))
    assert GZIP_SENTENCE.encode() in page.body
    assert page.http_header("X-Archive-Orig-Content-Encoding") == "gzip"
    assert page.http_header("Content-Encoding") is None
    assert page.http_header("Content-Length") == str(len(page.body))
    orig_len = int(page.http_header("X-Archive-Orig-Content-Length") or 0)
    assert 0 < orig_len < len(page.body), "the original length was the compressed length"
    (api,) = responses(records, site.url("/gzip/data.json"))
    json.loads(api.body)


def test_chunked_body_is_whole(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/chunked/article"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    (page,) = responses(read_warc(Path(data["warc"])), site.url("/chunked/article"))
    assert CHUNKED_SENTENCE.encode() in page.body
    assert page.http_header("X-Archive-Orig-Transfer-Encoding") == "chunked"


@pytest.mark.parametrize("direct_link", [False, True], ids=["page-loads-media", "direct-link"])
def test_160_mib_media_kept_whole_with_flat_memory(
    cli: Cli, site: SampleSite, direct_link: bool
) -> None:
    mib = 160
    target = f"/media/big.bin?mib={mib}" if direct_link else f"/post/1/media?mib={mib}"
    case_id = cli.new_case("crime-media")
    # The capture process reports its own peak RSS (VmHWM) on exit, to stderr.
    wrapper = (
        "import atexit, sys\n"
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM'):\n"
        "            print('PEAK', line.split()[1], file=sys.stderr)\n"
        "atexit.register(peak)\n"
        "from osint_capture.cli import main\n"
        "sys.argv[0] = 'osint-capture'\n"
        "main()\n"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            wrapper,
            "--home",
            str(cli.home),
            "capture",
            site.url(target),
            "--case",
            case_id,
            "--allow-private-network",
            "--json",
            # 160 MiB reaches us at ~20 MiB/s through the DevTools body stream (8 s on a quiet
            # machine): settle's default 10 s was too short in CI with two workers running.
            "--settle-timeout",
            "40",
        ],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    if direct_link:
        # the file is the evidence; the browser was deliberately not handed it whole
        assert data["status"] == "partial"
        assert "kept whole in the WARC" in data["partial_reasons"][0]
        assert data["screenshot"] is None, "nothing else is rendered in its place"
        assert data["final_url"] == site.url(target)
    else:
        assert data["status"] == "complete", data["partial_reasons"]
    peak_kib = int(
        next(line for line in proc.stderr.splitlines() if line.startswith("PEAK")).split()[1]
    )
    assert peak_kib < 300 * 1024, f"capture process peaked at {peak_kib} KiB"
    # Stream the WARC: find the media record and hash its body without holding it.
    wanted = site.url(f"/media/big.bin?mib={mib}")
    digest = None
    with open(data["warc"], "rb") as fh:
        for rec in ArchiveIterator(fh):
            if (
                rec.rec_type == "response"
                and rec.rec_headers.get_header("WARC-Target-URI") == wanted
            ):
                h = hashlib.sha256()
                stream = rec.content_stream()
                size = 0
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                digest = h.hexdigest()
                assert size == mib * 1024 * 1024
                assert rec.rec_headers.get_header("WARC-Payload-Digest") == "sha256:" + digest
    assert digest == expected_media_sha256(mib)


def test_size_limit_truncates_and_reports_partial(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case("crime-media")
    proc, data = cli.capture(site.url("/post/1/media?mib=8"), case_id, "--size-limit", "2")
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    assert data["status"] == "partial"
    assert any("size limit" in r for r in data["partial_reasons"])
    (media,) = responses(read_warc(Path(data["warc"])), "/media/big.bin")
    assert media.headers["WARC-Truncated"] == "length"
    assert len(media.body) < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("path", "open_url"),
    [("/slow/longpoll", "/api/longpoll"), ("/slow/trickle", "/img/trickle.png")],
)
def test_page_that_never_settles_ends_partial_within_the_limit(
    cli: Cli, site: SampleSite, path: str, open_url: str
) -> None:
    case_id = cli.new_case("online-crime")
    limit = 20
    proc, data = cli.capture(
        site.url(path), case_id, "--time-limit", str(limit), "--settle-timeout", "3"
    )
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    assert data["status"] == "partial"
    reasons = " ".join(data["partial_reasons"])
    assert open_url in reasons
    manifest = _manifest(data)
    prov = manifest["provenance"]
    assert manifest["status"] == "partial"
    assert prov["status_reasons"] == data["partial_reasons"]
    from chain_of_custody.timeutil import parse_utc

    took = (parse_utc(prov["capture_ended"]) - parse_utc(prov["capture_started"])).total_seconds()
    assert took <= limit
    # what it showed is kept
    assert Path(data["screenshot"]).stat().st_size > 0
    text = (Path(data["item_dir"]) / "text.txt").read_text(encoding="utf-8")
    assert ("Long-poll page" if "longpoll" in path else "Trickle page") in text


def test_redirect_loop_fails_fast_with_exit_4(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, _ = cli.capture(site.url("/redirect/loop"), case_id)
    assert proc.returncode == 4
    assert "redirect loop" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _items(cli, case_id) == []
    assert not list((cli.home / case_id / "items").glob(".staging-*"))


def test_unreachable_site_exit_4(cli: Cli) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    case_id = cli.new_case()
    proc, _ = cli.capture(f"http://127.0.0.1:{port}/post/1", case_id)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _items(cli, case_id) == []


def test_rate_limit_once_is_retried_after_retry_after(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/ratelimit/once"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    records = read_warc(Path(data["warc"]))
    statuses = [r.http_status for r in responses(records, site.url("/ratelimit/once"))]
    assert statuses == ["429", "200"]


def test_rate_limit_always_gives_up_with_exit_4(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, _ = cli.capture(site.url("/ratelimit/always"), case_id)
    assert proc.returncode == 4
    assert "429" in proc.stderr
    assert _items(cli, case_id) == []


def test_missing_case_is_a_usage_error(cli: Cli, site: SampleSite) -> None:
    proc, _ = cli.capture(site.url("/post/1"), "NO-SUCH-CASE")
    assert proc.returncode == 2
    assert "no case 'NO-SUCH-CASE'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_key_stops_before_the_browser(cli: Cli, site: SampleSite, tmp_path: Path) -> None:
    case_id = cli.new_case()
    before = len(site.requests)
    proc = cli.run(
        "capture",
        site.url("/post/1"),
        "--case",
        case_id,
        "--allow-private-network",
        env={"OSINT_CAPTURE_KEY_DIR": str(tmp_path / "empty")},
    )
    assert proc.returncode == 2
    assert "keys init" in proc.stderr
    assert len(site.requests) == before, "nothing was fetched"


def test_wrong_passphrase_is_one_line(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc = cli.run(
        "capture",
        site.url("/post/1"),
        "--case",
        case_id,
        "--allow-private-network",
        env={"OSINT_CAPTURE_PASSPHRASE": "wrong"},
    )
    assert proc.returncode == 2
    assert "passphrase" in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1


def test_doctor_reports_the_browser(cli: Cli) -> None:
    proc = cli.ok("doctor")
    assert "browser:" in proc.stdout and "Chromium" in proc.stdout
    assert "ready to capture" in proc.stdout


def test_browser_override_that_does_not_exist(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc = cli.run(
        "capture",
        site.url("/post/1"),
        "--case",
        case_id,
        "--allow-private-network",
        env={"OSINT_CAPTURE_BROWSER": "/nonexistent/chromium"},
    )
    assert proc.returncode == 2
    assert "/nonexistent/chromium" in proc.stderr
    assert os.path.exists(cli.home / case_id)


# The default browser on a machine with Playwright's download or Debian's
# chromium-headless-shell is the headless shell; the whole browser, run headless, shows
# a PDF in its viewer and an empty 404 as an error page of its own (see
# tests/test_capture_robustness.py for the shell's side of both).
_WHOLE_BROWSER = Path("/usr/lib/chromium/chromium")


@pytest.mark.skipif(not _WHOLE_BROWSER.is_file(), reason="Debian's chromium is not installed")
def test_the_whole_browser_shows_a_pdf_in_its_viewer_and_an_empty_404_as_its_error_page(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(
        site.url("/robust/document.pdf"), case_id, "--browser", str(_WHOLE_BROWSER)
    )
    assert proc.returncode == 0, proc.stderr
    assert data is not None and data["status"] == "complete", data
    provenance = _manifest(data)["provenance"]
    assert provenance["browser"]["executable"] == str(_WHOLE_BROWSER)
    (pdf,) = responses(read_warc(Path(data["warc"])), site.url("/robust/document.pdf"))
    assert pdf.body.startswith(b"%PDF-1.4")
    assert data["screenshot"] and Path(data["screenshot"]).stat().st_size > 0

    proc, data = cli.capture(site.url("/robust/deleted"), case_id, "--browser", str(_WHOLE_BROWSER))
    assert proc.returncode == 0, proc.stderr
    assert data is not None and data["status"] == "complete", data
    provenance = _manifest(data)["provenance"]
    assert provenance["http_status"] == 404 and provenance["browser_error_page"] is True
    navigate = {s["name"]: s for s in provenance["steps"]}["navigate"]
    assert "own error page" in navigate["detail"]
