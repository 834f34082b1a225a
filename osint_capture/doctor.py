"""``osint-capture doctor``: is this machine ready to capture?"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from rich.console import Console

from chain_of_custody.errors import OsintCaptureError
from osint_capture.engine.browser import BROWSER_ENV, find_browser

__all__ = ["run_doctor"]


def run_doctor(browser: Path | None, out: Console) -> list[str]:
    """Print what was found; return the problems (empty when ready)."""
    problems: list[str] = []
    out.print(f"python:      {sys.version.split()[0]}")
    for dist in ("osint-capture", "playwright", "warcio", "cryptography", "typer"):
        try:
            out.print(f"{dist + ':':<12} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed")
    try:
        choice = find_browser(browser)
    except OsintCaptureError as exc:
        problems.append(exc.one_line())
    else:
        where = choice.executable or "Playwright's bundled Chromium"
        out.print(f"browser:     {choice.version} ({where}; found by {choice.source})")
        if choice.version == "unknown":
            problems.append(f"the browser at {where} did not report a version")
    out.print(f"override:    --browser PATH or ${BROWSER_ENV}")
    if shutil.which("fc-list") is not None:
        fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
        if "emoji" not in fonts.lower():
            out.print(
                "fonts:       no colour emoji font: screenshots will show boxes for emoji "
                "(apt-get install fonts-noto-color-emoji)"
            )
    if shutil.which("certutil") is None:
        out.print(
            "certutil:    missing (only the HTTPS tests need it: apt-get install libnss3-tools)"
        )
    try:
        from osint_capture import keys

        info = keys.key_info()
        out.print(f"signing key: {info.operator}, {info.fingerprint}")
    except OsintCaptureError as exc:
        problems.append(exc.one_line())
    for problem in problems:
        out.print(f"missing: {problem}", style="bold red")
    if not problems:
        out.print("ready to capture")
    return problems
