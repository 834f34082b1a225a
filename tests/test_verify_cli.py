"""`osint-capture verify TARGET` and `python -m chain_of_custody verify TARGET` on what an
examiner is handed: an item or case by ID or by folder, in the home or copied out of it.

One real capture of the sample post (real Chromium, 127.0.0.1), then copies of it,
damaged one way at a time, judged by both verifiers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.signing import generate_private_key, public_key_pem_of
from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli

pytestmark = pytest.mark.browser

_STANDALONE = [sys.executable, "-m", "chain_of_custody", "verify"]
# The standalone verifier must run with the capture stack absent.
_BLOCKED = ("playwright", "typer", "rich", "osint_capture", "cases")
_BLOCKING_RUNNER = f"""
import runpy, sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked for this test")
        return None
sys.meta_path.insert(0, Blocked())
sys.argv = ["chain_of_custody", *sys.argv[1:]]
runpy.run_module("chain_of_custody", run_name="__main__")
"""


@pytest.fixture(scope="module")
def captured(cli: Cli, site: SampleSite) -> dict[str, Any]:
    case_id = cli.new_case()
    proc, data = cli.capture(site.url("/post/1"), case_id)
    assert proc.returncode == 0 and data is not None, proc.stderr
    data["case_id"] = case_id
    return data


def _standalone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _log(cli: Cli, case_id: str) -> bytes:
    return (cli.home / case_id / "custody.jsonl").read_bytes()


def _copy_out(captured: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "handed-over" / Path(captured["item_dir"]).name
    shutil.copytree(captured["item_dir"], copy)
    return copy


def _failing(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in document["checks"] if not c["ok"]]


def test_a_byte_flipped_in_any_file_fails_and_names_it(
    cli: Cli, captured: dict[str, Any], tmp_path: Path
) -> None:
    names = sorted(p.name for p in Path(captured["item_dir"]).iterdir())
    assert "archive.warc.gz" in names and "SHA256SUMS" in names
    for number, name in enumerate(names):
        copy = _copy_out(captured, tmp_path / str(number))
        path = copy / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        for proc in (cli.run("verify", str(copy), "--json"), _standalone(str(copy), "--json")):
            assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
            failing = _failing(json.loads(proc.stdout))
            assert failing, name
            assert any(name in c["detail"] for c in failing), (name, failing)


def test_unlisted_and_missing_files_and_a_foreign_trusted_key_fail(
    cli: Cli, captured: dict[str, Any], tmp_path: Path, public_key: Path
) -> None:
    unlisted = _copy_out(captured, tmp_path / "unlisted")
    (unlisted / "notes.txt").write_text("added later")
    missing = _copy_out(captured, tmp_path / "missing")
    (missing / "page.pdf").unlink()
    for copy, name in ((unlisted, "notes.txt"), (missing, "page.pdf")):
        for proc in (cli.run("verify", str(copy), "--json"), _standalone(str(copy), "--json")):
            assert proc.returncode == 1
            assert any(name in c["detail"] for c in _failing(json.loads(proc.stdout)))
    foreign = tmp_path / "foreign.pub.pem"
    foreign.write_text(public_key_pem_of(generate_private_key().public_key()))
    genuine = _copy_out(captured, tmp_path / "genuine")
    for run_args in (["--trusted-key", str(foreign)], ["--trusted-key", str(public_key)]):
        proc = _standalone(str(genuine), *run_args)
        expected = 0 if run_args[1] == str(public_key) else 1
        assert proc.returncode == expected, (run_args, proc.stdout)
    proc = cli.run("verify", str(genuine), "--trusted-key", str(foreign), "--json")
    assert proc.returncode == 1
    (step3,) = [c for c in _failing(json.loads(proc.stdout)) if c["step"] == 3]
    assert "not among the trusted keys" in step3["detail"]


def test_a_copied_item_outside_the_home_is_read_only_and_skips_step_7(
    cli: Cli, captured: dict[str, Any], tmp_path: Path
) -> None:
    copy = _copy_out(captured, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    log_before = _log(cli, captured["case_id"])
    for proc in (cli.run("verify", str(copy), "--json"), _standalone(str(copy), "--json")):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        document = json.loads(proc.stdout)
        assert document["kind"] == "item" and document["target"] == str(copy)
        (step7,) = [c for c in document["checks"] if c["step"] == 7]
        assert step7["ok"] and "no custody log" in step7["detail"]
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    assert _log(cli, captured["case_id"]) == log_before, "nothing outside the home is logged"


def test_home_items_and_cases_by_id_or_folder_are_logged_unless_no_record(
    cli: Cli, captured: dict[str, Any]
) -> None:
    case_id, item_id = captured["case_id"], captured["item_id"]
    for target in (item_id, captured["item_dir"], case_id, str(cli.home / case_id)):
        before = _log(cli, case_id)
        proc = cli.run("verify", target)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "VERIFIED" in proc.stdout
        added = _log(cli, case_id)[len(before) :].splitlines()
        assert len(added) == 1, target
        entry = json.loads(added[0])
        assert entry["action"] == "verified" and entry["details"]["ok"] is True
        assert entry["item_id"] == (
            None if case_id in target and item_id not in target else item_id
        )
        before = _log(cli, case_id)
        assert cli.run("verify", target, "--no-record").returncode == 0
        assert _log(cli, case_id) == before


def test_without_a_key_the_examination_runs_and_says_it_was_not_logged(
    cli: Cli, captured: dict[str, Any], tmp_path: Path
) -> None:
    case_id = captured["case_id"]
    before = _log(cli, case_id)
    env = {"OSINT_CAPTURE_KEY_DIR": str(tmp_path / "no-key-here")}
    proc = cli.run("verify", captured["item_id"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "VERIFIED" in proc.stdout
    (note,) = proc.stderr.strip().splitlines()
    assert "not logged" in note and "no signing key" in note
    assert _log(cli, case_id) == before


def test_the_standalone_verifier_needs_none_of_the_capture_stack(
    cli: Cli, captured: dict[str, Any]
) -> None:
    blocked = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCKING_RUNNER.replace(
                'runpy.run_module("chain_of_custody", run_name="__main__")', "import typer"
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert blocked.returncode != 0 and "blocked for this test" in blocked.stderr, "the block works"
    for target in (captured["item_dir"], str(cli.home / captured["case_id"])):
        proc = _standalone(target)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "VERIFIED" in proc.stdout


def test_usage_errors_are_one_line_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    for args in (
        ("verify", "no-such-thing"),
        ("verify", str(tmp_path)),
        ("verify", "20990101T000000Z-deadbeef"),
        ("verify", str(tmp_path), "--trusted-key", str(tmp_path / "missing.pem")),
    ):
        proc = cli.run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def _bundle_of(case_dir: Path, out: Path, *, flip: str | None = None) -> Path:
    """A zip of the case folder's layout with a root SHA256SUMS, as an export writes one."""
    files = sorted(p for p in case_dir.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(case_dir).as_posix()}\n"
        for p in files
    )
    with zipfile.ZipFile(out, "w") as bundle:
        for path in files:
            name = path.relative_to(case_dir).as_posix()
            data = bytearray(path.read_bytes())
            if name == flip:
                data[len(data) // 2] ^= 0x01
            bundle.writestr(name, bytes(data))
        bundle.writestr("SHA256SUMS", sums)
    return out


def test_bundles_verify_and_hostile_ones_are_refused_in_one_line(
    cli: Cli, captured: dict[str, Any], tmp_path: Path
) -> None:
    case_dir = cli.home / captured["case_id"]
    log_before = _log(cli, captured["case_id"])
    good = _bundle_of(case_dir, tmp_path / "good.zip")
    for proc in (cli.run("verify", str(good), "--json"), _standalone(str(good), "--json")):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        document = json.loads(proc.stdout)
        assert document["kind"] == "bundle" and document["checks"][0]["step"] == 10
    assert _log(cli, captured["case_id"]) == log_before, "a bundle is never logged or written"

    member = f"items/{captured['item_id']}/text.txt"
    bad = _bundle_of(case_dir, tmp_path / "bad.zip", flip=member)
    for proc in (cli.run("verify", str(bad), "--json"), _standalone(str(bad), "--json")):
        assert proc.returncode == 1
        assert any("text.txt" in c["detail"] for c in _failing(json.loads(proc.stdout)))

    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip file at all")
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as bundle:
        bundle.writestr("../escaped.txt", "outside")
    for hostile in (garbage, slip):
        for proc in (cli.run("verify", str(hostile)), _standalone(str(hostile))):
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path.parent / "escaped.txt").exists()
