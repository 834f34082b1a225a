"""The request gate in a real browser: a blocked sub-resource is logged and never fetched.

The address rules themselves are tested as data (test_addresses, test_lawful_access);
here a gate that refuses one path on 127.0.0.1 shows the mechanism end to end without
any traffic beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from osint_capture.demo.sample_site import SampleSite
from osint_capture.engine.browser import find_browser
from osint_capture.engine.session import CaptureOptions, EngineResult, run_capture

pytestmark = pytest.mark.browser

Gate = Callable[[str], Awaitable[tuple[str, str] | None]]


def _capture(site: SampleSite, path: str, work: Path, gate: Gate, **options: Any) -> EngineResult:
    opts: dict[str, Any] = {"allow_private_network": True, "time_limit": 60, **options}
    return asyncio.run(
        run_capture(site.url(path), CaptureOptions(**opts), work, find_browser(None), gate=gate)
    )


def test_blocked_sub_resource_is_logged_and_never_reaches_the_server(
    site: SampleSite, tmp_path: Path
) -> None:
    blocked_path = "/img/lazy-2.png"

    async def gate(url: str) -> tuple[str, str] | None:
        if url.endswith(blocked_path):
            return ("access", "test rule: this address is not public")
        return None

    before = len(site.requests)
    result = _capture(site, "/post/1", tmp_path, gate)
    served = [path for _, path in site.requests[before:]]
    assert "/img/lazy-1.png" in served, "the page did scroll to its lazy images"
    assert blocked_path not in served, "the blocked request never left the browser"
    (blocked,) = [b for b in result.blocked if b.url.endswith(blocked_path)]
    assert blocked.rule == "access" and "not public" in blocked.reason
    assert not [ex for ex in result.exchanges if ex.url.endswith(blocked_path)]
    assert any("blocked by the lawful-access rules" in r for r in result.partial_reasons)


def test_every_redirect_hop_passes_the_gate(site: SampleSite, tmp_path: Path) -> None:
    seen: list[str] = []

    async def gate(url: str) -> tuple[str, str] | None:
        seen.append(url)
        return None

    _capture(site, "/redirect/start", tmp_path, gate)
    for hop in ("/redirect/start", "/redirect/middle", "/post/1"):
        assert site.url(hop) in seen, f"{hop} was not checked before it was requested"


def test_a_blocked_redirect_hop_is_never_requested(site: SampleSite, tmp_path: Path) -> None:
    from chain_of_custody.errors import Refused

    async def gate(url: str) -> tuple[str, str] | None:
        if url.endswith("/redirect/middle"):
            return ("access", "test rule: the redirect target is not public")
        return None

    before = len(site.requests)
    with pytest.raises(Refused, match="redirect target is not public"):
        _capture(site, "/redirect/start", tmp_path, gate)
    served = [path for _, path in site.requests[before:]]
    assert "/redirect/start" in served
    assert "/redirect/middle" not in served


def test_worker_and_websocket_requests_pass_the_gate(site: SampleSite, tmp_path: Path) -> None:
    blocked = ("/api/from-worker", "/ws/live")

    async def gate(url: str) -> tuple[str, str] | None:
        if url.endswith(blocked):
            return ("access", "test rule: not public")
        return None

    before = len(site.requests)
    result = _capture(site, "/worker", tmp_path, gate, time_limit=30, settle_timeout=3)
    served = [path for _, path in site.requests[before:]]
    assert "/static/worker.js" in served, "the worker did start"
    for path in blocked:
        assert path not in served, f"{path} reached the server"
    assert {b.url.split("/", 3)[3] for b in result.blocked} >= {"api/from-worker", "ws/live"}
