"""Hostile evidence: each attack of the issue "verify anything an examiner is handed",
performed as an attacker would, on real cases and items signed with real P-384 keys.

Every one used to pass, hang or crash; each must now be a named failure (or, for a
read-only copy, simply work), and nothing may print a traceback or wait forever.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cases.actions import clean_case, open_case, publish_capture
from cases.staging import ItemStaging
from cases.store import EvidenceStore
from cases.summary import item_summary
from chain_of_custody.canonical import MAX_DEPTH, check_depth, parse_canonical
from chain_of_custody.custody import check_head, parse_line
from chain_of_custody.errors import CustodyLogDamaged, IntegrityError, UsageError
from chain_of_custody.item import load_manifest, seal_item
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import CaseReport, ItemReport, verify_case, verify_item
from tests.conftest import Cli

CASE = "2026-0777"
OTHER_CASE = "2026-0778"
OPERATOR = "Det. H. Ostile"
URL = "https://social.example/p/9"
CASE_FIELDS = {
    "title": "Threats posted to a school forum",
    "category": "online-crime",
    "investigator": "Det. H. Ostile",
    "authority": "Lt. J. Park, approval 26-114",
}
# Long enough for a slow machine; a verifier blocked on a FIFO would never finish.
TIMEOUT_S = 60
# Deep enough to exhaust any Python stack (the default recursion limit is 1000).
HOSTILE_DEPTH = 100_000
SHA256SUM = shutil.which("sha256sum")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator=OPERATOR, private_key=generate_private_key())


@pytest.fixture
def store(tmp_path: Path, signer: Signer) -> EvidenceStore:
    store = EvidenceStore(tmp_path / "evidence")
    open_case(store, CASE, signer=signer, **CASE_FIELDS)
    return store


def _capture(store: EvidenceStore, signer: Signer, case_id: str = CASE) -> Path:
    """A published, signed and logged item (no browser): its folder."""
    staging = store.new_item(case_id)
    (staging.path / "text.txt").write_text("the post's visible text\n", encoding="utf-8")
    (staging.path / "dom.html").write_text("<html><body>post</body></html>\n", encoding="utf-8")
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=case_id,
        status="partial",
        provenance={"requested_url": URL, "final_url": URL},
        signer=signer,
    )
    return publish_capture(
        store,
        case_id,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url=URL,
        final_url=URL,
        status="partial",
        files=2,
        signer=signer,
    )


@pytest.fixture
def item(store: EvidenceStore, signer: Signer) -> Path:
    item = _capture(store, signer)
    assert verify_item(item).ok
    assert verify_case(store.case_dir(CASE)).ok
    return item


def _verifier(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The standalone verifier, in its own process: a hang fails by timeout, not forever."""
    return subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _verify_json(path: Path) -> list[str]:
    """Every text of the standalone verifier's failing --json report (whatever its layout)."""
    proc = _verifier(path, "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    return _texts(report)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for part in value for text in _texts(part)]
    return []


def _mentions(texts: list[str], wanted: str) -> bool:
    return any(wanted in text for text in texts)


def _problems(report: ItemReport, step: int) -> tuple[str, ...]:
    assert not report.ok
    return report.step(step).problems


def _failed_steps(report: ItemReport) -> list[int]:
    return [s.number for s in report.steps if not s.ok and not s.skipped]


def _all_problems(report: CaseReport) -> list[str]:
    found = list(report.problems)
    for item in report.items:
        for step in item.steps:
            found.extend(step.problems)
    return found


def _deep(depth: int = HOSTILE_DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


# -- links and special files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "step"),
    [("manifest.json", 1), ("manifest.json.sig", 2), ("SHA256SUMS", 5)],
)
def test_a_file_replaced_by_a_link_to_an_identical_copy_outside_fails_naming_it(
    item: Path, tmp_path: Path, name: str, step: int
) -> None:
    # The copy outside is byte-for-byte the original: only the link gives it away.
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.copyfile(item / name, outside)
    (item / name).unlink()
    (item / name).symlink_to(outside)

    report = verify_item(item)
    assert step in _failed_steps(report)
    assert (
        f"{name} is a symbolic link (to {outside}); only regular files inside the item are read"
        in (report.step(step).problems)
    )
    assert not verify_case(item.parent.parent).ok
    _verify_json(item.parent.parent)


def test_sha256sums_as_a_fifo_fails_and_never_blocks(item: Path) -> None:
    (item / "SHA256SUMS").unlink()
    os.mkfifo(item / "SHA256SUMS")
    # sha256sum -c SHA256SUMS would wait forever for a writer; the verifier must not.
    texts = _verify_json(item)
    wanted = "SHA256SUMS is a FIFO (named pipe); only regular files inside the item are read"
    assert _mentions(texts, wanted), texts
    report = verify_item(item)
    assert _failed_steps(report) == [5]
    assert report.step(5).problems == (wanted,)


@pytest.mark.parametrize("name", ["manifest.json", "manifest.json.sig"])
def test_manifest_or_signature_as_a_fifo_fails_and_never_blocks(item: Path, name: str) -> None:
    (item / name).unlink()
    os.mkfifo(item / name)
    texts = _verify_json(item.parent.parent)
    wanted = f"{name} is a FIFO (named pipe); only regular files inside the item are read"
    assert _mentions(texts, wanted), texts


def test_custody_head_as_a_fifo_fails_the_case_and_never_blocks(item: Path) -> None:
    case_dir = item.parent.parent
    (case_dir / "custody.head").unlink()
    os.mkfifo(case_dir / "custody.head")
    texts = _verify_json(case_dir)
    assert _mentions(texts, "custody.head is a FIFO (named pipe)"), texts


def test_custody_log_as_a_link_is_not_followed(item: Path, tmp_path: Path) -> None:
    case_dir = item.parent.parent
    outside = tmp_path / "custody.jsonl"
    shutil.copyfile(case_dir / "custody.jsonl", outside)
    (case_dir / "custody.jsonl").unlink()
    (case_dir / "custody.jsonl").symlink_to(outside)
    report = verify_case(case_dir)
    assert (
        f"custody.jsonl is a symbolic link (to {outside}); "
        "only regular files inside the case folder are read"
    ) in report.problems


@pytest.mark.parametrize("folders", [("extra",), ("nested", "nested/deeper")])
def test_extra_empty_folders_inside_an_item_fail_naming_each(
    item: Path, folders: tuple[str, ...]
) -> None:
    for folder in folders:
        (item / folder).mkdir()
    report = verify_item(item)
    assert _failed_steps(report) == [5]
    assert report.step(5).problems == tuple(
        f"{folder}/ is a folder the manifest does not list (no listed file)" for folder in folders
    )


# -- SHA256SUMS agrees with sha256sum -c ---------------------------------------------------


def _sha256sum_check(item: Path) -> subprocess.CompletedProcess[str]:
    assert SHA256SUM is not None
    return subprocess.run(
        [SHA256SUM, "-c", "SHA256SUMS"],
        cwd=item,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.skipif(SHA256SUM is None, reason="needs sha256sum (coreutils)")
@pytest.mark.parametrize("wrong_first", [False, True], ids=["wrong-after", "wrong-before"])
def test_a_second_wrong_line_for_a_file_fails_as_sha256sum_reports_it(
    item: Path, wrong_first: bool
) -> None:
    assert _sha256sum_check(item).returncode == 0
    sums = item / "SHA256SUMS"
    lines = sums.read_text(encoding="utf-8").splitlines(keepends=True)
    wrong = "0" * 64 + "  text.txt\n"
    sums.write_text("".join([wrong, *lines] if wrong_first else [*lines, wrong]), encoding="utf-8")

    checked = _sha256sum_check(item)
    assert checked.returncode == 1
    assert "text.txt: FAILED" in checked.stdout

    report = verify_item(item)
    assert _failed_steps(report) == [5]
    problems = report.step(5).problems
    right_line = next(n for n, line in enumerate(lines, start=1) if line.endswith("  text.txt\n"))
    if wrong_first:  # the right line, moved down by one, is the second for text.txt
        wrong_line, first, again = 1, 1, right_line + 1
    else:
        wrong_line, first, again = len(lines) + 1, right_line, len(lines) + 1
    assert problems[0] == "SHA256SUMS disagrees with the manifest for: text.txt"
    assert (
        f"SHA256SUMS line {wrong_line} gives text.txt SHA-256 {'0' * 64}, but it is "
        in " ".join(problems)
    )
    assert f"SHA256SUMS line {again} lists text.txt again (first on line {first})" in problems


@pytest.mark.skipif(SHA256SUM is None, reason="needs sha256sum (coreutils)")
def test_every_item_sha256sums_passes_sha256sum_and_the_verifier(item: Path) -> None:
    assert _sha256sum_check(item).returncode == 0
    assert verify_item(item).ok


def test_a_duplicate_correct_line_is_named_too(item: Path) -> None:
    # sha256sum -c accepts it; the format is one line per file, so the verifier names it.
    sums = item / "SHA256SUMS"
    first = sums.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    with sums.open("a", encoding="utf-8") as out:
        out.write(first)
    name = first.split("  ", 1)[1].strip()
    report = verify_item(item)
    assert _failed_steps(report) == [5]
    assert any(f"lists {name} again (first on line 1)" in p for p in report.step(5).problems)


# -- deep nesting and malformed JSON ------------------------------------------------------------


def test_parse_canonical_bounds_nesting_depth() -> None:
    assert parse_canonical(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse_canonical(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nested more than"):
        parse_canonical(_deep())
    with pytest.raises(ValueError, match="nested more than"):
        parse_canonical(b'{"a":' * HOSTILE_DEPTH + b"1" + b"}" * HOSTILE_DEPTH)
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = '["' + "[{" * 500 + '\\"[[[", "\\\\"]'
    check_depth(text)
    assert parse_canonical(json.dumps(["[" * 500]).encode()) == ["[" * 500]
    # Unterminated strings and garbage are refused, not scanned forever.
    for garbage in (b'"' + b'\\"' * 100_000, b"[" * 50 + b'"' * 100_001, b"]" * 1000):
        with pytest.raises(ValueError):
            parse_canonical(garbage)


def test_readers_turn_deep_nesting_into_their_documented_errors() -> None:
    with pytest.raises(IntegrityError, match="nested more than"):
        load_manifest(_deep())
    with pytest.raises(IntegrityError, match="the top level is not an object"):
        load_manifest(b"[1]")
    with pytest.raises(CustodyLogDamaged, match="nested more than"):
        parse_line(_deep())
    with pytest.raises(CustodyLogDamaged):
        parse_line(b"[1]")
    for head in (_deep() + b"\n", b"[1]\n", b'{"seq":1}\n'):
        assert check_head(CASE, b"", head) == ["custody.head is not a valid head record"]


def test_deep_manifest_is_a_named_failure_in_the_standalone_verifier(item: Path) -> None:
    (item / "manifest.json").write_bytes(_deep())
    for path in (item, item.parent.parent):
        proc = _verifier(path)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stdout
        assert (
            "manifest.json is not canonical JSON: nested more than 100 levels deep" in proc.stdout
        )


def test_deep_custody_log_line_is_a_named_failure(item: Path) -> None:
    case_dir = item.parent.parent
    with (case_dir / "custody.jsonl").open("ab") as log:
        log.write(_deep() + b"\n")
    texts = _verify_json(case_dir)
    assert any("custody.jsonl line" in t and "nested more than" in t for t in texts), texts


def test_deep_custody_head_is_a_named_failure(item: Path) -> None:
    case_dir = item.parent.parent
    (case_dir / "custody.head").write_bytes(_deep() + b"\n")
    texts = _verify_json(case_dir)
    assert _mentions(texts, "custody.head is not a valid head record"), texts


def test_deep_case_json_is_a_named_failure(item: Path) -> None:
    case_dir = item.parent.parent
    (case_dir / "case.json").write_bytes(_deep())
    report = verify_case(case_dir)
    assert any(p.startswith("case.json cannot be read as a case record") for p in report.problems)


def test_summary_of_a_malformed_manifest_is_unreadable(item: Path) -> None:
    for data in (b"[1]", _deep(), b"{}", b"\xff"):
        (item / "manifest.json").write_bytes(data)
        assert item_summary(item).line() == "(manifest unreadable)"
    (item / "manifest.json").unlink()
    os.mkfifo(item / "manifest.json")
    assert item_summary(item).line() == "(manifest unreadable)"  # and it did not block


# -- items/: stray entries, ambiguous ids, leftovers -----------------------------------------


def test_stray_folder_in_items_is_named_and_everything_else_works(
    store: EvidenceStore, signer: Signer, item: Path
) -> None:
    copy = item.parent / f"{item.name}-copy"
    shutil.copytree(item, copy)
    (item.parent / "notes.txt").write_text("scribbles\n", encoding="utf-8")
    assert store.list_items(CASE) == [item.name]
    assert store.stray_entries(CASE) == [copy.name, "notes.txt"]
    # The copy is judged where it sits, and fails naming itself.
    report = verify_case(store.case_dir(CASE))
    assert not report.ok
    assert f"the folder is named {copy.name}, the manifest is item {item.name}" in _all_problems(
        report
    )


def test_same_item_id_in_two_cases_is_ambiguous(
    store: EvidenceStore, signer: Signer, item: Path
) -> None:
    open_case(store, OTHER_CASE, signer=signer, **CASE_FIELDS)
    shutil.copytree(item, store.case_dir(OTHER_CASE) / "items" / item.name)
    with pytest.raises(UsageError, match=f"cases {CASE}, {OTHER_CASE}") as caught:
        store.find_item(item.name)
    assert "ambiguous" in caught.value.message


def _abandoned_staging(store: EvidenceStore) -> ItemStaging:
    staging = store.new_item(CASE)
    (staging.path / "text.txt").write_text("half a capture\n", encoding="utf-8")
    staging.abandon()  # what a killed capture leaves: the folder, its lock released
    return staging


def test_leftover_of_an_interrupted_capture_is_named_until_cleaned(
    store: EvidenceStore, signer: Signer, item: Path
) -> None:
    staging = _abandoned_staging(store)
    case_dir = store.case_dir(CASE)
    (case_dir / "items" / f".staging-{staging.item_id}.lock").write_bytes(b"")
    orphan_lock = case_dir / "items" / ".staging-20260101T000000Z-deadbeef.lock"
    orphan_lock.write_bytes(b"")
    temp = case_dir / "items" / ".tmp-999999999-manifest.json"
    temp.write_bytes(b"{")
    clean = f"(run `osint-capture case clean {CASE}`)"

    report = verify_case(case_dir)
    assert not report.ok
    assert sorted(report.problems) == sorted(
        [
            f"interrupted capture: items/{staging.path.name} {clean}",
            f"interrupted capture: items/{orphan_lock.name} {clean}",
            f"interrupted write: items/{temp.name} {clean}",
        ]
    )
    assert all(item_report.ok for item_report in report.items)

    clean_case(store, CASE, signer=signer)
    assert verify_case(case_dir).ok


def test_a_capture_still_running_is_named_as_one(store: EvidenceStore, item: Path) -> None:
    with store.new_item(CASE) as staging:
        report = verify_case(store.case_dir(CASE))
        assert report.problems == (
            f"capture in progress: items/{staging.path.name} (verify again once it has ended)",
        )


def test_a_fifo_planted_as_a_staging_lock_never_blocks(store: EvidenceStore, item: Path) -> None:
    lock = store.case_dir(CASE) / "items" / ".staging-20260101T000000Z-0badf1f0.lock"
    os.mkfifo(lock)
    found: dict[str, Any] = {}

    def look() -> None:
        found["leftovers"] = store.leftovers(CASE)
        found["report"] = verify_case(store.case_dir(CASE))

    worker = threading.Thread(target=look, daemon=True)
    worker.start()
    worker.join(TIMEOUT_S)
    assert not worker.is_alive(), "listing leftovers or verifying blocked on a FIFO"
    assert [leftover.path for leftover in found["leftovers"]] == [lock]
    assert found["report"].problems == (
        f"interrupted capture: items/{lock.name} (run `osint-capture case clean {CASE}`)",
    )


# -- through the command lines ------------------------------------------------------------------


@pytest.fixture
def operator(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """The CLI's own operator key, to add items to a case the real CLI opened."""
    from osint_capture import keys

    for name in ("OSINT_CAPTURE_KEY_DIR", "OSINT_CAPTURE_PASSPHRASE"):
        monkeypatch.setenv(name, cli.env[name])
    return keys.load_signer(None, evidence_home=cli.home)


@pytest.fixture
def cli_case(cli: Cli, operator: Signer) -> tuple[str, list[Path]]:
    """A case opened by the real CLI, with two items captured (without a browser)."""
    case_id = cli.new_case()
    store = EvidenceStore(cli.home)
    items = [_capture(store, operator, case_id) for _ in range(2)]
    return case_id, items


def _no_key_env(cli: Cli) -> dict[str, str]:
    env = dict(cli.env)
    for name in ("OSINT_CAPTURE_KEY_DIR", "OSINT_CAPTURE_PASSPHRASE"):
        env.pop(name, None)
    return env


def _assert_clean_failure_output(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "unexpected" not in proc.stderr, proc.stderr


def test_case_show_and_verify_of_a_list_manifest(
    cli: Cli, cli_case: tuple[str, list[Path]]
) -> None:
    case_id, (bad, good) = cli_case
    (bad / "manifest.json").write_bytes(b"[1]")
    shown = cli.run("case", "show", case_id, timeout=TIMEOUT_S)
    _assert_clean_failure_output(shown)
    assert shown.returncode == 0, shown.stderr
    assert f"{bad.name}  (manifest unreadable)" in shown.stdout
    assert f"{good.name}  partial  {URL}" in shown.stdout

    checked = cli.run("verify", bad.name, "--json", timeout=TIMEOUT_S)
    _assert_clean_failure_output(checked)
    assert checked.returncode == 1, checked.stderr
    assert json.loads(checked.stdout)["ok"] is False

    proc = _verifier(bad)
    assert proc.returncode == 1 and "the top level is not an object" in proc.stdout


def test_case_show_survives_a_deep_manifest(cli: Cli, cli_case: tuple[str, list[Path]]) -> None:
    case_id, (bad, _) = cli_case
    (bad / "manifest.json").write_bytes(_deep())
    shown = cli.run("case", "show", case_id, timeout=TIMEOUT_S)
    _assert_clean_failure_output(shown)
    assert shown.returncode == 0 and f"{bad.name}  (manifest unreadable)" in shown.stdout


def test_cli_with_a_stray_folder_warns_and_goes_on(
    cli: Cli, cli_case: tuple[str, list[Path]]
) -> None:
    case_id, (first, second) = cli_case
    copy = first.parent / f"{first.name}-copy"
    shutil.copytree(first, copy)

    repaired = cli.run("custody", "repair", case_id, timeout=TIMEOUT_S)
    _assert_clean_failure_output(repaired)
    assert repaired.returncode == 0, repaired.stderr

    shown = cli.run("case", "show", case_id, timeout=TIMEOUT_S)
    _assert_clean_failure_output(shown)
    assert shown.returncode == 0, shown.stderr
    assert first.name in shown.stdout and second.name in shown.stdout
    assert copy.name not in shown.stdout
    assert f"stray entry in items/: {copy.name} (not an item)" in shown.stderr


def test_cli_refuses_an_item_id_held_by_two_cases(
    cli: Cli, cli_case: tuple[str, list[Path]]
) -> None:
    case_id, (first, _) = cli_case
    other = cli.new_case()
    shutil.copytree(first, cli.home / other / "items" / first.name)
    proc = cli.run("custody", "show", first.name, timeout=TIMEOUT_S)
    _assert_clean_failure_output(proc)
    assert proc.returncode == 2
    assert case_id in proc.stderr and other in proc.stderr and "ambiguous" in proc.stderr


# -- a write-blocked copy -----------------------------------------------------------------------


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of our own, to copy a case onto and then remount read-only."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mount = tmp_path / "write-blocked"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


@pytest.mark.parametrize("with_lock_files", [True, False], ids=["lock-files", "no-lock-files"])
def test_a_read_only_copy_can_be_verified_shown_and_its_log_read(
    cli: Cli, cli_case: tuple[str, list[Path]], read_only_mount: Path, with_lock_files: bool
) -> None:
    case_id, items = cli_case
    home = read_only_mount / "evidence"
    home.mkdir()
    shutil.copytree(cli.home / case_id, home / case_id, symlinks=True)
    if not with_lock_files:
        for lock in (home / case_id).glob("*.lock"):
            lock.unlink()
    before = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    with pytest.raises(OSError, match="Read-only file system"):
        (home / case_id / "probe").write_bytes(b"")

    env = _no_key_env(cli)  # none of these signs anything, so none needs a key
    osint = [sys.executable, "-m", "osint_capture", "--home", str(home)]
    runs = {
        "verify": [sys.executable, "-m", "chain_of_custody", "verify", str(home / case_id)],
        "case show": [*osint, "case", "show", case_id],
        "custody log": [*osint, "custody", "log", case_id],
    }
    out = {}
    for what, argv in runs.items():
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False
        )
        _assert_clean_failure_output(proc)
        assert proc.returncode == 0, (what, proc.stdout, proc.stderr)
        assert "Read-only file system" not in proc.stderr
        out[what] = proc.stdout
    assert "VERIFIED" in out["verify"] and "FAILED" not in out["verify"]
    assert all(item.name in out["case show"] for item in items)
    assert all(item.name in out["custody log"] for item in items)
    assert "case-opened" in out["custody log"]
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == before
