"""The evidence store on a real filesystem: cases, item staging, leftovers, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cases.case import CATEGORIES, CATEGORY_DESCRIPTIONS, Case, is_item_id, new_item_id
from cases.staging import Leftover
from cases.store import EvidenceStore, resolve_home
from chain_of_custody.durable import (
    AtomicFile,
    atomic_create_bytes,
    atomic_write_bytes,
    atomic_write_text,
)
from chain_of_custody.errors import IntegrityError, UsageError

CASE = "2026-0142"

# A pid above Linux's pid_max (4194304 at most), so it can never belong to a live process.
DEAD_PID = 999_999_999


def _open(store: EvidenceStore, case_id: str = CASE, **overrides: str) -> Case:
    fields = {
        "title": "Missing teenager, Riverside",
        "category": "missing-person",
        "investigator": "Det. A. Example",
        "authority": "Policy IV.B.1(a); supervisor approval 2026-11-20",
    }
    fields.update(overrides)
    return store.open_case(case_id, **fields)


def _complete_item(store: EvidenceStore, case_id: str = CASE) -> str:
    with store.new_item(case_id) as staging:
        (staging.path / "manifest.json").write_text("{}")
        (staging.path / "manifest.json.sig").write_bytes(b"sig")
        staging.finalize()
    return staging.item_id


def _temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tmp-"))


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence")


# -- cases ---------------------------------------------------------------------------------


def test_open_get_list_close(store: EvidenceStore) -> None:
    opened = _open(store, title="  Missing teenager, Riverside \n")
    assert opened.status == "open" and opened.closed_at is None
    assert opened.title == "Missing teenager, Riverside"
    assert opened.opened_at.endswith("Z")

    case_dir = store.home / CASE
    assert store.case_dir(CASE) == case_dir
    assert (case_dir / "items").is_dir()
    on_disk = json.loads((case_dir / "case.json").read_text())
    assert on_disk["format"] == "osint-capture/case/1"
    assert on_disk["case_id"] == CASE
    assert _temp_files(case_dir) == []

    assert store.get_case(CASE) == opened
    _open(store, "2026-0001", category="crime-media")
    assert [c.case_id for c in store.list_cases()] == ["2026-0001", CASE]

    closed = store.close_case(CASE)
    assert closed.status == "closed" and closed.closed_at is not None
    assert store.get_case(CASE) == closed
    with pytest.raises(UsageError, match="already closed"):
        store.close_case(CASE)


def test_list_cases_of_missing_home_is_empty(store: EvidenceStore) -> None:
    assert store.list_cases() == []
    assert not store.home.exists()


def test_unknown_case_message_and_hint(store: EvidenceStore) -> None:
    with pytest.raises(UsageError) as info:
        store.get_case("NOPE-1")
    assert info.value.message == f"no case 'NOPE-1' in {store.home}"
    assert info.value.hint == "open it with `osint-capture case open`"


def test_duplicate_open_is_refused(store: EvidenceStore) -> None:
    first = _open(store)
    with pytest.raises(UsageError, match="already exists"):
        _open(store, title="Another title")
    assert store.get_case(CASE) == first


@pytest.mark.parametrize(
    "bad_id", ["", ".hidden", "-x", "a/b", "..", "a b", "x" * 65, "case\n", "caf\u00e9"]
)
def test_invalid_case_id(store: EvidenceStore, bad_id: str) -> None:
    with pytest.raises(UsageError, match="invalid case id"):
        _open(store, bad_id)
    assert not store.home.exists() or list(store.home.iterdir()) == []


def test_valid_case_id_edges(store: EvidenceStore) -> None:
    _open(store, "a")
    _open(store, "A" + "b._-" * 15 + "xyz")  # 64 characters
    assert len(store.list_cases()) == 2


def test_invalid_category_lists_the_valid_ones(store: EvidenceStore) -> None:
    with pytest.raises(UsageError) as info:
        _open(store, category="curiosity")
    for name in CATEGORIES:
        assert name in info.value.message
    assert "cyberstalking" in info.value.message
    assert set(CATEGORY_DESCRIPTIONS) == set(CATEGORIES)


@pytest.mark.parametrize("field", ["title", "investigator", "authority"])
def test_blank_required_fields(store: EvidenceStore, field: str) -> None:
    with pytest.raises(UsageError, match=f"{field} must not be empty"):
        _open(store, **{field: "   "})


def test_case_json_round_trip_and_rejects_strangers() -> None:
    case = Case(
        case_id="C1",
        title="t",
        category="wanted-person",
        investigator="i",
        authority="a",
        opened_at="2026-11-25T12:00:00.000000Z",
        status="closed",
        closed_at="2026-11-26T12:00:00.000000Z",
    )
    assert Case.from_json(case.to_json()) == case
    data = case.to_dict()
    with pytest.raises(UsageError, match="unknown field"):
        Case.from_dict({**data, "extra": 1})
    with pytest.raises(UsageError, match="unsupported case record format"):
        Case.from_dict({**data, "format": "osint-capture/case/99"})
    with pytest.raises(UsageError, match="closed_at"):
        Case.from_dict({**data, "status": "open"})
    with pytest.raises(UsageError, match="opened_at"):
        Case.from_dict({**data, "opened_at": "2026-11-25T12:00:00+02:00"})
    with pytest.raises(UsageError, match="not valid JSON"):
        Case.from_json(b"{")


def test_damaged_case_json_is_an_integrity_error(store: EvidenceStore) -> None:
    _open(store)
    (store.home / CASE / "case.json").write_text('{"case_id": "2026-0142"')
    with pytest.raises(IntegrityError, match="damaged"):
        store.get_case(CASE)


def test_resolve_home_flag_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OSINT_CAPTURE_HOME", raising=False)
    assert resolve_home(None) == tmp_path / "evidence"

    monkeypatch.setenv("OSINT_CAPTURE_HOME", "from-env")
    assert resolve_home(None) == tmp_path / "from-env"
    assert resolve_home(None).is_absolute()

    assert resolve_home(Path("flag")) == tmp_path / "flag"
    assert resolve_home(tmp_path / "x" / ".." / "abs") == tmp_path / "abs"

    monkeypatch.setenv("OSINT_CAPTURE_HOME", "")
    assert resolve_home(None) == tmp_path / "evidence"


# -- items ---------------------------------------------------------------------------------


def test_item_ids() -> None:
    item_id = new_item_id()
    assert is_item_id(item_id)
    assert len(item_id) == len("20261125T120000Z-0a1b2c3d")
    assert new_item_id() != item_id
    assert not is_item_id("../../etc")
    with pytest.raises(UsageError, match="invalid item id"):
        EvidenceStore(Path("/tmp/x")).item_dir(CASE, "../../etc")


def test_staging_finalize_publishes_the_item(store: EvidenceStore) -> None:
    _open(store)
    staging = store.new_item(CASE)
    items = store.home / CASE / "items"
    assert staging.path == items / f".staging-{staging.item_id}"
    assert staging.final_path == items / staging.item_id
    assert staging.lock_path.exists()
    (staging.path / "capture").mkdir()
    (staging.path / "capture" / "page.png").write_bytes(b"\x89PNG")
    (staging.path / "manifest.json").write_text("{}")
    assert store.list_items(CASE) == []  # staged only: not yet an item

    (staging.path / "manifest.json.sig").write_bytes(b"sig")
    assert store.list_items(CASE) == []
    final = staging.finalize()

    assert final == store.item_dir(CASE, staging.item_id)
    assert (final / "capture" / "page.png").read_bytes() == b"\x89PNG"
    assert store.list_items(CASE) == [staging.item_id]
    assert sorted(p.name for p in items.iterdir()) == [staging.item_id]
    assert store.leftovers(CASE) == []
    staging.discard()  # no-op once finalized
    assert final.exists()


def test_finalize_requires_a_signed_manifest(store: EvidenceStore) -> None:
    _open(store)
    with store.new_item(CASE) as staging:
        (staging.path / "manifest.json").write_text("{}")
        with pytest.raises(ValueError, match=r"manifest\.json\.sig is missing"):
            staging.finalize()
    assert not staging.path.exists()


def test_staging_context_discards_on_exception(store: EvidenceStore) -> None:
    _open(store)
    with pytest.raises(RuntimeError, match="boom"), store.new_item(CASE) as staging:
        (staging.path / "half.warc").write_bytes(b"partial")
        raise RuntimeError("boom")
    assert not staging.path.exists()
    assert not staging.lock_path.exists()
    assert list((store.home / CASE / "items").iterdir()) == []


def test_abandoned_staging_is_kept_as_a_leftover(store: EvidenceStore) -> None:
    _open(store)
    with store.new_item(CASE) as staging:
        (staging.path / "manifest.json").write_text("{}")
        assert staging.abandon() == staging.path
        assert not staging.lock_path.exists()  # released: no live process owns it now
        with pytest.raises(RuntimeError, match="already abandoned"):
            staging.finalize()
    assert (staging.path / "manifest.json").is_file()  # leaving the block kept it
    [leftover] = store.leftovers(CASE)
    assert (leftover.kind, leftover.item_id, leftover.path) == (
        "staging",
        staging.item_id,
        staging.path,
    )
    store.remove_leftover(leftover)
    assert not staging.path.exists()


def test_case_lock_and_mark_closed(store: EvidenceStore) -> None:
    with pytest.raises(UsageError, match="no case '2026-0142'"), store.case_lock(CASE):
        pass
    assert not (store.home / CASE).exists()
    _open(store)
    with store.case_lock(CASE):
        assert (store.home / CASE / "case.json.lock").exists()
        closed = store.mark_closed(CASE)
        assert closed.status == "closed" and closed.closed_at is not None
        assert store.mark_closed(CASE) == closed  # already closed: kept as it is
    assert store.get_case(CASE) == closed
    with pytest.raises(UsageError, match="already closed"):
        store.close_case(CASE)


def test_list_items_shows_complete_items_only(store: EvidenceStore) -> None:
    _open(store)
    done = _complete_item(store)
    items = store.home / CASE / "items"
    (items / "20261125T120000Z-deadbeef").mkdir()  # no manifest
    unsigned = items / "20261125T120001Z-deadbeef"
    unsigned.mkdir()
    (unsigned / "manifest.json").write_text("{}")
    hidden = items / ".20261125T120002Z-deadbeef"
    hidden.mkdir()
    (hidden / "manifest.json").write_text("{}")
    (hidden / "manifest.json.sig").write_text("x")
    assert store.list_items(CASE) == [done]


def test_no_new_items_in_a_closed_case(store: EvidenceStore) -> None:
    _open(store)
    store.close_case(CASE)
    with pytest.raises(UsageError, match="closed"):
        store.new_item(CASE)


# -- leftovers -----------------------------------------------------------------------------

_CHILD = """
import os, signal, sys
from pathlib import Path
from cases.store import EvidenceStore

staging = EvidenceStore(Path(sys.argv[1])).new_item(sys.argv[2])
(staging.path / "page.warc.gz").write_bytes(b"w" * 1000)
print(staging.item_id, flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # stay alive, lock held, until the parent closes our stdin
"""


def _child(store: EvidenceStore, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store.home), CASE, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_staging_of_a_killed_capture_is_a_leftover(store: EvidenceStore) -> None:
    _open(store)
    done = _complete_item(store)
    child = _child(store, "die")
    assert child.stdout is not None
    item_id = child.stdout.readline().strip()
    assert child.wait(timeout=60) == -signal.SIGKILL

    (leftover,) = store.leftovers(CASE)
    assert leftover.kind == "staging"
    assert leftover.item_id == item_id
    assert leftover.path == store.home / CASE / "items" / f".staging-{item_id}"
    assert leftover.size_bytes == 1000
    assert leftover.modified.endswith("Z")

    store.remove_leftover(leftover)
    assert store.leftovers(CASE) == []
    items = store.home / CASE / "items"
    assert sorted(p.name for p in items.iterdir()) == [done]
    assert store.list_items(CASE) == [done]


def test_staging_of_a_live_capture_is_not_a_leftover(store: EvidenceStore) -> None:
    _open(store)
    child = _child(store, "wait")
    try:
        assert child.stdout is not None
        item_id = child.stdout.readline().strip()
        assert is_item_id(item_id)
        assert store.leftovers(CASE) == []
        staging = store.home / CASE / "items" / f".staging-{item_id}"
        with pytest.raises(UsageError, match="still running"):
            store.remove_leftover(Leftover(staging, item_id, 0, "", "staging"))
        assert staging.is_dir()
    finally:
        child.kill()
        child.wait(timeout=60)
    (leftover,) = store.leftovers(CASE)
    assert leftover.item_id == item_id


def test_in_process_staging_is_not_a_leftover(store: EvidenceStore) -> None:
    _open(store)
    with store.new_item(CASE):
        assert store.leftovers(CASE) == []


def test_staging_without_lock_and_lock_without_staging(store: EvidenceStore) -> None:
    _open(store)
    items = store.home / CASE / "items"
    (items / ".staging-20261125T120000Z-00000001").mkdir()
    (items / ".staging-20261125T120000Z-00000002.lock").touch()
    found = {(lo.kind, lo.item_id) for lo in store.leftovers(CASE)}
    assert found == {
        ("staging", "20261125T120000Z-00000001"),
        ("lock", "20261125T120000Z-00000002"),
    }
    for leftover in store.leftovers(CASE):
        store.remove_leftover(leftover)
    assert list(items.iterdir()) == []


def test_temp_files_of_dead_writers_are_leftovers(store: EvidenceStore) -> None:
    _open(store)
    case_dir = store.home / CASE
    dead = case_dir / f".tmp-{DEAD_PID}-abcdefgh-case.json"
    dead.write_text("half")
    nameless = case_dir / "items" / ".tmp-junk"
    nameless.write_text("x")
    live = case_dir / f".tmp-{os.getpid()}-abcdefgh-case.json"
    live.write_text("being written")

    found = store.leftovers(CASE)
    assert {lo.path for lo in found} == {dead, nameless}
    assert all(lo.kind == "temp" and lo.item_id is None for lo in found)
    for leftover in found:
        store.remove_leftover(leftover)
    assert not dead.exists() and not nameless.exists() and live.exists()


def test_remove_leftover_never_touches_items_or_foreign_paths(
    store: EvidenceStore, tmp_path: Path
) -> None:
    _open(store)
    item_id = _complete_item(store)
    item = store.item_dir(CASE, item_id)
    for path in (item, store.home / CASE / "case.json", tmp_path / ".tmp-1-x", tmp_path):
        with pytest.raises(UsageError, match="not a leftover"):
            store.remove_leftover(Leftover(path, None, 0, "", "temp"))
    assert store.list_items(CASE) == [item_id]


# -- atomic writes -------------------------------------------------------------------------


def test_atomic_write_replaces_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o600
    assert _temp_files(tmp_path) == []


def test_atomic_file_streams_and_commits(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    with AtomicFile(target) as handle:
        for _ in range(10):
            handle.write(b"x" * 100_000)
        assert not target.exists()
        assert len(_temp_files(tmp_path)) == 1
    assert target.stat().st_size == 1_000_000
    assert target.stat().st_mode & 0o777 == 0o644
    assert _temp_files(tmp_path) == []


def test_atomic_file_leaves_no_temp_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("original")
    with pytest.raises(OSError, match="disk on fire"), AtomicFile(target) as handle:
        handle.write(b"replacement, half written")
        raise OSError("disk on fire")
    assert target.read_text() == "original"
    assert _temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_create_refuses_existing(tmp_path: Path) -> None:
    target = tmp_path / "case.json"
    atomic_create_bytes(target, b"first")
    with pytest.raises(FileExistsError):
        atomic_create_bytes(target, b"second")
    assert target.read_bytes() == b"first"
    assert _temp_files(tmp_path) == []
