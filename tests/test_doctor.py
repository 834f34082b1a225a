"""`osint-capture doctor` launches the browser for real, within a bound, and leaves nothing.

Each attack runs the real command line in its own process: a real Chromium must be
ready; a program that is no browser (`/bin/true`) must be refused; a "browser" that
hangs, and leaves helpers behind (one of them in a session of its own), must be
refused within the bound, and none of its processes may outlive the doctor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from osint_capture.doctor import LAUNCH_TIMEOUT_ENV, VERSION_TIMEOUT
from osint_capture.engine.browser import BROWSER_ENV, find_browser
from tests.conftest import Cli

pytestmark = pytest.mark.browser

_SLACK = 8.0  # interpreter start-up, imports, Playwright's driver, the sweep
# Tighter for the launch: the browser is killed as soon as Playwright gives up, not
# only by the watchdog (bound + 5 s).
_LAUNCH_SLACK = 10.0  # start-up of Python, Playwright and its driver on a busy machine

# Every invocation records "pid args" and never ends. Unless it is a helper, it first
# starts two helpers: one in its process group (holding its stdout open), one in a
# session of its own (out of reach of a process-group kill).
_HANGING = """#!/bin/sh
echo "$$ $*" >> '{record}'
case "$1" in
  --helper) while :; do sleep 1; done ;;
  --version) {on_version} ;;
esac
"$0" --helper &
setsid "$0" --helper &
while :; do sleep 1; done
"""


def _doctor(
    cli: Cli, browser: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    full_env = {k: v for k, v in cli.env.items() if k != BROWSER_ENV}
    full_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "osint_capture", "doctor", "--browser", str(browser)],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        check=False,
    )
    return proc, time.monotonic() - started


def _problems(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("missing: ")]


class _FakeBrowser:
    def __init__(self, tmp_path: Path, on_version: str) -> None:
        self.record = tmp_path / "invocations.txt"
        self.path = tmp_path / "fake-chromium.sh"
        self.path.write_text(_HANGING.format(record=self.record, on_version=on_version))
        self.path.chmod(0o755)

    def invocations(self) -> list[tuple[int, str]]:
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        return [(int(pid), args) for pid, _, args in (line.partition(" ") for line in lines)]

    def alive(self) -> list[str]:
        """Processes of this script still there: by recorded pid, and by command line."""
        found: list[str] = []
        for pid, args in self.invocations():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            found.append(f"pid {pid} ({args[:60]}): {_state(pid)}")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(str(self.path).encode() in arg for arg in argv):
                found.append(f"pid {entry.name} runs {b' '.join(argv)[:100]!r}")
        return found

    def kill_survivors(self) -> None:
        for pid, _ in self.invocations():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone from /proc"
    return f"state {stat[stat.rindex(')') + 2]}"


@pytest.fixture
def fake_browser(tmp_path: Path) -> Iterator[Callable[[str], _FakeBrowser]]:
    """Makes the hanging script; ``on_version`` is what it does for ``--version``."""
    holder: list[_FakeBrowser] = []

    def make(on_version: str) -> _FakeBrowser:
        holder.append(_FakeBrowser(tmp_path, on_version))
        return holder[-1]

    yield make
    for fake in holder:  # after the assertions: never leave them to the next test
        fake.kill_survivors()


def test_real_chromium_is_ready(cli: Cli) -> None:
    executable = find_browser(None).executable
    assert executable is not None
    proc, elapsed = _doctor(cli, executable)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _problems(proc) == []
    assert "launch:      headless page opened in" in proc.stdout
    assert proc.stdout.rstrip().endswith("ready to capture")
    print(f"real Chromium: doctor took {elapsed:.1f} s")


def test_bin_true_is_not_a_browser(cli: Cli) -> None:
    # `/bin/true --version` answers (coreutils' banner), so only the real launch can tell.
    proc, elapsed = _doctor(cli, Path("/bin/true"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ready to capture" not in proc.stdout
    where = Path("/bin/true").resolve()
    assert _problems(proc) == [
        f"missing: the browser at {where} did not start: "
        "it exited before it could be driven (exitCode=0, signal=null)"
    ], proc.stdout
    print(f"/bin/true: doctor took {elapsed:.1f} s")


def test_browser_hanging_on_version_is_stopped_within_the_bound(
    cli: Cli, fake_browser: Callable[[str], _FakeBrowser]
) -> None:
    fake = fake_browser("")  # hangs on --version too
    proc, elapsed = _doctor(cli, fake.path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ready to capture" not in proc.stdout
    assert elapsed < VERSION_TIMEOUT + _SLACK, f"doctor took {elapsed:.1f} s"
    assert _problems(proc) == [
        f"missing: the browser at {fake.path} did not report a version: `--version` printed "
        f"nothing, failed, or ran past {VERSION_TIMEOUT:g} s (it was stopped)"
    ], proc.stdout
    # The hanging --version and both its helpers ran; the browser was never launched.
    argv = sorted(args for _, args in fake.invocations())
    assert argv == ["--helper", "--helper", "--version"], argv
    assert fake.alive() == []
    print(f"hanging --version: doctor took {elapsed:.1f} s")


def test_browser_hanging_on_launch_is_stopped_within_the_bound(
    cli: Cli, fake_browser: Callable[[str], _FakeBrowser]
) -> None:
    fake = fake_browser('echo "Chromium 999.0.0.0"; exit 0')
    bound = 3
    proc, elapsed = _doctor(cli, fake.path, env={LAUNCH_TIMEOUT_ENV: str(bound)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ready to capture" not in proc.stdout
    assert elapsed < bound + _LAUNCH_SLACK, f"doctor took {elapsed:.1f} s"
    assert f"browser:     Chromium 999.0.0.0 ({fake.path}; found by option)" in proc.stdout
    assert _problems(proc) == [
        f"missing: the browser at {fake.path} did not start: "
        f"no answer within {bound} s (it was stopped)"
    ], proc.stdout
    launches = [args for _, args in fake.invocations() if args not in ("--version", "--helper")]
    assert len(launches) == 1, fake.invocations()
    assert "--headless" in launches[0].split()
    assert sorted(args for _, args in fake.invocations()).count("--helper") == 2
    assert fake.alive() == []
    # Playwright's driver was left alive to remove the profile it made for the launch.
    profiles = [a.split("=", 1)[1] for a in launches[0].split() if a.startswith("--user-data-dir=")]
    assert profiles, launches[0]
    assert not Path(profiles[0]).exists()
    print(f"hanging launch: doctor took {elapsed:.1f} s (bound {bound} s)")


def _fake_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\necho Chromium 1.2.3\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    "shell",
    [
        "chromium_headless_shell-1255/chrome-headless-shell-linux64/chrome-headless-shell",
        "chromium_headless_shell-1255/chrome-linux/headless_shell",  # older Playwright
    ],
)
def test_playwrights_download_is_launched_as_its_headless_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: str
) -> None:
    monkeypatch.delenv(BROWSER_ENV, raising=False)
    whole = _fake_binary(tmp_path / "chromium-1255" / "chrome-linux64" / "chrome")
    _fake_binary(tmp_path / "chromium_headless_shell-1254" / "x" / "chrome-headless-shell")
    # Without the shell (`playwright install --no-shell`): the whole browser.
    choice = find_browser(bundled_path=str(whole))
    assert (choice.executable, choice.source, choice.version) == (
        whole,
        "playwright",
        "Chromium 1.2.3",
    )
    expected = _fake_binary(tmp_path / shell)  # the same revision as the browser
    choice = find_browser(bundled_path=str(whole), versioned=False)
    assert (choice.executable, choice.source, choice.version) == (expected, "playwright", "")
    whole.unlink()  # `playwright install --only-shell`: the shell alone
    choice = find_browser(bundled_path=str(whole), versioned=False)
    assert (choice.executable, choice.source) == (expected, "playwright")
