"""Finding and launching the Chromium that captures run in.

Lookup order (first hit wins):

1. ``--browser PATH`` on the command line, or the environment variable
   ``OSINT_CAPTURE_BROWSER``;
2. the Chromium that ``playwright install chromium`` downloaded, when present: its
   headless shell where that was downloaded too (as it is by default), else the
   whole browser;
3. the distribution's Chromium: Debian's headless shell
   ``/usr/lib/chromium/chromium-headless-shell`` (package ``chromium-headless-shell``),
   then ``/usr/lib/chromium/chromium`` (Debian),
   ``/usr/lib/chromium-browser/chromium-browser`` (Ubuntu), then
   ``chromium-headless-shell``, ``chromium``, ``chromium-browser``, ``google-chrome`` on
   ``PATH``.

The headless shell comes first because it is what Playwright itself launches for a
headless Chromium when its own download is installed: the same engine without the
desktop browser around it, which makes a new context, a page and a screenshot several
times cheaper (docs/PERFORMANCE.md). Captures always run headless.

``/usr/bin/chromium`` on Debian is a wrapper script that adds flags of its own,
so the real binary under ``/usr/lib`` is preferred.
"""

from __future__ import annotations

import contextlib
import os
import platform
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from chain_of_custody.errors import UsageError

__all__ = [
    "BROWSER_ENV",
    "BrowserChoice",
    "browser_environment",
    "browser_home",
    "chromium_args",
    "driver_temp_dir",
    "explicit_browser",
    "find_browser",
    "launch_options",
    "os_description",
    "sandbox_available",
]

BROWSER_ENV = "OSINT_CAPTURE_BROWSER"

_DISTRIBUTION_PATHS = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium-browser/chromium-browser",
)
_PATH_NAMES = (
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)


@dataclass(frozen=True)
class BrowserChoice:
    """Which browser binary a capture uses, and why."""

    executable: Path | None  # None: Playwright's bundled Chromium, launched by Playwright itself
    source: str  # "option", "environment", "playwright", "distribution"
    # What ``--version`` printed; "unknown" when it could not say; "" when not asked (a
    # capture session records the launched browser's own version instead).
    version: str


def _playwright_chromium() -> str | None:
    # Playwright knows where its own download would live; it may not be there. Asking
    # means starting its driver (most of a second): a capture session asks the driver
    # it starts anyway (see :func:`find_browser`'s ``bundled``).
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            return p.chromium.executable_path
    except Exception:
        return None


# The headless shell's file name: Chrome for Testing's, and older Playwright builds'.
_SHELL_NAMES = (
    "chrome-headless-shell",
    "chrome-headless-shell.exe",
    "headless_shell",
    "headless_shell.exe",
)


def _playwright_headless_shell(chromium: Path) -> Path | None:
    """The headless shell ``playwright install chromium`` downloads beside its Chromium
    (the same revision): what Playwright itself launches headless. None if absent.

    Playwright names only the whole browser's path; the shell lies beside it in the
    same registry, ``chromium-REV/...`` and ``chromium_headless_shell-REV/DIR/NAME``.
    """
    for folder in chromium.parents:
        if folder.name.startswith("chromium-"):
            revision = folder.name.removeprefix("chromium-")
            shell_dir = folder.parent / f"chromium_headless_shell-{revision}"
            for name in _SHELL_NAMES:
                for candidate in sorted(shell_dir.glob(f"*/{name}")):
                    if _usable(str(candidate)):
                        return candidate
            return None
    return None


def _usable(path: str) -> Path | None:
    candidate = Path(path)
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


_VERSION_TIMEOUT = 30.0


def _bounded_output(argv: list[str], timeout: float) -> str | None:
    """What ``argv`` prints on stdout, or None when it cannot start or runs past ``timeout``.

    Never leaves anything behind: the command runs in a session (and process group)
    of its own, and once its output ends, it exits or the time is up, the whole group
    is killed and the command reaped. The group is killed while its leader is still
    unreaped, so the group id cannot have been reused by then. A descendant that put
    itself in a session of its own is beyond reach here (the doctor sweeps those).
    """
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    finished = False
    try:
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if selector.select(left):
                    data = os.read(fd, 65536)
                    if not data:
                        finished = True
                        break
                    chunks.append(data)
        # Output ended: wait (without reaping) for the command itself to exit.
        while finished and not _has_exited(proc.pid):
            if time.monotonic() >= deadline:
                finished = False
            else:
                time.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return b"".join(chunks).decode("utf-8", errors="replace") if finished else None


def _has_exited(pid: int) -> bool:
    """Whether child ``pid`` has exited; it stays unreaped (a zombie) either way."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _binary_version(executable: Path, timeout: float = _VERSION_TIMEOUT) -> str:
    out = _bounded_output([str(executable), "--version"], timeout)
    return (out or "").strip() or "unknown"


def explicit_browser(
    option: Path | None = None, *, version_timeout: float = _VERSION_TIMEOUT
) -> BrowserChoice | None:
    """The browser named by ``--browser`` or the environment, checked; None if neither.

    Raises UsageError when the named browser does not exist or cannot be run.
    """
    for explicit, source in ((option, "option"), (os.environ.get(BROWSER_ENV), "environment")):
        if explicit:
            path = Path(explicit).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise UsageError(
                    f"browser not found or not executable: {path}",
                    hint=f"check --browser or {BROWSER_ENV}",
                )
            return BrowserChoice(path.resolve(), source, _binary_version(path, version_timeout))
    return None


def find_browser(
    option: Path | None = None,
    *,
    version_timeout: float = _VERSION_TIMEOUT,
    bundled_path: str | None = None,
    versioned: bool = True,
) -> BrowserChoice:
    """Return the browser to use, following the documented lookup order.

    The version is what ``<browser> --version`` prints within ``version_timeout``
    seconds, else ``"unknown"``; nothing that command starts is left running. Without
    ``versioned`` it is not asked (``""``) of a browser found, as opposed to named.
    ``bundled_path`` is where a running Playwright driver says its own Chromium would
    be; without it a driver is started to ask.

    Raises UsageError when an explicitly named browser does not exist, or when no
    browser is installed at all.
    """
    explicit = explicit_browser(option, version_timeout=version_timeout)
    if explicit is not None:
        return explicit

    def version(path: Path) -> str:
        return _binary_version(path, version_timeout) if versioned else ""

    # The shell is looked for even where the whole browser is not (`--only-shell`).
    whole = _playwright_chromium() if bundled_path is None else bundled_path
    bundled = None if whole is None else _playwright_headless_shell(Path(whole)) or _usable(whole)
    if bundled is not None:
        return BrowserChoice(bundled, "playwright", version(bundled))
    for candidate in _DISTRIBUTION_PATHS:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return BrowserChoice(path, "distribution", version(path))
    for name in _PATH_NAMES:
        found = shutil.which(name)
        if found:
            return BrowserChoice(Path(found), "distribution", version(Path(found)))
    raise UsageError(
        "no Chromium found",
        hint="run `make install`, `playwright install chromium`, or `apt-get install "
        "chromium-headless-shell` (or `chromium`); "
        f"or name one with --browser PATH / {BROWSER_ENV}",
    )


def chromium_args() -> list[str]:
    """Flags every capture's Chromium runs with, on top of Playwright's own.

    The background-networking flags keep the browser from talking to anyone but the
    page under capture. Site isolation is switched off so that cross-site frames load
    through the page's own network stack, where the recorder sees (and the
    lawful-access rules check) every request. Pop-ups are refused (with Chromium's own
    pop-up blocker, see :func:`launch_options`), so they rarely send a request. No
    ``--disable-features`` here: Chromium keeps only the last one, and Playwright's list
    (no HTTPS upgrades, no Google preconnects, no optimisation hints) must stay in force.
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
        # No crash dumps: a dump holds the process's memory, and the page's evidence
        # and the capture's state have no business outside the evidence home.
        "--disable-crash-reporter",
        "--disable-breakpad",
    ]


# What the browser may inherit: how to find programs and fonts, and the language.
_INHERITED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "FONTCONFIG_FILE")


def browser_environment(home: Path) -> dict[str, str]:
    """The whole environment Chromium runs with, built on purpose rather than inherited.

    No secret or key path of ours can reach it (nor its crash dumps); its home, config,
    cache and temporary folders are all inside ``home``, a private folder the capture
    session removes when it closes.
    """
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        TMPDIR=str(home / "tmp"),
    )
    return env


_HOME_PREFIX = "osint-capture-browser-"


def _remove_stale_homes() -> None:
    """Remove the private homes of capture processes that died without cleaning up (a
    SIGKILL, a power cut): each names the process that made it."""
    for old in Path(tempfile.gettempdir()).glob(f"{_HOME_PREFIX}*-*"):
        pid = old.name[len(_HOME_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


@contextlib.contextmanager
def browser_home() -> Iterator[Path]:
    """A private folder for everything the browser writes: its HOME, config, cache,
    temporary files and Playwright's profile. Removed when the block ends.

    The user's trusted certificate authorities (``~/.pki/nssdb``, where an agency
    installs its own) are copied in, so HTTPS trust is as the user set it up.
    """
    _remove_stale_homes()
    home = Path(tempfile.mkdtemp(prefix=f"{_HOME_PREFIX}{os.getpid()}-"))
    try:
        (home / "tmp").mkdir()
        nssdb = Path(os.path.expanduser("~")) / ".pki" / "nssdb"
        if nssdb.is_dir():
            shutil.copytree(nssdb, home / ".pki" / "nssdb", symlinks=False)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def driver_temp_dir(home: Path) -> Iterator[None]:
    """Start Playwright's driver inside this block: it makes each browser profile in its
    own ``TMPDIR``, which then lies in ``home`` and goes with it. Node keeps the
    driver's compiled JavaScript in a cache of ours (:func:`node_compile_cache`), which
    saves about 0.15 s of every driver start."""
    names = {"TMPDIR": str(home / "tmp")}
    cache = node_compile_cache()
    if cache is not None and "NODE_COMPILE_CACHE" not in os.environ:
        names["NODE_COMPILE_CACHE"] = str(cache)
    previous = {name: os.environ.get(name) for name in names}
    # Only what differs is written (and restored): inside a block of the same home
    # (:func:`.session.run_on_session`), the environment is not written at all.
    changed = {name: value for name, value in names.items() if previous[name] != value}
    os.environ.update(changed)
    try:
        yield
    finally:
        for name in changed:
            value = previous[name]
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def node_compile_cache() -> Path | None:
    """Where Node may cache V8's compilation of Playwright's driver (its own code only,
    nothing of any page): ``node-compile-cache`` in the user's cache folder for
    osint-capture; None when it cannot be made."""
    path = Path(platformdirs.user_cache_dir("osint-capture")) / "node-compile-cache"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return path


def launch_options(choice: BrowserChoice, home: Path) -> dict[str, Any]:
    """What every launch of the capture browser passes Playwright (captures and doctor)."""
    return {
        # None: Playwright launches its own bundled Chromium.
        "executable_path": str(choice.executable) if choice.executable else None,
        # Were a crash dump written despite the flags, it stays in the private home.
        "args": [*chromium_args(), f"--crash-dumps-dir={home / 'crash'}"],
        # Playwright turns Chromium's pop-up blocker off; a member of the public's
        # browser has it on, and a page opening 500 windows must not stall the capture
        # (--block-new-web-contents alone does not stop them in headless Chromium).
        "ignore_default_args": ["--disable-popup-blocking"],
        "env": browser_environment(home),
        # Playwright adds --no-sandbox unless told the sandbox is wanted.
        "chromium_sandbox": sandbox_available(),
        "headless": True,
    }


def sandbox_available() -> bool:
    """Chromium's sandbox refuses to start as root; everywhere else it stays on."""
    return not (hasattr(os, "geteuid") and os.geteuid() == 0)


def os_description() -> str:
    return f"{platform.system()} {platform.release()} ({platform.machine()})"
