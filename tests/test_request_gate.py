"""The request gate in a real browser: a blocked sub-resource is logged and never fetched.

The address rules themselves are tested as data (test_addresses, test_lawful_access);
here a gate that refuses one path on 127.0.0.1 shows the mechanism end to end without
any traffic beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from osint_capture.browser import find_browser
from osint_capture.engine import CaptureOptions, run_capture
from osint_capture.sample_site import SampleSite

pytestmark = pytest.mark.browser


def test_blocked_sub_resource_is_logged_and_never_reaches_the_server(
    site: SampleSite, tmp_path: Path
) -> None:
    blocked_path = "/img/lazy-2.png"

    async def gate(url: str) -> tuple[str, str] | None:
        if url.endswith(blocked_path):
            return ("access", "test rule: this address is not public")
        return None

    before = len(site.requests)
    result = asyncio.run(
        run_capture(
            site.url("/post/1"),
            CaptureOptions(allow_private_network=True, time_limit=60),
            tmp_path,
            find_browser(None),
            gate=gate,
        )
    )
    served = [path for _, path in site.requests[before:]]
    assert "/img/lazy-1.png" in served, "the page did scroll to its lazy images"
    assert blocked_path not in served, "the blocked request never left the browser"
    (blocked,) = [b for b in result.blocked if b.url.endswith(blocked_path)]
    assert blocked.rule == "access" and "not public" in blocked.reason
    assert not [ex for ex in result.exchanges if ex.url.endswith(blocked_path)]
    assert any("blocked by the lawful-access rules" in r for r in result.partial_reasons)
