"""The lawful public-access rules, end to end: refused, logged, nothing kept.

Refusals of non-public targets happen before any connection, so those tests name
addresses as data only; everything that loads is served by the sample site on
127.0.0.1 with --allow-private-network.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osint_capture.demo.sample_site import ROBOTS_TXT, SampleSite
from osint_capture.lawful.robots import robots_verdict
from osint_capture.lawful.rules import (
    AccessRecord,
    BarrierSeen,
    PageSignals,
    inspect_page,
    redact_text,
    redact_url,
    refused_on_sight,
)
from tests.conftest import Cli


def _log(cli: Cli, case_id: str) -> list[dict[str, Any]]:
    lines = (cli.home / case_id / "custody.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def _assert_refused(cli: Cli, case_id: str, proc: Any, url: str, reason_part: str) -> None:
    assert proc.returncode == 3, proc.stderr
    assert reason_part.lower() in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1
    refused = [e for e in _log(cli, case_id) if e["action"] == "capture-refused"]
    assert refused, "the refusal is in the custody log"
    assert refused[-1]["details"]["url"] == url
    assert reason_part.lower() in refused[-1]["details"]["reason"].lower()
    items = cli.home / case_id / "items"
    assert not items.exists() or not any(items.iterdir()), "no evidence item is left"


# -- refused before the browser starts (no traffic at all) ------------------------


@pytest.fixture(scope="module")
def refusals(cli: Cli) -> str:
    """One case for the refusals below: a refusal keeps nothing, and each test reads the
    log's last refusal (the module's tests run one after another)."""
    return cli.new_case()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/post",
        "http://127.0.0.1:9/post",
        "http://127.1:9/",
        "http://2130706433:9/",
        "http://0x7f.0.0.1:9/",
        "http://[::1]:9/",
        "http://foo.localhost:9/",
    ],
)
def test_loopback_in_every_spelling_is_refused(cli: Cli, refusals: str, url: str) -> None:
    case_id = refusals
    proc = cli.run("capture", url, "--case", case_id)
    _assert_refused(cli, case_id, proc, url, "loopback")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/x", "private"),  # address data
        ("http://192.168.0.10/x", "private"),  # address data
        ("http://172.16.5.4/x", "private"),  # address data
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://100.64.0.1/x", "CGNAT"),
        ("http://[fd12:3456::1]/x", "unique-local"),
    ],
)
def test_non_public_addresses_are_refused(cli: Cli, refusals: str, url: str, reason: str) -> None:
    # These addresses are data: the refusal happens before any connection is made.
    case_id = refusals
    proc = cli.run("capture", url, "--case", case_id)
    _assert_refused(cli, case_id, proc, url, reason)


def test_a_refusal_on_sight_imports_nothing_of_the_browser(cli: Cli, refusals: str) -> None:
    # A literal private address needs no lookup: refused, and logged, before Playwright.
    wrapper = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('PLAYWRIGHT', 'playwright' in sys.modules,"
        " file=sys.stderr))\n"
        "from osint_capture.cli import main\n"
        "sys.argv[0] = 'osint-capture'\n"
        "main()\n"
    )
    url = "http://10.9.8.7/on-sight"  # address data, used by no other test here
    argv = [sys.executable, "-c", wrapper, "--home", str(cli.home), "capture", url]
    proc = subprocess.run(
        [*argv, "--case", refusals], capture_output=True, text=True, env=cli.env, timeout=120
    )
    assert proc.returncode == 3, proc.stderr
    assert "PLAYWRIGHT False" in proc.stderr
    refused = [e for e in _log(cli, refusals) if e["action"] == "capture-refused"]
    assert refused[-1]["details"]["url"] == url


@pytest.mark.parametrize(
    ("url", "private_allowed", "on_sight"),
    [
        ("http://127.0.0.1:9/", False, True),
        ("http://127.0.0.1:9/", True, False),
        ("http://0x7f.1/", False, True),
        ("http://[::1]/", False, True),
        ("http://foo.localhost/", False, True),
        ("http://10.1.2.3/", False, True),  # address data
        ("http://8.8.8.8/", False, False),  # address data: public
        ("http://example.com/", False, False),  # a name: looked up by the full check
        ("ftp://example.com/", True, True),
        ("http://user:pw@example.com/", True, True),
        ("not a url", False, False),  # a usage error, told by the full check
        ("http://1.2.3.256/", False, False),
    ],
)
def test_refused_on_sight(url: str, private_allowed: bool, on_sight: bool) -> None:
    assert refused_on_sight(url, allow_private_network=private_allowed) is on_sight


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://127.0.0.1/x",
        "chrome://settings",
    ],
)
def test_other_schemes_are_refused(cli: Cli, refusals: str, url: str) -> None:
    case_id = refusals
    proc = cli.run("capture", url, "--case", case_id, "--allow-private-network")
    assert proc.returncode in (2, 3)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@127.0.0.1:9/post",
        "http://user@127.0.0.1:9/",
        "http://127.0.0.1:9\\@example.com/",
    ],
)
def test_credentials_in_the_url_are_refused(cli: Cli, refusals: str, url: str) -> None:
    case_id = refusals
    proc = cli.run("capture", url, "--case", case_id, "--allow-private-network")
    _assert_refused(cli, case_id, proc, redact_url(url), "credentials")
    log = (cli.home / case_id / "custody.jsonl").read_text()
    assert "secret" not in log and "user@" not in log, "no credential is written down"
    refused = [e for e in _log(cli, case_id) if e["action"] == "capture-refused"]
    assert "REDACTED@" in refused[-1]["details"]["url"]


def test_closed_case_refuses_captures(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    cli.ok("case", "close", case_id)
    log_after_close = (cli.home / case_id / "custody.jsonl").read_bytes()
    url = site.url("/post/1")
    proc = cli.run("capture", url, "--case", case_id, "--allow-private-network")
    assert proc.returncode == 3, proc.stderr
    assert "closed" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # Nothing but examinations, transfers, notes and exports may follow case-closed, so
    # the refusal is not logged: the closed case's log stays as it was, and verifies.
    assert (cli.home / case_id / "custody.jsonl").read_bytes() == log_after_close
    items = cli.home / case_id / "items"
    assert not items.exists() or not any(items.iterdir()), "no evidence item is left"
    verified = subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", str(cli.home / case_id)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout


# -- refused after looking at what loaded (real Chromium, 127.0.0.1) ---------------


# Login walls and challenges, and the public pages beside them: tests/test_access_table.py.


@pytest.mark.browser
def test_a_redirect_to_an_address_with_credentials_writes_no_password_down(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case()
    url = site.url("/redirect/credentials")
    proc = cli.run("capture", url, "--case", case_id, "--allow-private-network")
    _assert_refused(cli, case_id, proc, url, "carries credentials")
    log = (cli.home / case_id / "custody.jsonl").read_text()
    for text in (log, proc.stderr, proc.stdout):
        assert "hunter2" not in text and "alice" not in text
    assert "REDACTED@" in log and "REDACTED@" in proc.stderr
    assert "sub-resource" not in proc.stderr, "the page itself is not a sub-resource"


def test_redact_text_redacts_every_url_in_a_message() -> None:
    text = "blocked (http://alice:hunter2@h.example/p) then wss://bob@h.example/s; a@b.example"
    redacted = redact_text(text)
    assert "hunter2" not in redacted and "alice" not in redacted and "bob" not in redacted
    assert redacted.count("REDACTED@") == 2 and redacted.endswith("a@b.example")


@pytest.mark.browser
def test_proxy_auth_wall_is_not_captured(cli: Cli, site: SampleSite) -> None:
    # Chromium refuses a 407 that does not come from a proxy (ERR_UNEXPECTED_PROXY_AUTH):
    # either way nothing behind the wall is kept.
    case_id = cli.new_case()
    proc = cli.run("capture", site.url("/auth/proxy"), "--case", case_id, "--allow-private-network")
    assert proc.returncode in (3, 4)
    assert len(proc.stderr.strip().splitlines()) == 1
    items = cli.home / case_id / "items"
    assert not items.exists() or not any(items.iterdir())


@pytest.mark.browser
def test_respect_robots_refuses_a_disallowed_url(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    url = site.url("/nocrawl/post")
    proc = cli.run("capture", url, "--case", case_id, "--allow-private-network", "--respect-robots")
    _assert_refused(cli, case_id, proc, url, "robots.txt")


@pytest.mark.browser
def test_robots_is_informational_by_default(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/nocrawl/post"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    item = Path(data["item_dir"])
    assert (item / "robots.txt").read_text() == ROBOTS_TXT
    robots = json.loads((item / "manifest.json").read_bytes())["provenance"]["robots"]
    assert robots["robots_txt"]["verdict"] == "disallowed"
    assert robots["robots_txt"]["enforced"] is False


@pytest.mark.browser
def test_noindex_directives_are_recorded(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/noindex"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    robots = json.loads(Path(data["manifest"]).read_bytes())["provenance"]["robots"]
    assert robots["noindex"] is True and robots["nofollow"] is True
    assert robots["x_robots_tag"] == ["noindex"]
    assert {"noindex", "nofollow"} <= set(data["robots_directives"])
    shown = cli.ok("case", "show", case_id).stdout
    assert "[noindex]" in shown and "[lab only: --allow-private-network]" in shown
    # Captured with no TSA configured: not timestamped, and not said to be awaiting one.
    assert "[not timestamped]" in shown and "awaiting a timestamp]" not in shown


# -- the rules as pure logic ---------------------------------------------------------


def _signals(**kw: Any) -> PageSignals:
    base: dict[str, Any] = dict(
        url="https://social.example/post/1",
        title="Post",
        status=200,
        redirect_chain=("https://social.example/post/1",),
        visible_text_length=5000,
        own_text_length=4900,
        text_beside_password_forms=4900,
        text_beside_challenges=4900,
    )
    base.update(kw)
    return PageSignals(**base)


def test_public_page_with_a_small_login_box_is_not_a_wall() -> None:
    sign_in = BarrierSeen("password form", password_fields=1)
    signals = _signals(password_forms=(sign_in,), text_beside_password_forms=4860)
    assert inspect_page(signals) is None


def test_page_that_is_mostly_a_password_form_is_a_wall() -> None:
    sign_in = BarrierSeen("password form", password_fields=1)
    reason = inspect_page(
        _signals(
            password_forms=(sign_in,),
            visible_text_length=120,
            own_text_length=120,
            text_beside_password_forms=20,
        )
    )
    assert reason is not None and "password form" in reason


def test_redirect_to_login_is_a_wall() -> None:
    reason = inspect_page(
        _signals(
            url="https://social.example/accounts/login/?next=/p",
            redirect_chain=(
                "https://social.example/p",
                "https://social.example/accounts/login/?next=/p",
            ),
        )
    )
    assert reason is not None and "login" in reason


def test_robots_wildcards_follow_rfc_9309() -> None:
    text = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /p/*/edit\nAllow: /p/ok/edit\n"
    assert robots_verdict(text, 200, "https://s.example/a/b.pdf", respect=True)[1] is not None
    assert robots_verdict(text, 200, "https://s.example/a/b.pdfx", respect=True)[1] is None
    assert robots_verdict(text, 200, "https://s.example/p/7/edit", respect=True)[1] is not None
    assert robots_verdict(text, 200, "https://s.example/p/ok/edit", respect=True)[1] is None


def test_redact_url() -> None:
    assert redact_url("http://u:p@h.example:8/x?q") == "http://REDACTED@h.example:8/x?q"
    assert redact_url("http://h.example/a@b") == "http://h.example/a@b"


def test_robots_verdicts() -> None:
    text = "User-agent: *\nDisallow: /private/\n"
    verdict, refusal = robots_verdict(text, 200, "https://s.example/private/x", respect=False)
    assert verdict["verdict"] == "disallowed" and refusal is None
    verdict, refusal = robots_verdict(text, 200, "https://s.example/private/x", respect=True)
    assert refusal is not None
    verdict, refusal = robots_verdict(None, 404, "https://s.example/x", respect=True)
    assert verdict["verdict"] == "no robots.txt" and refusal is None
    verdict, refusal = robots_verdict(None, 503, "https://s.example/x", respect=True)
    assert verdict["allowed"] is False and refusal is not None and "unreachable" in refusal
    verdict, refusal = robots_verdict(None, None, "https://s.example/x", respect=False)
    assert verdict["verdict"] == "robots.txt unreachable" and refusal is None


@pytest.mark.parametrize(
    ("url", "blocked"),
    [
        ("http://10.0.0.7/img.png", True),  # address data
        ("http://169.254.169.254/latest/meta-data/", True),
        ("http://[::1]:8080/x", True),
        ("http://0x7f.1/x", True),
        ("file:///etc/passwd", True),
        ("http://user:pw@8.8.8.8/x", True),
        ("data:image/png;base64,AAAA", False),
        ("http://8.8.8.8/x", False),
    ],
)
def test_sub_resource_gate(url: str, blocked: bool) -> None:
    # Literal addresses only: classification, never a connection.
    record = AccessRecord(allow_private_network=False, respect_robots=False)
    verdict = asyncio.run(record.gate(url))
    assert (verdict is not None) == blocked, verdict
    if verdict is not None:
        assert verdict[0] == "access"
