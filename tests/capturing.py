"""Many captures at once on one browser, through the library's capture pipeline.

For test modules that need a capture of each of many fixture pages: every capture runs
:func:`~osint_capture.capture.capture_into_case` (rules, engine, WARC, seal, custody log)
as the command line does, several at a time on one :class:`CaptureSession` as batch
capture runs them, so the slow pages (those that mostly wait) overlap the quick ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from cases import actions
from cases.store import EvidenceStore
from chain_of_custody.errors import OsintCaptureError
from chain_of_custody.item import MANIFEST_NAME, WARC_NAME
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import verify_item
from osint_capture.capture import CaptureReport, capture_into_case
from osint_capture.engine.model import CaptureOptions
from osint_capture.engine.session import CaptureSession
from tests.warc_reading import Record, read_warc

__all__ = ["Batch", "Outcome", "capture_all"]

_AT_ONCE = 4


@dataclass
class Outcome:
    """What one capture ended in: a report, or the error it raised."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)
    report: CaptureReport | None = None
    error: OsintCaptureError | None = None
    seconds: float = 0.0
    # A page that keeps a core busy (a script that never yields, a renderer printing a
    # page half a kilometre long): such captures run one at a time, or on 2 cores they
    # starve each other's time limits.
    burns_cpu: bool = False

    @property
    def item(self) -> Path:
        assert self.report is not None, f"no item: {self.error!r}"
        return self.report.item_dir

    def manifest(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads((self.item / MANIFEST_NAME).read_bytes())
        return value

    def provenance(self) -> dict[str, Any]:
        value: dict[str, Any] = self.manifest()["provenance"]
        return value

    def in_headless_shell(self) -> bool:
        """Whether the capture ran in Chromium's headless shell (what Playwright launches
        headless from its own download, or Debian's ``chromium-headless-shell``) rather
        than the whole browser run headless: the shell has no PDF viewer and no error
        pages of its own, so a PDF becomes a download and an empty 404 a blank page."""
        executable = str(self.provenance()["browser"]["executable"])
        name = Path(executable).name.replace("_", "-")  # headless_shell: older Playwright
        return executable == "playwright-bundled" or name.endswith("headless-shell")

    def steps(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.provenance()["steps"]}

    def records(self) -> list[Record]:
        return read_warc(self.item / WARC_NAME)

    def assert_sealed(self) -> None:
        """An item was made, it verifies, and the custody log holds it."""
        assert self.error is None, self.error
        log = self.item.parent.parent / "custody.jsonl"
        result = verify_item(self.item, custody_log=log)
        assert result.ok, [(s.number, s.detail) for s in result.steps if not s.ok]


@dataclass
class Batch:
    """The captures of one case, and the case's custody log."""

    store: EvidenceStore
    case_id: str
    outcomes: dict[str, Outcome]

    def __getitem__(self, name: str) -> Outcome:
        return self.outcomes[name]

    def custody(self) -> list[dict[str, Any]]:
        log = self.store.case_dir(self.case_id) / "custody.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def refusals_of(self, url: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.custody()
            if e["action"] == "capture-refused" and e["details"].get("url") == url
        ]


def capture_all(
    home: Path, case_id: str, outcomes: dict[str, Outcome], *, at_once: int = _AT_ONCE
) -> Batch:
    """Open ``case_id`` in a new evidence home and make every capture, filling each outcome.

    Outcomes are started in the order given: put the slowest first. Those that burn a
    core run one after another, beside the others.
    """
    store = EvidenceStore(home)
    signer = Signer(operator="Det. Sam Rivera", private_key=generate_private_key())
    actions.open_case(
        store,
        case_id,
        title="Capture batch",
        category="online-crime",
        investigator="Det. Alex Moreno",
        authority="Lt. J. Park, approval 26-114",
        signer=signer,
    )

    async def run() -> None:
        gate = asyncio.Semaphore(at_once)
        burner = asyncio.Semaphore(1)
        async with CaptureSession() as session:

            async def one(outcome: Outcome) -> None:
                options = CaptureOptions(allow_private_network=True, **outcome.options)
                # The burner's turn first: waiting for it holds none of the at_once slots.
                async with burner if outcome.burns_cpu else contextlib.nullcontext(), gate:
                    started = time.monotonic()
                    try:
                        outcome.report = await capture_into_case(
                            session, store, case_id, outcome.url, options, signer=signer
                        )
                    except OsintCaptureError as exc:
                        outcome.error = exc
                    outcome.seconds = time.monotonic() - started

            await asyncio.gather(*(one(o) for o in outcomes.values()))

    # Four captures at once load both cores: with the suite's two workers, two such
    # batches at the same time starve each other's time limits. One at a time, then.
    with FileLock(Path(tempfile.gettempdir()) / "osint-capture-tests-batch.lock"):
        asyncio.run(run())
    # How long each took, for whoever makes a module faster (pytest -s shows it).
    print({name: round(o.seconds, 1) for name, o in outcomes.items()})
    return Batch(store, case_id, outcomes)
