"""The lawful public-access rules: what the tool refuses to capture, and why.

Policy IV.B.8: search methods shall not involve techniques that violate existing
law. For this tool that means only what any member of the public sees without
logging in, without deception and without circumventing any barrier. Each rule
below is enforced here and recorded in the manifest (``access`` block) or, when
it refuses, in the custody log as a ``capture-refused`` event. docs/LAWFUL_USE.md
explains them in plain words.

1. Only ``http`` and ``https`` URLs (exit 2 otherwise).
2. No credentials in the URL; the tool has no way to supply cookies, logins,
   authorization headers or a browser profile.
3. Only public addresses: the target, every redirect hop and every sub-resource
   are checked after name resolution; a blocked sub-resource is logged and never
   fetched. ``--allow-private-network`` lifts this for lab and test use only.
4. No login walls: HTTP 401/407, a redirect to a sign-in address, a password form
   at a sign-in address, or a page whose main content is a password form (a visible
   one outside the site's header, navigation, sidebars and footer, with under 400
   characters of the page's own text beside it). A sign-in box in a corner of a
   public page is not a wall.
5. No bot challenges in front of the content: a challenge interstitial (Cloudflare's
   markers or "Just a moment..." title), a visible reCAPTCHA, hCaptcha or Turnstile
   widget with under 400 characters of the page's own text beside it, or the words
   "verify you are human" and the like on a page that short. Nothing is solved or
   retried around; an invisible widget, or one on a comment form under a public
   article, is not a barrier.
6. robots.txt is fetched and its verdict recorded; with ``--respect-robots`` a
   Disallow refuses the capture (:mod:`osint_capture.lawful.robots`).

:class:`AccessRecord` is the one place they are enforced during a capture: before the
browser starts (:meth:`AccessRecord.check_target`), on every request the browser makes
(:meth:`AccessRecord.gate`), on the page that loaded (:meth:`AccessRecord.inspect`), on
robots.txt (:meth:`AccessRecord.robots`) and, once the browser has closed, on every
address it actually connected to (:meth:`AccessRecord.check_connected`). The engine
only asks, through :class:`PageRules`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chain_of_custody.errors import CaptureFailed, Refused, UsageError
from osint_capture.lawful.addresses import AddressVerdict, check_public, classify_ip, url_host_port
from osint_capture.lawful.robots import robots_verdict

__all__ = [
    "THIN_PAGE_TEXT",
    "AccessInspector",
    "AccessRecord",
    "BarrierSeen",
    "PageRules",
    "PageSignals",
    "RequestGate",
    "RobotsPolicy",
    "check_target_url",
    "inspect_page",
    "redact_text",
    "redact_url",
    "refused_on_sight",
]

_ALLOWED_SCHEMES = ("http", "https")
# A path segment that names a sign-in page. Not any "session": a conference session
# (/session/keynote-2026) is public; a sign-in form lives at sessions/new (Rails).
_LOGIN_PATH = re.compile(
    r"/(log[-_]?in|log[-_]?on|sign[-_]?in|sign[-_]?on|auth|sessions?/new|sso|oauth2?)(/|$|\.)",
    re.IGNORECASE,
)
# With less of its own visible text than this beside a password form or a challenge,
# a page is the form or the challenge, not a public page that happens to carry one.
THIN_PAGE_TEXT = 400
MAIN_CONTENT = "main content"
_CHALLENGE_PHRASES = (
    "verify you are human",
    "are you a robot",
    "checking your browser",
    "checking if the site connection is secure",
    "needs to review the security of your connection",
    "complete the security check",
    "prove you are human",
)
# Titles of challenge interstitials: the page is the challenge, whatever else it says.
_INTERSTITIAL_TITLES = ("just a moment...", "attention required! | cloudflare")


@dataclass(frozen=True)
class BarrierSeen:
    """A visible password form or challenge widget, and where on the page it stands."""

    kind: str
    """``password form``, ``reCAPTCHA``, ``hCaptcha`` or ``Turnstile``."""
    place: str = MAIN_CONTENT
    """``main content``, or the part of the site's chrome around it: ``header``,
    ``navigation``, ``sidebar`` or ``footer``."""
    password_fields: int = 0

    @property
    def in_main_content(self) -> bool:
        return self.place == MAIN_CONTENT

    def describe(self) -> str:
        where = "in the main content" if self.in_main_content else f"in the page's {self.place}"
        if self.kind == "password form":
            fields = "" if self.password_fields <= 1 else f" ({self.password_fields} fields)"
            return f"a password form{fields} {where}"
        return f"a visible {self.kind} {where}"


@dataclass(frozen=True)
class PageSignals:
    """What the lawful-access rules need to see of a loaded page.

    Text lengths are of the text a visitor sees (``innerText``, trimmed). The page's
    own text is what stands outside the site's chrome: its header, navigation,
    sidebars and footer. A document the browser did not render has only the first four.
    """

    url: str
    title: str
    status: int
    redirect_chain: tuple[str, ...]
    password_forms: tuple[BarrierSeen, ...] = ()
    challenge_widgets: tuple[BarrierSeen, ...] = ()
    interstitial_markers: tuple[str, ...] = ()
    """Ids of challenge interstitials found on the page (``challenge-form`` …)."""
    visible_text_length: int = 0
    own_text_length: int = 0
    """The page's own text: outside its header, navigation, sidebars and footer."""
    text_beside_password_forms: int = 0
    """The page's own text outside every visible password form (each counted once)."""
    text_beside_challenges: int = 0
    """The page's own text outside every visible challenge widget's form."""
    text_sample: str = ""
    """The start of the page's visible text, for the challenge phrases."""

    @classmethod
    def from_page_script(
        cls, raw: dict[str, Any], *, url: str, status: int, redirect_chain: tuple[str, ...]
    ) -> PageSignals:
        """The signals from what ``SIGNALS_JS`` answered (a JSON object)."""

        def barriers(key: str, kind_key: str | None) -> tuple[BarrierSeen, ...]:
            return tuple(
                BarrierSeen(
                    kind=str(item[kind_key]) if kind_key else "password form",
                    place=str(item.get("place", MAIN_CONTENT)),
                    password_fields=int(item.get("fields", 0)),
                )
                for item in raw.get(key, [])
            )

        return cls(
            url=url,
            title=str(raw.get("title", "")),
            status=status,
            redirect_chain=redirect_chain,
            password_forms=barriers("passwordForms", None),
            challenge_widgets=barriers("widgets", "kind"),
            interstitial_markers=tuple(str(m) for m in raw.get("markers", [])),
            visible_text_length=int(raw.get("textLength", 0)),
            own_text_length=int(raw.get("ownTextLength", 0)),
            text_beside_password_forms=int(raw.get("besidePasswordForms", 0)),
            text_beside_challenges=int(raw.get("besideChallenges", 0)),
            text_sample=str(raw.get("textSample", "")),
        )


# Before a request leaves the browser: None to allow it, or (rule, reason) to block it;
# rule "access" is a lawful-access refusal, "dns" a name that did not resolve.
RequestGate = Callable[[str], Awaitable[tuple[str, str] | None]]
# A refusal reason for the page that loaded, or None when it may be captured.
AccessInspector = Callable[[PageSignals], str | None]
# robots.txt text (None if unavailable), its HTTP status and the URL: (verdict, refusal).
RobotsPolicy = Callable[[str | None, int | None, str], tuple[dict[str, Any], str | None]]


@dataclass(frozen=True)
class PageRules:
    """What the engine asks the access rules during a capture (each may be absent)."""

    gate: RequestGate | None = None
    inspector: AccessInspector | None = None
    robots_policy: RobotsPolicy | None = None


def redact_url(url: str) -> str:
    """The URL as it may be written down: user-info replaced by ``REDACTED@``.

    A refused URL with a password in it goes into the signed, append-only custody
    log; the password must not.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # Not stopping at "\\" (browsers read it as "/"): the longer authority is the
    # conservative one, so whatever either reading calls user-info is redacted.
    authority_end = len(rest)
    for ch in "/?#":
        pos = rest.find(ch)
        if pos != -1:
            authority_end = min(authority_end, pos)
    authority = rest[:authority_end]
    if "@" not in authority:
        return url
    return f"{scheme}://REDACTED@{authority.rsplit('@', 1)[1]}{rest[authority_end:]}"


_URL_WITH_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


def redact_text(text: str) -> str:
    """``text`` with the user-info of every URL in it replaced by ``REDACTED@``."""
    return _URL_WITH_USERINFO.sub(r"\1REDACTED@", text)


def check_target_url(url: str) -> None:
    """Rules 1 and 2, before anything else happens."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise UsageError(f"not a valid URL: {url!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise UsageError(f"not a URL: {url!r}", hint="give a full http(s):// address")
    if scheme not in _ALLOWED_SCHEMES:
        raise Refused(
            f"only http and https addresses may be captured, not {scheme}: URLs",
            hint="lawful public-access rule 1",
        )
    if not parts.hostname:
        raise UsageError(f"the URL has no host: {url!r}")
    # Browsers read "\\" as "/" and the last "@" of the authority as the end of
    # the user info; look at the authority the way they do.
    rest = url.strip().split(":", 1)[1].replace("\\", "/").lstrip("/")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if parts.username is not None or parts.password is not None or "@" in authority:
        raise Refused(
            "the URL carries credentials (user:password@); only what the public sees "
            "without logging in may be captured",
            hint="lawful public-access rule 2",
        )


class _NeedsLookup(Exception):
    """A name to look up: no verdict on sight."""


def _no_lookup(host: str, port: int) -> list[str]:
    raise _NeedsLookup


def refused_on_sight(url: str, *, allow_private_network: bool) -> bool:
    """Whether rules 1-3 refuse ``url`` with no name looked up: its scheme, credentials
    in it, or a non-public address written as a literal or as localhost.

    A command can then refuse it without starting anything of the browser. What this
    cannot settle alone (a name to resolve, a URL that is not one) says False, and
    :meth:`AccessRecord.check_target` decides as always.
    """
    try:
        check_target_url(url)
        host, port = url_host_port(url)
        check_public(host, port, allow_private=allow_private_network, resolver=_no_lookup)
    except Refused:
        return True
    except (_NeedsLookup, CaptureFailed, UsageError, ValueError):
        return False
    return False


@dataclass
class AccessRecord:
    """What the access rules checked during one capture, for the manifest."""

    allow_private_network: bool
    respect_robots: bool
    checked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocked: list[dict[str, str]] = field(default_factory=list)
    _cache: dict[tuple[str, int], tuple[str, str] | None] = field(default_factory=dict)

    async def gate(self, url: str) -> tuple[str, str] | None:
        """Rule 3 for every request the browser makes: None, or (rule, reason) to block."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("data", "blob", "about"):
            return None
        if scheme not in ("http", "https", "ws", "wss"):
            return ("access", f"scheme {scheme}: is not public web content")
        if parts.username is not None or parts.password is not None:
            return (
                "access",
                "the address carries credentials (user:password@); only what the public "
                "sees without logging in may be captured",
            )
        try:
            host, port = url_host_port(url)
        except UsageError as exc:
            return ("access", exc.message)
        key = (host, port)
        if key not in self._cache:
            self._cache[key] = await asyncio.get_running_loop().run_in_executor(
                None, self._check, host, port
            )
        return self._cache[key]

    def _check(self, host: str, port: int) -> tuple[str, str] | None:
        try:
            verdicts = check_public(host, port, allow_private=self.allow_private_network)
        except Refused as exc:
            return ("access", exc.message)
        except CaptureFailed as exc:
            # Unresolvable: blocked, since an unchecked name is never fetched, but it is
            # no lawful-access finding and does not make the capture partial.
            return ("dns", exc.message)
        self.checked[f"{host}:{port}"] = [_verdict_record(v) for v in verdicts]
        return None

    def target_verdicts(self, url: str) -> tuple[AddressVerdict, ...]:
        """Rule 3 for the target itself, before the browser starts (raises Refused)."""
        host, port = url_host_port(url)
        verdicts = check_public(host, port, allow_private=self.allow_private_network)
        self.checked[f"{host}:{port}"] = [_verdict_record(v) for v in verdicts]
        return verdicts

    def check_target(self, url: str) -> None:
        """Rules 1-3 for the URL itself, before the browser starts (raises Refused)."""
        check_target_url(url)
        self.target_verdicts(url)

    def inspect(self, signals: PageSignals) -> str | None:
        """Rules 4 and 5 for the page that loaded."""
        return inspect_page(signals)

    def robots(
        self, text: str | None, status: int | None, url: str
    ) -> tuple[dict[str, Any], str | None]:
        """Rule 6: the robots.txt verdict; a refusal only with ``--respect-robots``."""
        return robots_verdict(text, status, url, respect=self.respect_robots)

    def page_rules(self) -> PageRules:
        """These rules as the engine asks them during the capture."""
        return PageRules(gate=self.gate, inspector=self.inspect, robots_policy=self.robots)

    def check_connected(self, connections: Iterable[tuple[str, str]]) -> None:
        """Rule 3 once more, on each (URL, address) the browser actually connected to.

        The browser resolves names itself: a name that resolved to a public address for
        the check and to a private one for the browser (DNS rebinding) is caught here.
        """
        if self.allow_private_network:
            return
        for url, address in connections:
            try:
                verdict = classify_ip(address.strip("[]"))
            except UsageError:
                continue
            if not verdict.public:
                raise Refused(
                    f"the browser connected to {verdict.address} ({verdict.reason}) for {url}; "
                    "only public addresses may be captured",
                    hint="the name resolved differently for the browser than for the check",
                )

    def record_blocked(self, blocked: Iterable[tuple[str, str, str]]) -> None:
        """Keep the requests the rules blocked, (url, reason, time), for the manifest."""
        self.blocked = [
            {"url": url, "reason": reason, "time": time} for url, reason, time in blocked
        ]

    def as_record(self) -> dict[str, Any]:
        rules = [
            "http and https only",
            "no credentials in the URL; empty browser context (no cookies, logins, profile)",
            "public addresses only, checked after DNS for the target, every redirect and every "
            "sub-resource"
            + (" — LIFTED by --allow-private-network" if self.allow_private_network else ""),
            "no login walls (401/407, redirect to a sign-in address, a page whose main "
            "content is a password form)",
            "no bot challenges in front of the content (interstitial, or a visible reCAPTCHA, "
            "hCaptcha, Turnstile or verify-you-are-human on a page with little else)",
            "robots.txt "
            + ("respected: Disallow refuses" if self.respect_robots else "recorded, informational"),
        ]
        private_seen = sorted(
            hostport for hostport, vs in self.checked.items() if any(not v["public"] for v in vs)
        )
        return {
            "rules": rules,
            "allow_private_network": self.allow_private_network,
            "private_network_used": private_seen,
            "respect_robots": self.respect_robots,
            "addresses_checked": self.checked,
            "blocked_requests": self.blocked,
        }


def _verdict_record(v: AddressVerdict) -> dict[str, Any]:
    return {"address": v.address, "public": v.public, "reason": v.reason}


def inspect_page(signals: PageSignals) -> str | None:
    """Rules 4 and 5 for the page that loaded: a refusal reason, or None.

    Refused is what a member of the public cannot get past: an HTTP authentication
    wall, a sign-in page, a challenge in front of the content. A sign-in box or a
    CAPTCHA beside public content is captured with it.
    """
    url = signals.url
    if signals.status in (401, 407):
        kind = (
            "HTTP 401 Unauthorized"
            if signals.status == 401
            else "HTTP 407 Proxy Authentication Required"
        )
        return f"login wall: {kind} at {url}"
    challenge = _challenge_in_front(signals)
    if challenge:
        return (
            "bot challenge or CAPTCHA in front of the content ("
            + "; ".join(challenge)
            + f") at {url}; the tool never solves or works around one"
        )
    at_sign_in_address = bool(_LOGIN_PATH.search(urlsplit(url).path or "/"))
    hops = signals.redirect_chain
    if len(hops) > 1 and at_sign_in_address:
        return f"login wall: redirected from {hops[0]} to a login page {url}"
    forms = signals.password_forms
    if not forms:
        return None
    if at_sign_in_address:
        return f"login wall: {forms[0].describe()} at a sign-in address ({url})"
    beside = signals.text_beside_password_forms
    main = [f for f in forms if f.in_main_content]
    if main and beside < THIN_PAGE_TEXT:
        return (
            f"login wall: the page's main content is a password form ({main[0].describe()}, "
            f"{_chars(beside)} of the page's own text beside it, under {THIN_PAGE_TEXT}) "
            f"at {url}"
        )
    if not main and signals.own_text_length == 0:
        return (
            f"login wall: the page shows nothing but a password form "
            f"({forms[0].describe()}) at {url}"
        )
    return None


def _challenge_in_front(signals: PageSignals) -> list[str]:
    """What shows a challenge stands in front of the content; empty when none does."""
    found = [f"challenge interstitial #{marker}" for marker in signals.interstitial_markers]
    title = signals.title.strip()
    if title.lower() in _INTERSTITIAL_TITLES:
        found.append(f'challenge interstitial titled "{title}"')
    beside = signals.text_beside_challenges
    for widget in signals.challenge_widgets:
        if widget.in_main_content and beside < THIN_PAGE_TEXT:
            found.append(
                f"{widget.describe()}, {_chars(beside)} of the page's own text beside it, "
                f"under {THIN_PAGE_TEXT}"
            )
        elif not widget.in_main_content and signals.own_text_length == 0:
            found.append(f"{widget.describe()}, and no text of the page's own")
    # The words alone are a challenge only on a page that short: an article about
    # CAPTCHAs ("Are you a robot?") is not one, even in its title.
    if signals.own_text_length < THIN_PAGE_TEXT:
        sample = f"{title} {signals.text_sample}".lower()
        found.extend(f'"{phrase}"' for phrase in _CHALLENGE_PHRASES if phrase in sample)
    return found


def _chars(n: int) -> str:
    return f"{n} character" + ("" if n == 1 else "s")
