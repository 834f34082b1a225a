"""A full evidence home: an append that cannot be completed leaves the custody log
exactly as it was, and every command says what happened in one line (exit 4).

A real small file system (tmpfs, mounted for the test) is filled up; where mounting is
not allowed (not root), the test is skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain_of_custody.custody import verify_chain
from chain_of_custody.durable import append_durable
from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli

_SIZE = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; returns the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_append_on_a_full_disk_leaves_the_file_as_it_was(small_disk: Path) -> None:
    log = small_disk / "log"
    log.write_bytes(b"first line\n")
    _fill(small_disk)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        with pytest.raises(OSError) as caught:
            append_durable(fd, b"a line that does not fit\n")
    finally:
        os.close(fd)
    assert caught.value.errno == 28  # ENOSPC
    assert log.read_bytes() == b"first line\n"


def test_a_full_evidence_home_is_said_plainly_and_tears_nothing(cli: Cli, small_disk: Path) -> None:
    home_cli = Cli(home=small_disk / "evidence", env=cli.env)
    case_id = home_cli.new_case()
    case_dir = home_cli.home / case_id
    log_before = (case_dir / "custody.jsonl").read_bytes()
    head_before = (case_dir / "custody.head").read_bytes()
    filler = _fill(small_disk)

    # A refused capture is logged before any browser starts: the append meets the full disk.
    proc = home_cli.run("capture", "http://user:pw@127.0.0.1:9/", "--case", case_id)
    assert proc.returncode == 4, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "evidence home is full" in proc.stderr and "unchanged" in proc.stderr
    assert "unexpected" not in proc.stderr
    assert (case_dir / "custody.jsonl").read_bytes() == log_before
    assert (case_dir / "custody.head").read_bytes() == head_before

    # Closing writes case.json first: the same plain line, and nothing changed.
    proc = home_cli.run("case", "close", case_id)
    assert proc.returncode == 4, proc.stderr
    assert "full" in proc.stderr and "unexpected" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (case_dir / "custody.jsonl").read_bytes() == log_before

    # With space again, the log takes entries and still verifies: nothing to repair.
    filler.unlink()
    proc = home_cli.run("capture", "http://user:pw@127.0.0.1:9/", "--case", case_id)
    assert proc.returncode == 3, proc.stderr
    data = (case_dir / "custody.jsonl").read_bytes()
    assert data.startswith(log_before)
    assert verify_chain(case_id, data).ok
    home_cli.ok("case", "close", case_id)


@pytest.mark.browser
def test_a_capture_into_a_full_evidence_home_fails_in_one_plain_line(
    cli: Cli, site: SampleSite, small_disk: Path
) -> None:
    home_cli = Cli(home=small_disk / "evidence", env=cli.env)
    case_id = home_cli.new_case()
    log_before = (home_cli.home / case_id / "custody.jsonl").read_bytes()
    _fill(small_disk)
    proc = home_cli.run(
        "capture", site.url("/post/1"), "--case", case_id, "--allow-private-network"
    )
    assert proc.returncode == 4, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "full" in proc.stderr and "unexpected" not in proc.stderr
    items = home_cli.home / case_id / "items"
    assert not [p for p in items.iterdir() if not p.name.startswith(".")], "no item published"
    assert (home_cli.home / case_id / "custody.jsonl").read_bytes() == log_before
