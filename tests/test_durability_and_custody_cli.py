"""Interrupted captures never look complete; custody commands under concurrency and damage."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chain_of_custody.custody import verify_chain
from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli


def _complete_items(cli: Cli, case_id: str) -> list[Path]:
    items = cli.home / case_id / "items"
    return [p for p in items.iterdir() if not p.name.startswith(".")] if items.exists() else []


@pytest.mark.browser
def test_sigkill_mid_capture_leaves_no_complete_item_and_is_reported(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case()
    argv = cli.argv(
        "capture", site.url("/post/1/media?mib=64"), "--case", case_id, "--allow-private-network"
    )
    proc = subprocess.Popen(
        argv,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    staging_root = cli.home / case_id / "items"
    deadline = time.monotonic() + 60
    # Kill while bodies are being written into the staging folder.
    while time.monotonic() < deadline:
        bodies = list(staging_root.glob(".staging-*/.bodies/*")) if staging_root.exists() else []
        if any(b.stat().st_size > 1024 * 1024 for b in bodies):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the capture never started writing bodies")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _complete_items(cli, case_id) == []
    shown = cli.ok("case", "show", case_id)
    assert "leftover" in shown.stderr and "case clean" in shown.stderr
    cleaned = cli.ok("case", "clean", case_id)
    assert "removed" in cleaned.stdout
    assert not list(staging_root.glob(".staging-*"))
    events = [
        json.loads(x) for x in (cli.home / case_id / "custody.jsonl").read_bytes().splitlines()
    ]
    assert events[-1]["action"] == "leftover-removed"
    assert "leftover" not in cli.ok("case", "show", case_id).stderr


@pytest.mark.browser
def test_ctrl_c_mid_capture_says_interrupted_in_one_line_and_leaves_nothing_half_made(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case()
    argv = cli.argv(
        "capture", site.url("/robust/drip?seconds=25"), "--case", case_id, "--allow-private-network"
    )
    proc = subprocess.Popen(
        argv,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    staging_root = cli.home / case_id / "items"
    try:
        deadline = time.monotonic() + 60
        # Ctrl-C while the article drips in (its first bytes are in the staging folder).
        while time.monotonic() < deadline:
            if staging_root.exists() and list(staging_root.glob(".staging-*/.bodies/*")):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the capture never started writing bodies")
        # As a terminal sends it: to the command, Playwright's driver and the browser.
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of it, if anything
        proc.wait()
    assert proc.returncode == 4, stderr
    assert stderr.strip().splitlines() == [
        "osint-capture: error: interrupted; nothing incomplete was published as evidence"
    ], stderr
    # Interrupted (unlike killed), the capture discards its staging folder itself: no
    # item, no leftover, no custody entry for it.
    assert _complete_items(cli, case_id) == []
    assert not list(staging_root.glob(".staging-*"))
    assert "leftover" not in cli.ok("case", "show", case_id).stderr
    events = [
        json.loads(x) for x in (cli.home / case_id / "custody.jsonl").read_bytes().splitlines()
    ]
    assert [e["action"] for e in events] == ["case-opened"]


@pytest.fixture(scope="module")
def item(cli: Cli, site: SampleSite) -> tuple[str, str]:
    case_id = cli.new_case("wanted-person")
    proc, data = cli.capture(site.url("/post/1"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    return case_id, data["item_id"]


@pytest.mark.browser
def test_eight_concurrent_transfers_all_land_with_the_chain_intact(
    cli: Cli, item: tuple[str, str]
) -> None:
    case_id, item_id = item
    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(
            pool.map(
                lambda n: cli.run(
                    "custody",
                    "transfer",
                    item_id,
                    "--to",
                    f"Evidence tech {n}",
                    "--reason",
                    f"lab examination {n}",
                ),
                range(8),
            )
        )
    assert [p.returncode for p in procs] == [0] * 8, [p.stderr for p in procs]
    data = (cli.home / case_id / "custody.jsonl").read_bytes()
    report = verify_chain(case_id, data)
    assert report.ok, report.problems
    events = [json.loads(line) for line in data.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    transfers = [e for e in events if e["action"] == "transferred"]
    assert sorted(e["details"]["to"] for e in transfers) == [f"Evidence tech {n}" for n in range(8)]
    shown = json.loads(cli.ok("custody", "show", item_id, "--json").stdout)
    assert [e["action"] for e in shown].count("transferred") == 8
    assert shown[0]["action"] == "captured"


@pytest.mark.browser
def test_note_and_torn_line_then_repair(cli: Cli, item: tuple[str, str]) -> None:
    case_id, item_id = item
    cli.ok(
        "custody",
        "note",
        item_id,
        "--text",
        "Screenshot shown to the victim's mother; she confirmed the account.",
    )
    log = cli.home / case_id / "custody.jsonl"
    intact = log.read_bytes()
    with open(log, "ab") as fh:  # a crash in the middle of an append
        fh.write(b'{"seq":999,"time":"2026-')
    torn = log.read_bytes()
    proc = cli.run("custody", "note", item_id, "--text", "should not land")
    assert proc.returncode == 1
    assert "custody repair" in proc.stderr
    assert log.read_bytes() == torn, "nothing is chained onto a torn line"
    repaired = cli.ok("custody", "repair", case_id)
    assert "removed" in repaired.stdout
    data = log.read_bytes()
    assert data.startswith(intact)
    last = json.loads(data.splitlines()[-1])
    assert last["action"] == "log-repaired"
    assert last["details"]["removed_size"] == len(b'{"seq":999,"time":"2026-')
    assert verify_chain(case_id, data).ok
    cli.ok("custody", "note", item_id, "--text", "after repair")


def test_custody_commands_on_unknown_item_are_usage_errors(cli: Cli) -> None:
    proc = cli.run("custody", "transfer", "20260101T000000Z-00000000", "--to", "x", "--reason", "y")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_keys_show_and_export(cli: Cli, tmp_path: Path) -> None:
    shown = cli.ok("keys", "show")
    assert "fingerprint:" in shown.stdout
    out = tmp_path / "pub.pem"
    cli.ok("keys", "export", "--out", str(out))
    assert out.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = cli.run("keys", "init", "--operator", "Someone Else")
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.browser
def test_verify_command_logs_the_examination_and_catches_tampering(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case("gang-activity")
    proc, data = cli.capture(site.url("/post/1"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    item_id = data["item_id"]
    ok = cli.ok("verify", item_id)
    assert "VERIFIED" in ok.stdout
    assert "lab only" in ok.stdout, "the lab flag shows in every report"
    text = Path(data["item_dir"]) / "text.txt"
    text.write_bytes(text.read_bytes().replace(b"Jordan", b"Jorden", 1))
    bad = cli.run("verify", item_id, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["kind"] == "item" and report["target"] == data["item_dir"]
    assert [c["step"] for c in report["checks"] if not c["ok"]] == [4]
    assert len(bad.stderr.strip().splitlines()) == 1
    events = json.loads(cli.ok("custody", "show", item_id, "--json").stdout)
    verified = [e for e in events if e["action"] == "verified"]
    assert [e["details"]["ok"] for e in verified] == [True, False]
    assert verified[1]["details"]["failed_steps"] == [4]


def test_key_folder_inside_the_evidence_home_is_refused(cli: Cli) -> None:
    inside = cli.home / "keys-here"
    proc = cli.run("keys", "init", "--operator", "X", env={"OSINT_CAPTURE_KEY_DIR": str(inside)})
    assert proc.returncode == 2
    assert "inside the evidence home" in proc.stderr
    assert not inside.exists()


@pytest.mark.browser
def test_crash_between_publishing_and_logging_is_reported_and_recovered(
    cli: Cli, site: SampleSite
) -> None:
    case_id = cli.new_case()
    # Crash injection: the process dies at the exact moment it would log the capture.
    crash_at_logging = (
        "import os, sys\n"
        "import cases.actions as actions\n"
        "real = actions.append_event\n"
        "def dying(*args, **kwargs):\n"
        "    if kwargs.get('action') == 'captured':\n"
        "        os._exit(9)\n"
        "    return real(*args, **kwargs)\n"
        "actions.append_event = dying\n"
        "from osint_capture.cli import main\n"
        "sys.argv[0] = 'osint-capture'\n"
        "main()\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            crash_at_logging,
            "--home",
            str(cli.home),
            "capture",
            site.url("/post/1"),
            "--case",
            case_id,
            "--allow-private-network",
        ],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 9
    (item,) = _complete_items(cli, case_id)
    shown = cli.ok("case", "show", case_id)
    assert "no 'captured' custody entry" in shown.stderr
    assert cli.run("verify", item.name).returncode == 1, "step 7 finds the gap"
    repaired = cli.ok("custody", "repair", case_id)
    assert item.name in repaired.stdout
    events = json.loads(cli.ok("custody", "show", item.name, "--json").stdout)
    (captured,) = [e for e in events if e["action"] == "captured"]
    assert "recovered" in captured["details"]
    assert cli.run("verify", item.name).returncode == 0
    assert "no 'captured'" not in cli.ok("case", "show", case_id).stderr


@pytest.mark.browser
def test_entries_cut_off_the_end_of_the_log_fail_verification(cli: Cli, site: SampleSite) -> None:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/post/1"), case_id)
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    cli.ok("custody", "transfer", data["item_id"], "--to", "ET Lopez", "--reason", "intake")
    log = cli.home / case_id / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))  # the transfer is deleted
    proc = subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", data["item_dir"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "removed from its end" in proc.stdout
