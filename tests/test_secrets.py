"""No secret of ours leaves the capture process: not to Playwright's driver, not to
Chromium, not to a crash dump, and nothing the browser wrote outside the evidence home
survives the capture.

Reads the real environment (/proc/<pid>/environ) of every descendant of a running
`osint-capture capture` against the sample site on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli
from tests.processes import descendants


def _read(pid: int, name: str) -> bytes | None:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:
        return None


@pytest.mark.browser
def test_no_descendant_of_a_capture_holds_a_secret(
    cli: Cli, site: SampleSite, tmp_path: Path
) -> None:
    case_id = cli.new_case()
    passphrase = cli.env["OSINT_CAPTURE_PASSPHRASE"].encode()
    key_dir = cli.env["OSINT_CAPTURE_KEY_DIR"].encode()
    argv = [
        sys.executable,
        "-m",
        "osint_capture",
        "--home",
        str(cli.home),
        "capture",
        # A request that never completes keeps the browser busy for the settle timeout.
        site.url("/slow/longpoll"),
        "--case",
        case_id,
        "--allow-private-network",
        "--settle-timeout",
        "4",
    ]
    profiles_before = set(Path(tempfile.gettempdir()).glob("playwright_chromiumdev_profile-*"))
    proc = subprocess.Popen(argv, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Every (environment, command line) each descendant was seen with, in order.
    observed: dict[int, list[tuple[bytes, bytes]]] = {}
    deadline = time.monotonic() + 120
    own_cmdline = "\0".join(argv).encode() + b"\0"
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in descendants(proc.pid):
            environ, cmdline = _read(pid, "environ"), _read(pid, "cmdline")
            # A child forked but not yet exec'd is still a copy of its parent (the
            # capture process, or the driver starting the browser): it is read again, and
            # known by what it last was, once it has become the program it starts.
            if environ is None or cmdline is None or cmdline == own_cmdline:
                continue
            history = observed.setdefault(pid, [])
            if not history or history[-1] != (environ, cmdline):
                history.append((environ, cmdline))
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    seen = {pid: history[-1] for pid, history in observed.items()}

    # `chromium --version` (finding the browser) is not the capture's browser.
    browsers = {
        pid: v
        for pid, v in seen.items()
        if b"chrom" in v[1].split(b"\0")[0].lower() and b"--version" not in v[1]
    }
    drivers = {pid: v for pid, v in seen.items() if b"node" in v[1].split(b"\0")[0]}
    assert drivers, "Playwright's driver was seen"
    assert len(browsers) >= 2, "the browser and at least one of its child processes were seen"
    for pid, history in observed.items():
        for environ, cmdline in history:
            shown = f"process {pid} ({cmdline[:60]!r})"
            assert passphrase not in environ, f"{shown} has the passphrase"
            assert key_dir not in environ, f"{shown} has the key folder"
            assert b"OSINT_CAPTURE_PASSPHRASE" not in environ
            assert b"OSINT_CAPTURE_KEY_DIR" not in environ

    homes = set()
    for environ, _ in browsers.values():
        variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        home = variables.get(b"HOME")  # some sandboxed children have no environment
        if home is not None:
            homes.add(home)
            assert home != os.environ.get("HOME", "").encode()
    main_cmdline = next(v[1] for v in browsers.values() if b"--type=" not in v[1])
    assert b"--disable-crash-reporter" in main_cmdline
    assert b"--disable-breakpad" in main_cmdline
    # The private home the browser had, with its profile in it, is gone after the capture.
    assert len(homes) == 1
    home = Path(homes.pop().decode())
    (profile,) = [
        arg.split(b"=", 1)[1].decode()
        for arg in main_cmdline.split(b"\0")
        if arg.startswith(b"--user-data-dir=")
    ]
    assert Path(profile).is_relative_to(home), "the profile is inside the private home"
    assert not home.exists() and not Path(profile).exists()
    profiles_after = set(Path(tempfile.gettempdir()).glob("playwright_chromiumdev_profile-*"))
    assert profiles_after <= profiles_before, "no profile was left in the system's temp folder"


def test_private_homes_of_dead_captures_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from osint_capture.engine.browser import browser_home

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(done.stdout)  # that process has exited
    base = Path(tempfile.gettempdir())
    stale = base / f"osint-capture-browser-{dead_pid}-stale"
    live = base / f"osint-capture-browser-{os.getppid()}-live"
    for folder in (stale, live):
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
    try:
        with browser_home() as home:
            assert home.name.startswith(f"osint-capture-browser-{os.getpid()}-")
            assert not stale.exists(), "a killed capture's home is removed"
            assert live.exists(), "a running process's home is left alone"
        assert not home.exists()
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)
