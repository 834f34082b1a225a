"""``osint-capture doctor``: is this machine ready to capture?

The browser is checked for real: ``<browser> --version`` within
``VERSION_TIMEOUT`` seconds, then a headless launch through Playwright that opens
a ``data:`` page (no network traffic) and reads the user agent, all within
``LAUNCH_TIMEOUT`` seconds. Whatever either step started is killed and reaped
before the doctor goes on, even when it hangs or leaves helpers behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from rich.console import Console

from chain_of_custody.errors import OsintCaptureError
from osint_capture.engine.browser import (
    BROWSER_ENV,
    BrowserChoice,
    browser_home,
    driver_temp_dir,
    find_browser,
    launch_options,
)

__all__ = ["LAUNCH_TIMEOUT", "LAUNCH_TIMEOUT_ENV", "VERSION_TIMEOUT", "run_doctor"]

VERSION_TIMEOUT = 10.0  # seconds for `<browser> --version`
LAUNCH_TIMEOUT = 30.0  # seconds for launch, page and close together
# Overrides LAUNCH_TIMEOUT (seconds); the tests use it to keep a hanging browser short.
LAUNCH_TIMEOUT_ENV = "OSINT_CAPTURE_DOCTOR_LAUNCH_TIMEOUT"
_WATCHDOG_GRACE = 5.0  # past the bound, the watchdog kills the driver and the browser
_SWEEP_TIMEOUT = 5.0
_PROBE_PAGE = "data:text/html,<title>osint-capture doctor</title><p>ready</p>"
_PR_SET_CHILD_SUBREAPER = 36


def run_doctor(browser: Path | None, out: Console) -> list[str]:
    """Print what was found; return the problems (empty when ready)."""
    problems: list[str] = []
    out.print(f"python:      {sys.version.split()[0]}")
    for dist in ("osint-capture", "playwright", "warcio", "cryptography", "typer"):
        try:
            out.print(f"{dist + ':':<12} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed")
    _check_browser(browser, out, problems)
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
        out.print(f"missing: {problem}", style="bold red", markup=False)
    if not problems:
        out.print("ready to capture")
    return problems


# -- the browser, for real ------------------------------------------------------------


def _check_browser(option: Path | None, out: Console, problems: list[str]) -> None:
    with _sweeping():
        try:
            choice = find_browser(option, version_timeout=VERSION_TIMEOUT)
        except OsintCaptureError as exc:
            problems.append(exc.one_line())
            return
        where = choice.executable or "Playwright's bundled Chromium"
        version = choice.version.splitlines()[0]
        out.print(f"browser:     {version} ({where}; found by {choice.source})", markup=False)
        if choice.version == "unknown":
            # A Chromium always answers --version at once; this one would not be launched.
            problems.append(
                f"the browser at {where} did not report a version: `--version` printed "
                f"nothing, failed, or ran past {VERSION_TIMEOUT:g} s (it was stopped)"
            )
            return
        bound = _launch_timeout()
        started = time.monotonic()
        try:
            user_agent = _launch(choice, bound)
        except _LaunchFailed as exc:
            problems.append(f"the browser at {where} did not start: {exc}")
            return
        elapsed = time.monotonic() - started
        out.print(
            f"launch:      headless page opened in {elapsed:.1f} s ({user_agent})", markup=False
        )


class _LaunchFailed(Exception):
    pass


def _launch_timeout() -> float:
    try:
        value = float(os.environ.get(LAUNCH_TIMEOUT_ENV, ""))
    except ValueError:
        return LAUNCH_TIMEOUT
    return value if 0 < value <= 600 else LAUNCH_TIMEOUT


def _launch(choice: BrowserChoice, bound: float) -> str:
    """Launch the browser headless, open a data: page, read the user agent, close it.

    Playwright's own timeouts bound each step; should the browser or the driver stop
    answering anyway, a watchdog kills both a little past the bound.
    """
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + bound

    def left_ms() -> float:
        return max(1.0, (deadline - time.monotonic()) * 1000)

    before = _children()
    driver: set[_Proc] = set()
    fired, finished = threading.Event(), threading.Event()

    def watchdog() -> None:
        # No reaping from this thread: asyncio waits for the driver itself.
        fired.set()
        _kill_new_descendants(before, keep=driver, reap=False)  # the browser first
        if not finished.wait(_WATCHDOG_GRACE):  # then the driver, should it hang too
            logging.getLogger("asyncio").disabled = True  # its death is reported below
            _kill_new_descendants(before, reap=False)

    timer = threading.Timer(bound + _WATCHDOG_GRACE, watchdog)
    timer.daemon = True
    timer.start()
    try:
        # As for a capture: a private home for the browser, and the driver's profiles in it.
        with browser_home() as home, driver_temp_dir(home), sync_playwright() as p:
            driver.update(_children() - before)
            try:
                browser = p.chromium.launch(**launch_options(choice, home), timeout=left_ms())
                try:
                    page = browser.new_page()
                    page.set_default_timeout(left_ms())
                    page.goto(_PROBE_PAGE, timeout=left_ms())
                    user_agent = str(page.evaluate("navigator.userAgent"))
                    version = browser.version
                finally:
                    browser.close()
            except Exception:
                # Kill the browser and its leftovers now: the driver would wait for a
                # browser that holds its pipes open (or for whatever inherited them).
                _kill_new_descendants(before, keep=driver)
                raise
    except Exception as exc:  # Playwright's errors, and the driver's death
        raise _LaunchFailed(
            f"no answer within {bound:g} s (it was stopped)"
            if fired.is_set()
            else _describe(str(exc), bound)
        ) from None
    finally:
        finished.set()
        timer.cancel()
    if fired.is_set():
        raise _LaunchFailed(f"no answer within {bound:g} s (it was stopped)")
    if not version:
        raise _LaunchFailed("it started but reported no version")
    return user_agent


def _describe(message: str, bound: float) -> str:
    """One line out of Playwright's many."""
    exited = re.search(r"<process did exit: ([^>]*)>", message)
    if exited:
        return f"it exited before it could be driven ({exited.group(1)})"
    first = message.splitlines()[0] if message.strip() else "no reason given"
    first = re.sub(r"^\w+\.\w+: ", "", first)
    if re.match(r"Timeout \d+(\.\d+)?ms exceeded", first):
        return f"no answer within {bound:g} s (it was stopped)"
    return first


# -- nothing left behind --------------------------------------------------------------


@contextlib.contextmanager
def _sweeping() -> Iterator[None]:
    """Kill and reap, on the way out, every process started inside the block.

    On Linux the doctor is a child subreaper for the while: a helper that a child
    left behind (even in a session of its own) becomes the doctor's child, so it is
    found and killed here rather than living on under init. Elsewhere only the
    processes still below a new child are reached.
    """
    before = _children()
    subreaper = _set_child_subreaper(True)
    try:
        yield
    finally:
        try:
            deadline = time.monotonic() + _SWEEP_TIMEOUT
            while time.monotonic() < deadline:
                if not _kill_new_descendants(before):
                    break
                time.sleep(0.02)
        finally:
            if subreaper:
                _set_child_subreaper(False)


def _set_child_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


_Proc = tuple[int, str]  # pid and start time: a pid alone may be reused


def _processes() -> dict[_Proc, int]:
    """Every process on the machine, with its parent's pid (from /proc)."""
    table: dict[_Proc, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            table[(int(entry), fields[19])] = int(fields[1])
    return table


def _children() -> set[_Proc]:
    me = os.getpid()
    return {proc for proc, parent in _processes().items() if parent == me}


def _kill_new_descendants(
    before: set[_Proc], *, keep: set[_Proc] | None = None, reap: bool = True
) -> bool:
    """SIGKILL every child not in ``before`` and everything below it; reap those children.

    A child in ``keep`` (Playwright's driver) is spared, but not what runs below it.
    Returns whether any new child was found. Whatever runs below children that were
    already there (not the doctor's doing) is left alone.
    """
    me = os.getpid()
    table = _processes()
    below: dict[int, list[int]] = {}
    for (pid, _), parent in table.items():
        below.setdefault(parent, []).append(pid)
    roots = [proc for proc, parent in table.items() if parent == me and proc not in before]
    doomed = [pid for pid, start in roots if (pid, start) not in (keep or set())]
    spared = [pid for pid, start in roots if (pid, start) in (keep or set())]
    todo = [*doomed, *(kid for pid in spared for kid in below.get(pid, []))]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        todo.extend(below.get(pid, []))
    if reap:
        for pid in doomed:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    return bool(roots)
