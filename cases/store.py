"""The evidence store: every case under one evidence home, on disk.

Layout under the evidence home (a stable contract other tools and reviewers rely on)::

    <home>/<CASE_ID>/case.json
    <home>/<CASE_ID>/custody.jsonl
    <home>/<CASE_ID>/items/<ITEM_ID>/manifest.json (+ manifest.json.sig and the captured files)

The case record is :mod:`cases.case`; items under construction and the leftovers of
interrupted captures are :mod:`cases.staging`; the custody log is :mod:`cases.custody`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from filelock import FileLock, Timeout

from chain_of_custody.durable import (
    TEMP_PREFIX,
    atomic_create_bytes,
    atomic_write_bytes,
    fsync_dir,
)
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.item import (
    CASE_RECORD_NAME,
    CUSTODY_LOG_NAME,
    ITEMS_DIR_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
)
from chain_of_custody.timeutil import utc_now

from .case import Case, check_case_id, check_item_id, is_case_id, is_item_id
from .staging import (
    STAGING_PREFIX,
    ItemStaging,
    Leftover,
    create_staging,
    find_leftovers,
    is_being_published,
    remove_leftover,
)

__all__ = [
    "CASE_FILE",
    "CASE_LOCK_FILE",
    "CUSTODY_FILE",
    "ENV_HOME",
    "ITEMS_DIR",
    "EvidenceStore",
    "resolve_home",
]

ENV_HOME = "OSINT_CAPTURE_HOME"
CASE_FILE = CASE_RECORD_NAME
CUSTODY_FILE = CUSTODY_LOG_NAME
ITEMS_DIR = ITEMS_DIR_NAME
# The case lock: held to change the case's state (close it) and to publish an item into it.
CASE_LOCK_FILE = f"{CASE_RECORD_NAME}.lock"
_LOCK_TIMEOUT_S = 60


def resolve_home(home: Path | None) -> Path:
    """The evidence home: the flag value, else ``$OSINT_CAPTURE_HOME``, else ``./evidence``."""
    if home is None:
        env = os.environ.get(ENV_HOME, "").strip()
        home = Path(env) if env else Path.cwd() / "evidence"
    # abspath rather than resolve(): keep the path the investigator named, symlinks and all,
    # but never a relative one that would change meaning with the working directory.
    return Path(os.path.abspath(home.expanduser()))


class EvidenceStore:
    """All cases under one evidence home."""

    def __init__(self, home: Path) -> None:
        self.home = Path(os.path.abspath(Path(home).expanduser()))

    def __repr__(self) -> str:
        return f"EvidenceStore({str(self.home)!r})"

    # -- cases ---------------------------------------------------------------------------

    def case_dir(self, case_id: str) -> Path:
        return self.home / check_case_id(case_id)

    def item_dir(self, case_id: str, item_id: str) -> Path:
        return self.case_dir(case_id) / ITEMS_DIR / check_item_id(item_id)

    def open_case(
        self, case_id: str, *, title: str, category: str, investigator: str, authority: str
    ) -> Case:
        """Create the case directory and its ``case.json``; an existing case is refused."""
        case = Case(
            case_id=case_id,
            title=title,
            category=category,
            investigator=investigator,
            authority=authority,
            opened_at=utc_now(),
            status="open",
            closed_at=None,
        )
        case_dir = self.case_dir(case.case_id)
        home_existed = self.home.is_dir()
        self.home.mkdir(parents=True, exist_ok=True)
        # A directory without case.json is what a crash during open leaves; reusing it is
        # safe because case.json is published exclusively below.
        case_dir.mkdir(exist_ok=True)
        (case_dir / ITEMS_DIR).mkdir(exist_ok=True)
        try:
            atomic_create_bytes(case_dir / CASE_FILE, case.to_json().encode("utf-8"))
        except FileExistsError:
            raise UsageError(
                f"case '{case.case_id}' already exists in {self.home}",
                hint="choose another case id, or use the existing case",
            ) from None
        fsync_dir(self.home)
        if not home_existed:
            fsync_dir(self.home.parent)
        return case

    def _no_such_case(self, case_id: str) -> UsageError:
        return UsageError(
            f"no case '{case_id}' in {self.home}", hint="open it with `osint-capture case open`"
        )

    def _existing_case_dir(self, case_id: str) -> Path:
        """The case directory, if the case exists (without parsing its record)."""
        case_dir = self.case_dir(case_id)
        if not (case_dir / CASE_FILE).is_file():
            raise self._no_such_case(case_id)
        return case_dir

    def get_case(self, case_id: str) -> Case:
        path = self.case_dir(case_id) / CASE_FILE
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise self._no_such_case(case_id) from None
        try:
            case = Case.from_json(data)
        except UsageError as exc:
            raise IntegrityError(f"case record {path} is damaged: {exc.message}") from None
        if case.case_id != case_id:
            raise IntegrityError(f"case record {path} names case '{case.case_id}', not '{case_id}'")
        return case

    def list_cases(self) -> list[Case]:
        if not self.home.is_dir():
            return []
        return [
            self.get_case(entry.name)
            for entry in sorted(self.home.iterdir())
            if is_case_id(entry.name) and (entry / CASE_FILE).is_file()
        ]

    @contextmanager
    def case_lock(self, case_id: str) -> Iterator[None]:
        """Hold the case lock (``<CASE_ID>/case.json.lock``) for the block.

        Closing a case and publishing an item into it both happen under it, so a capture
        cannot publish into a case that is being closed. Not reentrant: never take it
        twice in one thread. UsageError if another process keeps it for a minute.
        """
        self.get_case(case_id)  # fails with the usual message before any lock file is made
        lock = FileLock(self.case_dir(case_id) / CASE_LOCK_FILE, timeout=_LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise UsageError(
                f"case '{case_id}' is locked by another osint-capture process",
                hint="wait for it to finish and retry",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def close_case(self, case_id: str) -> Case:
        """Mark the case closed; closing a closed case is refused."""
        with self.case_lock(case_id):
            case = self.get_case(case_id)
            if case.status == "closed":
                raise UsageError(f"case '{case_id}' was already closed at {case.closed_at}")
            return self.mark_closed(case_id)

    def mark_closed(self, case_id: str) -> Case:
        """Write ``case.json`` as closed; the caller holds :meth:`case_lock`.

        A record already closed (by a ``case close`` interrupted before its custody entry)
        keeps its ``closed_at``.
        """
        case = self.get_case(case_id)
        if case.status == "closed":
            return case
        closed = replace(case, status="closed", closed_at=utc_now())
        atomic_write_bytes(self.case_dir(case_id) / CASE_FILE, closed.to_json().encode("utf-8"))
        return closed

    # -- items ---------------------------------------------------------------------------

    def list_items(self, case_id: str) -> list[str]:
        """Ids of complete items (published and signed), oldest first.

        Only a folder named as an item id, holding a manifest and its signature, is an
        item: anything else in ``items/`` (say a copy, ``<ITEM_ID>-copy/``) is not, and
        :meth:`stray_entries` names it.
        """
        items = self._existing_case_dir(case_id) / ITEMS_DIR
        return sorted(entry.name for entry in _entries(items) if _is_item(entry))

    def stray_entries(self, case_id: str) -> list[str]:
        """Names in ``items/`` that are neither items nor leftovers, sorted.

        Leftovers of interrupted captures and writes (``.staging-*``, ``.tmp-*``) are
        :meth:`leftovers`; everything else that is not an item (a copied or renamed item
        folder, a stray file or link) is a stray entry, to be reported, never used.
        """
        items = self._existing_case_dir(case_id) / ITEMS_DIR
        return sorted(
            entry.name
            for entry in _entries(items)
            if not _is_item(entry) and not entry.name.startswith((STAGING_PREFIX, TEMP_PREFIX))
        )

    def find_item(self, item_id: str) -> tuple[str, Path]:
        """The case holding ``item_id`` and the item's folder, searching every case.

        UsageError if no case holds it, and if more than one does (naming them): an item
        id names one capture, so which of two folders is meant is never guessed. Cases
        are found by folder (a case folder with ``case.json``), without reading their
        records, so one damaged case does not hide the items of the others.
        """
        check_item_id(item_id)
        hits = [
            (case_id, self.item_dir(case_id, item_id))
            for case_id in self._case_ids()
            if self.item_dir(case_id, item_id).is_dir()
        ]
        if not hits:
            raise UsageError(
                f"no item '{item_id}' in {self.home}",
                hint="`osint-capture case show CASE_ID` lists items",
            )
        if len(hits) > 1:
            raise UsageError(
                f"item '{item_id}' is ambiguous: cases {', '.join(c for c, _ in hits)} "
                "each hold a folder of that id",
                hint="an item id names one capture; verify each case folder "
                "(`python -m chain_of_custody verify CASE_DIR`) to tell which one is genuine",
            )
        return hits[0]

    def _case_ids(self) -> list[str]:
        """Ids of the case folders in the home (those with a ``case.json``), sorted."""
        return sorted(
            entry.name
            for entry in _entries(self.home)
            if is_case_id(entry.name) and (entry / CASE_FILE).is_file()
        )

    def new_item(self, case_id: str) -> ItemStaging:
        """Start a new item in an open case: a locked staging directory to write into."""
        case = self.get_case(case_id)
        if case.status != "open":
            raise UsageError(
                f"case '{case_id}' is closed; no new evidence can be added to it",
                hint="open a new case for further captures",
            )
        return create_staging(self.case_dir(case_id) / ITEMS_DIR)

    # -- leftovers of interrupted captures ----------------------------------------------

    def is_being_published(self, case_id: str, item_id: str) -> bool:
        """True while a live process still holds the item's staging lock (it is logging it)."""
        return is_being_published(self.case_dir(case_id) / ITEMS_DIR, item_id)

    def leftovers(self, case_id: str) -> list[Leftover]:
        """Staging directories, staging locks and temp files no live process owns."""
        # Not get_case(): cleaning up must work even if case.json itself is damaged.
        return find_leftovers(self._existing_case_dir(case_id))

    def remove_leftover(self, leftover: Leftover) -> None:
        """Delete one leftover, re-checking that no live process owns it; never an item."""
        remove_leftover(self.home, leftover)


def _entries(directory: Path) -> list[Path]:
    """The entries of ``directory``; none if it is missing or not a directory."""
    try:
        return list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_item(entry: Path) -> bool:
    """True for a complete item: a real folder named as an item id, manifest and signature
    in it (whether they verify is for ``verify`` to say)."""
    return (
        is_item_id(entry.name)
        and not entry.is_symlink()
        and entry.is_dir()
        and (entry / MANIFEST_NAME).is_file()
        and (entry / SIGNATURE_NAME).is_file()
    )
