"""`osint-capture capture-batch`: many URLs on one browser, each as `capture` makes it.

The browser tests run the real command against the sample site on 127.0.0.1 and a
second one on 127.0.0.2 (two hosts; every 127.x address is loopback). Refused URLs are
refused before any connection (credentials in the URL, a scheme other than http) or by
the sample site's sign-in page; the failing one is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import osint_capture.batch as batch_module
from cases.store import EvidenceStore
from chain_of_custody.errors import BrowserCrashed, CaptureFailed
from chain_of_custody.signing import Signer, generate_private_key
from osint_capture.batch import (
    BatchEntry,
    BatchOutcome,
    BatchSettings,
    HostScheduler,
    _Attempt,
    _attempt_on,
    _Clock,
    _run_all,
    batch_exit_code,
    parse_batch,
)
from osint_capture.demo.sample_site import SampleSite
from osint_capture.engine.model import CaptureOptions
from tests.conftest import Cli
from tests.processes import descendants, processes

# -- the file, the scheduler, the exit code (no browser) ------------------------------


def test_parse_batch_numbers_lines_and_sets_bad_ones_aside() -> None:
    text = (
        "# posts of the group\n"
        "\n"
        "https://social.example/p/1\n"
        "   https://social.example/p/2#comments   # the fragment stays, the note goes\n"
        "not a url\n"
        "social.example/p/3\n"
        "https://\n"
        "http://[::1/x\n"
        "https://social.example/p/1\n"
        "ftp://social.example/file\n"
    )
    batch = parse_batch(text)
    assert [(e.line, e.url) for e in batch.entries] == [
        (3, "https://social.example/p/1"),
        (4, "https://social.example/p/2#comments"),
        # A URL, though not one the rules allow: refused (and logged) as `capture` would.
        (10, "ftp://social.example/file"),
    ]
    assert [b.line for b in batch.bad] == [5, 6, 7, 8]
    assert "one URL per line" in batch.bad[0].reason
    assert [(e.line, first) for e, first in batch.duplicates] == [(9, 3)]


def test_scheduler_spaces_starts_per_host_while_other_hosts_go_on() -> None:
    a1, a2, b1, a3 = (
        BatchEntry(1, "http://a.example/1"),
        BatchEntry(2, "http://a.example:8080/2"),  # the same host on another port
        BatchEntry(3, "http://b.example/1"),
        BatchEntry(4, "http://A.example/3"),
    )
    scheduler = HostScheduler([a1, a2, b1, a3], host_delay=1.0)
    assert scheduler.take(0.0) == (a1, 0.0)
    assert scheduler.take(0.0) == (b1, 0.0)  # a is busy until 1.0: b goes first
    assert scheduler.take(0.2) == (a2, 1.0)
    scheduler.retry(b1)
    assert scheduler.take(0.3) == (b1, 1.0)  # put back ahead, and b's delay still holds
    assert scheduler.take(5.0) == (a3, 5.0)
    assert scheduler.take(5.0) is None


class _Heard:
    def __init__(self) -> None:
        self.begun: list[tuple[int, bool]] = []
        self.outcomes: list[BatchOutcome] = []

    def started(self, entry: BatchEntry, retry: bool) -> None:
        self.begun.append((entry.line, retry))

    def finished(self, outcome: BatchOutcome) -> None:
        self.outcomes.append(outcome)


def test_run_all_paces_hosts_and_retries_a_dead_browser_once() -> None:
    entries = [BatchEntry(i, f"http://{h}.example/{i}") for i, h in enumerate("aabab", 1)]
    clock = _Clock()  # the loop's own, with a short delay: the scheduler's own test fakes time
    delay = 0.05
    starts: dict[int, float] = {}
    host_starts: dict[str, list[float]] = {}
    attempts: dict[int, int] = {}

    async def attempt(entry: BatchEntry, browser_done: Callable[[], None]) -> _Attempt:
        attempts[entry.line] = attempts.get(entry.line, 0) + 1
        starts.setdefault(entry.line, clock.now())
        host_starts.setdefault(entry.host, []).append(clock.now())
        await asyncio.sleep(0.01)
        died = _Attempt(error=CaptureFailed("the browser failed: gone"), browser_died=True)
        if entry.line == 2 and attempts[2] == 1:
            return died  # dies once: retried, then fine
        if entry.line == 4:
            return died  # dies twice: retried once only
        return _Attempt(error=CaptureFailed("not loaded"))

    heard = _Heard()
    settings = BatchSettings(concurrency=2, host_delay=delay)

    async def run() -> float:
        began = clock.now()
        await _run_all(entries, attempt, settings, heard, heard.finished, clock)
        return began

    began = asyncio.run(run())
    assert len(host_starts["a.example"]) == 5 and len(host_starts["b.example"]) == 2
    for times in host_starts.values():  # retries included
        # The k-th start on a host is at least k delays in: a start seen late (a busy
        # machine) may look close to the next, but none is ever early.
        assert all(t - began >= k * delay * 0.999 for k, t in enumerate(sorted(times)))
    assert starts[3] - began < delay  # host b did not wait for host a
    assert attempts == {1: 1, 2: 2, 3: 1, 4: 2, 5: 1}
    assert (2, True) in heard.begun and (4, True) in heard.begun
    by_line = {o.line: o for o in heard.outcomes}
    assert sorted(by_line) == [1, 2, 3, 4, 5]
    assert by_line[2].retried and "retried once" in by_line[2].reason
    assert by_line[4].retried and by_line[4].outcome == "failed"
    assert not by_line[1].retried


@pytest.mark.parametrize("retry_began", [True, False])
def test_a_url_whose_retry_is_interrupted_still_gets_its_first_attempts_outcome(
    retry_began: bool,
) -> None:
    """Ctrl-C while a URL whose browser died waits for (or runs) its retry: the summary
    still tells what its first attempt failed with, and the partial item it kept."""
    entries = [BatchEntry(1, "http://a.example/1"), BatchEntry(2, "http://b.example/2")]
    attempts: list[int] = []
    batch_task: asyncio.Future[None] | None = None

    async def attempt(entry: BatchEntry, browser_done: Callable[[], None]) -> _Attempt:
        attempts.append(entry.line)
        if entry.line == 1 and attempts.count(1) == 1:
            await asyncio.sleep(0.01)
            assert batch_task is not None
            batch_task.cancel()  # Ctrl-C, as the first attempt's browser dies
            died = BrowserCrashed("the browser crashed (killed)", item_id="20261202T000000Z-1")
            return _Attempt(error=died, browser_died=True)
        await asyncio.sleep(5)  # the other URL, and the retry: never end by themselves
        raise AssertionError("not cancelled")

    heard = _Heard()
    # With a long host delay the retry waits for its turn on the host, never begun.
    settings = BatchSettings(concurrency=2, host_delay=0.0 if retry_began else 30.0)

    async def run() -> None:
        nonlocal batch_task
        batch_task = asyncio.ensure_future(
            _run_all(entries, attempt, settings, heard, heard.finished, _Clock())
        )
        with pytest.raises(asyncio.CancelledError):
            await batch_task

    began = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - began < 2.5
    assert attempts.count(1) == (2 if retry_began else 1)
    [told] = heard.outcomes  # line 2 was in flight: an ordinary leftover, not told
    assert (told.line, told.outcome, told.item_id) == (1, "failed", "20261202T000000Z-1")
    assert "the browser crashed (killed)" in told.reason
    if retry_began:
        assert "its retry was interrupted with the batch" in told.reason and told.retried
    else:
        assert "not retried: the batch was interrupted first" in told.reason
        assert not told.retried


def test_a_capture_sealing_gives_its_page_to_the_next_url() -> None:
    """Never more than ``concurrency`` pages at once; a capture done with the browser
    lets the next page start while it seals; at most twice as many are in flight."""
    entries = [BatchEntry(i, f"http://h{i}.example/{i}") for i in range(1, 9)]
    pages = sealing = most_pages = most_sealing = most_at_once = 0
    overlapped = False

    async def attempt(entry: BatchEntry, browser_done: Callable[[], None]) -> _Attempt:
        nonlocal pages, sealing, most_pages, most_sealing, most_at_once, overlapped
        pages += 1
        most_pages = max(most_pages, pages)
        most_at_once = max(most_at_once, pages + sealing)
        await asyncio.sleep(0.02)  # the page
        pages -= 1
        browser_done()
        browser_done()  # said twice (and again when the attempt ends): one place back
        sealing += 1
        most_sealing = max(most_sealing, sealing)
        await asyncio.sleep(0.05)  # sealing, logging, the TSA: longer than the page
        overlapped = overlapped or pages > 0
        sealing -= 1
        return _Attempt(error=CaptureFailed("not loaded"))

    heard = _Heard()
    settings = BatchSettings(concurrency=2, host_delay=0)
    asyncio.run(_run_all(entries, attempt, settings, heard, heard.finished, _Clock()))
    assert sorted(o.line for o in heard.outcomes) == list(range(1, 9))
    assert most_pages == 2  # the browser never holds more pages than asked for
    assert overlapped and most_at_once > 2  # pages went on while others sealed
    assert most_at_once <= 4 and most_sealing <= 4


class _StuckSession:
    """What _attempt_on asks of a session; the capture on it never ends by itself."""

    def __init__(self, dies: bool) -> None:
        self.browser_connected, self.launches, self.dies = True, 1, dies


def test_an_attempt_stuck_past_its_bound_fails_and_is_retried_if_the_browser_died(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def stuck(session: _StuckSession, *args: object, **kwargs: object) -> None:
        if session.dies:
            session.browser_connected = False  # killed under it, never noticed
        await asyncio.sleep(3)  # without the bound, it "ends" with no report

    monkeypatch.setattr(batch_module, "capture_into_case", stuck)
    monkeypatch.setattr(batch_module, "_attempt_bound", lambda options, tsa: 0.1)
    entry = BatchEntry(1, "http://a.example/1")
    for dies in (False, True):
        session = _StuckSession(dies)
        began = time.monotonic()
        result = asyncio.run(
            _attempt_on(
                session,  # type: ignore[arg-type]
                EvidenceStore(tmp_path),
                "C-1",
                entry,
                CaptureOptions(),
                Signer(operator="Det. Sam Rivera", private_key=generate_private_key()),
                None,
            )
        )
        assert time.monotonic() - began < 2.5
        assert result.report is None and result.error is not None
        assert "did not end within 0 s" in result.error.message
        assert result.browser_died is dies


def test_a_capture_done_with_the_browser_is_not_retried_for_a_relaunch_beside_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its browser steps ended, a capture fails while sealing or stamping; meanwhile
    another capture found the browser dead and relaunched it. Its own failure is not the
    browser's: retrying it would capture its URL twice. A crash its result reported is,
    and so is a failure of the browser steps themselves."""

    def failing(error: CaptureFailed, engine_returned: bool) -> Any:
        async def capture(session: _StuckSession, *args: object, **kwargs: Any) -> None:
            if engine_returned:
                kwargs["browser_done"]()
            else:
                session.browser_connected = False  # killed under this capture's page
            session.browser_connected, session.launches = True, 2  # relaunched beside it
            raise error

        return capture

    cases = [
        (CaptureFailed("the TSA did not answer in time"), True, False),
        (BrowserCrashed("the browser crashed; partial item kept", item_id="X"), True, True),
        (CaptureFailed("the browser failed: target closed"), False, True),
    ]
    for error, engine_returned, retried in cases:
        monkeypatch.setattr(batch_module, "capture_into_case", failing(error, engine_returned))
        result = asyncio.run(
            _attempt_on(
                _StuckSession(dies=False),  # type: ignore[arg-type]
                EvidenceStore(tmp_path),
                "C-1",
                BatchEntry(1, "http://a.example/1"),
                CaptureOptions(),
                Signer(operator="Det. Sam Rivera", private_key=generate_private_key()),
                None,
            )
        )
        assert result.error is error
        assert result.browser_died is retried, error.message


def test_exit_code_priority() -> None:
    def o(code: int) -> BatchOutcome:
        return BatchOutcome(1, "u", "x", code)

    assert batch_exit_code([]) == 0
    assert batch_exit_code([o(0), o(0)]) == 0
    assert batch_exit_code([o(2), o(3)]) == 3
    assert batch_exit_code([o(2), o(3), o(4)]) == 4
    assert batch_exit_code([o(4), o(1), o(0)]) == 1


# -- bad input (no browser) -------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    case_id = cli.new_case()
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n", encoding="utf-8")
    one = tmp_path / "one.txt"
    one.write_text("http://127.0.0.1:9/never-contacted\n", encoding="utf-8")
    for args in (
        [str(tmp_path / "missing.txt")],
        [str(empty)],
        [str(one), "--concurrency", "0"],
        [str(one), "--host-delay", "-1"],
    ):
        proc = cli.run("capture-batch", *args, "--case", case_id)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _items(cli, case_id) == []


# -- end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_site() -> Iterator[SampleSite]:
    with SampleSite(host="127.0.0.2") as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _items(cli: Cli, case_id: str) -> list[str]:
    items = cli.home / case_id / "items"
    if not items.exists():
        return []
    return sorted(p.name for p in items.iterdir() if not p.name.startswith("."))


def _log(cli: Cli, case_id: str) -> list[dict[str, Any]]:
    text = (cli.home / case_id / "custody.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _json_lines(stdout: str) -> dict[int, dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    by_line = {d["line"]: d for d in lines}
    assert len(by_line) == len(lines)  # one object per line of the file
    return by_line


def _batch(cli: Cli, file: Path, case_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli.run(
        "capture-batch",
        str(file),
        "--case",
        case_id,
        "--allow-private-network",
        "--time-limit",
        "20",
        *extra,
    )


def test_mixed_batch_then_rerun_then_again(
    cli: Cli, site: SampleSite, other_site: SampleSite, tmp_path: Path
) -> None:
    case_id = cli.new_case()
    closed = f"http://127.0.0.1:{_closed_port()}/post/1"
    port = urlsplit(site.base_url).port
    secret_url = f"http://officer:hunter2@127.0.0.1:{port}/post/1"
    lines = [
        "# two hosts: 127.0.0.1 and 127.0.0.2",  # 1
        site.url("/user/dana"),  # 2 captured
        "",  # 3
        other_site.url("/gzip/article") + "  # note",  # 4 captured
        other_site.url("/login"),  # 5 refused: a sign-in page
        secret_url,  # 6 refused before connecting: credentials
        closed,  # 7 failed: nothing listens there
        "not a url",  # 8 malformed
        site.url("/noindex"),  # 9 captured
    ]
    batch = tmp_path / "batch.txt"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")

    started = time.monotonic()
    proc = _batch(cli, batch, case_id, "--json")
    first_run = time.monotonic() - started
    # Failed (4) ranks above refused (3) and a malformed line (2).
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stdout + proc.stderr
    out = _json_lines(proc.stdout)
    assert {n: d["outcome"] for n, d in out.items()} == {
        2: "captured",
        4: "captured",
        5: "refused",
        6: "refused",
        7: "failed",
        8: "malformed",
        9: "captured",
    }
    assert {n: d["exit_code"] for n, d in out.items() if n in (5, 6, 7, 8)} == {
        5: 3,
        6: 3,
        7: 4,
        8: 2,
    }
    assert "login wall" in out[5]["reason"] and "credentials" in out[6]["reason"]
    assert "line 8" in proc.stderr and "not a url" in proc.stderr
    assert "osint-capture: error: not every URL was captured" in proc.stderr
    captured = {n: out[n]["item_id"] for n in (2, 4, 9)}
    assert sorted(captured.values()) == _items(cli, case_id)
    for n in (2, 4, 9):
        report = out[n]["capture"]
        assert report["item_id"] == captured[n] and report["status"] == "complete"
        assert report["requested_url"] == lines[n - 1].split()[0]
        assert Path(report["warc"]).is_file()
    assert out[9]["capture"]["robots_directives"] == ["noindex", "nofollow"]

    log = _log(cli, case_id)
    logged = {e["details"]["requested_url"]: e["item_id"] for e in log if e["action"] == "captured"}
    assert logged == {lines[n - 1].split()[0]: captured[n] for n in (2, 4, 9)}
    refused = [e["details"]["url"] for e in log if e["action"] == "capture-refused"]
    assert sorted(refused) == sorted(
        [other_site.url("/login"), f"http://REDACTED@127.0.0.1:{port}/post/1"]
    )
    # A failed capture logs nothing, as for `capture`.
    assert not any(closed in json.dumps(e) for e in log)
    verified = cli.run("verify", case_id, "--no-record")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The same command again: what is captured is skipped, and no new item is written.
    proc = _batch(cli, batch, case_id)
    assert proc.returncode == 4, proc.stderr
    for item_id in captured.values():
        assert item_id in proc.stdout
    assert proc.stderr.count("already captured in this case as item") == 3
    assert proc.stdout.count(" skipped ") == 3 and proc.stdout.count(" failed ") == 1
    assert _items(cli, case_id) == sorted(captured.values())
    assert sum(e["action"] == "captured" for e in _log(cli, case_id)) == 3

    # --again, on two of them: captured anew, as new items.
    again = tmp_path / "again.txt"
    again.write_text(f"{site.url('/user/dana')}\n{other_site.url('/gzip/article')}\n")
    proc = _batch(cli, again, case_id, "--again", "--json", "--host-delay", "0")
    assert proc.returncode == 0, proc.stderr
    out = _json_lines(proc.stdout)
    assert {d["outcome"] for d in out.values()} == {"captured"}
    new_ids = {d["item_id"] for d in out.values()}
    assert not new_ids & set(captured.values())
    assert _items(cli, case_id) == sorted({*captured.values(), *new_ids})
    assert sum(e["action"] == "captured" for e in _log(cli, case_id)) == 5
    assert first_run < 60


def _browser_pids(pid: int) -> list[int]:
    """The CLI's Chromium browser process(es): not its renderers, GPU or zygote."""
    pids = []
    for child in descendants(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--remote-debugging-pipe" in argv and not any(a.startswith(b"--type=") for a in argv):
            pids.append(child)
    return pids


def test_a_batch_whose_browser_is_killed_finishes_every_url(
    cli: Cli, site: SampleSite, other_site: SampleSite, tmp_path: Path
) -> None:
    case_id = cli.new_case()
    # Pages still loading when the browser is killed (each drips in for a second or two).
    urls = [
        site.url("/user/dana"),
        other_site.url("/robust/drip?seconds=2"),
        site.url("/robust/drip?seconds=2"),
        other_site.url("/user/dana"),
    ]
    batch = tmp_path / "batch.txt"
    batch.write_text("\n".join(urls) + "\n", encoding="utf-8")
    argv = cli.argv("capture-batch", str(batch), "--case", case_id, "--allow-private-network",
                    "--time-limit", "20", "--host-delay", "0", "--json")  # fmt: skip
    proc = subprocess.Popen(
        argv, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first, proc.stderr.read() if proc.stderr else ""
        killed = _browser_pids(proc.pid)
        assert killed, "no browser process found under the CLI"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        rest, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    out = _json_lines(first + rest)
    assert sorted(out) == [1, 2, 3, 4]
    assert {d["outcome"] for d in out.values()} <= {"captured", "partial"}
    retried = [d for d in out.values() if d["retried"]]
    assert retried, "no capture was in flight when the browser was killed"
    for d in retried:
        assert "retried once: the browser died" in d["reason"]
        assert f"retrying line {d['line']}" in stderr
    items = _items(cli, case_id)
    assert {d["item_id"] for d in out.values()} <= set(items)
    logged = {e["item_id"] for e in _log(cli, case_id) if e["action"] == "captured"}
    assert logged == set(items)  # partial items of first attempts, if any, are logged too
    verified = cli.run("verify", case_id, "--no-record")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (an unreaped zombie does not)."""
    return any(p.pgrp == pgid and p.state != "Z" for p in processes())


def test_ctrl_c_mid_batch_keeps_what_finished_and_nothing_half_made(
    cli: Cli, site: SampleSite, tmp_path: Path
) -> None:
    case_id = cli.new_case()
    # The profile page finishes at once; the two articles drip in for 25 s, so they are
    # in flight when Ctrl-C comes.
    urls = [
        site.url("/user/dana"),
        site.url("/robust/drip?seconds=25"),
        site.url("/robust/drip?seconds=25&copy=2"),
    ]
    batch = tmp_path / "batch.txt"
    batch.write_text("\n".join(urls) + "\n", encoding="utf-8")
    argv = cli.argv("capture-batch", str(batch), "--case", case_id, "--allow-private-network",
                    "--host-delay", "0", "--json")  # fmt: skip
    # A process group of its own, signalled as a terminal's Ctrl-C signals it: the
    # command, Playwright's driver and every Chromium process at once.
    proc = subprocess.Popen(
        argv,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        # The first URL's line, within a bound: a batch that hangs must not hang the suite.
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        assert ready, "no URL finished within 90 s"
        first = proc.stdout.readline()
        assert first, proc.stderr.read() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGINT)
        rest, stderr = proc.communicate(timeout=60)
        for _ in range(100):  # the driver and the browser go with the command
            if not _group_alive(proc.pid):
                break
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "a process of the batch outlived it"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 4, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "never retrieved" not in stderr, stderr
    out = _json_lines(first + rest)
    assert out[1]["outcome"] == "captured" and set(out) == {1}, out
    # What finished is sealed, published and logged; the rest left no item and no entry.
    assert _items(cli, case_id) == [out[1]["item_id"]]
    logged = [e for e in _log(cli, case_id) if e["action"] == "captured"]
    assert [e["item_id"] for e in logged] == [out[1]["item_id"]]
    verified = cli.run("verify", case_id, "--no-record")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Captures in flight end as an interrupted single capture does: their staging
    # folders discarded, so the next command finds no leftover.
    assert not list((cli.home / case_id / "items").glob(".staging-*"))
    assert "leftover" not in cli.ok("case", "show", case_id).stderr
