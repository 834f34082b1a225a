"""The access rules on a document's HTML as received, for pages nothing can read live."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chain_of_custody.errors import CaptureFailed, Refused
from osint_capture.engine import steps
from osint_capture.engine.exchange import Exchange
from osint_capture.engine.model import EngineResult, StepLog
from osint_capture.lawful.rules import PageRules, inspect_page
from osint_capture.lawful.static import signals_from_document

URL = "https://social.example/p/1"
ARTICLE = "<p>" + "The footbridge over the river stays open through the winter. " * 12 + "</p>"


def _judge(tmp_path: Path, html: str, url: str = URL) -> str | None:
    body = tmp_path / "body"
    body.write_text(html, encoding="utf-8")
    return inspect_page(signals_from_document(body, url=url, status=200, redirect_chain=(url,)))


@pytest.mark.parametrize(
    ("html", "found"),
    [
        (
            "<html><title>Sign in</title><body><header><nav>Home About</nav></header>"
            "<form><label>User <input name=u></label><label>Password "
            "<input type=password name=p></label><button>Sign in</button></form>"
            "<footer>" + "Terms Privacy Cookies Help " * 30 + "</footer></body></html>",
            "password form",
        ),
        (
            '<body><h1>One more step</h1><form><div class="g-recaptcha" data-sitekey="k">'
            "</div></form></body>",
            "reCAPTCHA",
        ),
        ('<body><div id="challenge-stage">Checking your browser</div></body>', "challenge"),
    ],
    ids=["sign-in-page", "captcha-gate", "interstitial"],
)
def test_walls_and_challenges_in_the_html_are_refused(
    tmp_path: Path, html: str, found: str
) -> None:
    reason = _judge(tmp_path, html)
    assert reason is not None and found in reason


@pytest.mark.parametrize(
    "html",
    [
        f"<body><header><form>Sign in <input type=password></form></header>{ARTICLE}</body>",
        f'<body>{ARTICLE}<form><div class="g-recaptcha"></div>Comment</form></body>',
        f'<body>{ARTICLE}<div class="g-recaptcha" data-size="invisible"></div></body>',
        f"<body>{ARTICLE}<script>var s = '<input type=password>';</script></body>",
    ],
    ids=["header-login", "comment-captcha", "invisible-captcha", "password-in-a-script"],
)
def test_public_pages_in_the_html_are_not_refused(tmp_path: Path, html: str) -> None:
    assert _judge(tmp_path, html) is None


def test_a_label_before_its_password_field_counts_inside_the_form(tmp_path: Path) -> None:
    # Long labels inside the form are the form's text, not the page's own.
    label = "Your password, at least twelve characters, never shared with anyone. " * 8
    html = f"<body><form><label>{label}<input type=password></label></form></body>"
    reason = _judge(tmp_path, html)
    assert reason is not None and "password form" in reason


def test_a_missing_document_judges_nothing(tmp_path: Path) -> None:
    signals = signals_from_document(tmp_path / "absent", url=URL, status=200, redirect_chain=(URL,))
    assert inspect_page(signals) is None


# -- the access check's judgement when the page itself cannot be read ------------------

SIGN_IN = (
    "<html><title>Sign in</title><body><form><label>User <input name=u></label>"
    "<label>Password <input type=password name=p></label><button>Sign in</button>"
    "</form></body></html>"
)


def _judged_as_received(
    tmp_path: Path, html: str, *, whole_needed: bool = True, **document: Any
) -> EngineResult:
    """``steps._judge_document`` on a document the recorder holds as given."""
    body = tmp_path / "document"
    body.write_text(html, encoding="utf-8")
    exchange = Exchange(
        0,
        "1",
        URL,
        "GET",
        "Document",
        {},
        None,
        "2026-12-01T00:00:00.000000Z",
        status=200,
        body_path=body,
        body_size=body.stat().st_size,
        **document,
    )
    result = EngineResult(requested_url=URL, started="2026-12-01T00:00:00.000000Z")
    run = SimpleNamespace(rules=PageRules(inspector=inspect_page), steps=StepLog(result))
    steps._judge_document(
        run,  # type: ignore[arg-type]
        exchange,
        (URL,),
        "2026-12-01T00:00:01.000000Z",
        whole_needed=whole_needed,
    )
    return result


def test_valid_a_whole_public_document_is_judged_public(tmp_path: Path) -> None:
    result = _judged_as_received(tmp_path, f"<body>{ARTICLE}</body>", complete=True)
    assert result.steps == []  # the caller records the check as partial, with the reason


@pytest.mark.parametrize(
    ("complete", "truncated", "said"),
    [
        (False, None, "the recorder had not received all of it"),
        (False, "time", "it was cut: time"),
        (False, "disconnect", "it was cut: disconnect"),
    ],
    ids=["still-arriving", "cut-by-time", "cut-by-disconnect"],
)
def test_invalid_a_document_not_received_whole_is_not_kept(
    tmp_path: Path, complete: bool, truncated: str | None, said: str
) -> None:
    # The part that did not arrive may be the wall: with neither the page nor the whole
    # document to judge, nothing shows the page is public.
    with pytest.raises(CaptureFailed) as caught:
        _judged_as_received(
            tmp_path, f"<body>{ARTICLE[:200]}", complete=complete, truncated=truncated
        )
    assert "not received whole" in caught.value.message and said in caught.value.message


@pytest.mark.parametrize(
    ("how", "whole_needed", "document"),
    [
        ("cut-by-the-size-limit", True, {"truncated": "length"}),
        ("abandoned-as-the-page-moved-on", True, {"truncated": "disconnect", "canceled": True}),
        ("a-file-withheld-from-the-browser", True, {"withheld": "a video/mp4 of 9 bytes"}),
        ("struck-by-a-crash", False, {"truncated": "time"}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_valid_a_document_not_whole_for_a_known_reason_is_kept(
    tmp_path: Path, how: str, whole_needed: bool, document: dict[str, Any]
) -> None:
    # Our own limit, a navigation the page made, a file, a crash: each is said elsewhere
    # (partial reasons, the next document's check, the crash), and what arrived is kept.
    result = _judged_as_received(
        tmp_path, f"<body>{ARTICLE[:200]}", whole_needed=whole_needed, **document
    )
    assert result.steps == []


def test_invalid_a_wall_in_what_arrived_is_refused_even_when_cut(tmp_path: Path) -> None:
    with pytest.raises(Refused) as caught:
        _judged_as_received(tmp_path, SIGN_IN, complete=False, truncated="time")
    with pytest.raises(Refused):  # after a crash too
        _judged_as_received(tmp_path, SIGN_IN, whole_needed=False, truncated="time")
    assert "password form" in caught.value.message
