"""Finding and launching the Chromium that captures run in.

Lookup order (first hit wins):

1. ``--browser PATH`` on the command line, or the environment variable
   ``OSINT_CAPTURE_BROWSER``;
2. the Chromium that ``playwright install chromium`` downloaded, when present;
3. the distribution's Chromium: ``/usr/lib/chromium/chromium`` (Debian),
   ``/usr/lib/chromium-browser/chromium-browser`` (Ubuntu), then ``chromium``,
   ``chromium-browser``, ``google-chrome`` on ``PATH``.

``/usr/bin/chromium`` on Debian is a wrapper script that adds flags of its own,
so the real binary under ``/usr/lib`` is preferred.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chain_of_custody.errors import UsageError

__all__ = [
    "BROWSER_ENV",
    "BrowserChoice",
    "chromium_args",
    "find_browser",
    "os_description",
    "sandbox_available",
]

BROWSER_ENV = "OSINT_CAPTURE_BROWSER"

_DISTRIBUTION_PATHS = (
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium-browser/chromium-browser",
)
_PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class BrowserChoice:
    """Which browser binary a capture uses, and why."""

    executable: Path | None  # None: Playwright's bundled Chromium, launched by Playwright itself
    source: str  # "option", "environment", "playwright", "distribution"
    version: str


def _playwright_chromium() -> Path | None:
    # Playwright knows where its own download would live; it may not be there.
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            candidate = Path(p.chromium.executable_path)
    except Exception:
        return None
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def _binary_version(executable: Path) -> str:
    try:
        out = subprocess.run(
            [str(executable), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def find_browser(option: Path | None = None) -> BrowserChoice:
    """Return the browser to use, following the documented lookup order.

    Raises UsageError when an explicitly named browser does not exist, or when no
    browser is installed at all.
    """
    for explicit, source in ((option, "option"), (os.environ.get(BROWSER_ENV), "environment")):
        if explicit:
            path = Path(explicit).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise UsageError(
                    f"browser not found or not executable: {path}",
                    hint=f"check --browser or {BROWSER_ENV}",
                )
            return BrowserChoice(path.resolve(), source, _binary_version(path))
    bundled = _playwright_chromium()
    if bundled is not None:
        return BrowserChoice(bundled, "playwright", _binary_version(bundled))
    for candidate in _DISTRIBUTION_PATHS:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return BrowserChoice(path, "distribution", _binary_version(path))
    for name in _PATH_NAMES:
        found = shutil.which(name)
        if found:
            return BrowserChoice(Path(found), "distribution", _binary_version(Path(found)))
    raise UsageError(
        "no Chromium found",
        hint="run `make install`, `playwright install chromium`, or `apt-get install chromium`; "
        f"or name one with --browser PATH / {BROWSER_ENV}",
    )


def chromium_args() -> list[str]:
    """Flags every capture's Chromium runs with, on top of Playwright's own.

    The background-networking flags keep the browser from talking to anyone but the
    page under capture. Site isolation is switched off so that cross-site frames load
    through the page's own network stack, where the recorder sees (and the
    lawful-access rules check) every request. Pop-ups are refused outright, so they
    never send a request. No ``--disable-features`` here: Chromium keeps only the
    last one, and Playwright's list (no HTTPS upgrades, no Google preconnects, no
    optimisation hints) must stay in force.
    """
    return [
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-site-isolation-trials",
        "--block-new-web-contents",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    ]


def sandbox_available() -> bool:
    """Chromium's sandbox refuses to start as root; everywhere else it stays on."""
    return not (hasattr(os, "geteuid") and os.geteuid() == 0)


def os_description() -> str:
    return f"{platform.system()} {platform.release()} ({platform.machine()})"
