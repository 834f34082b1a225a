"""Capture many URLs into one case on one browser: the library behind ``capture-batch``.

::

    batch = parse_batch(path.read_text("utf-8"))
    result = asyncio.run(run_batch(store, case_id, batch, options, signer=signer))

- :func:`parse_batch` reads one URL per line; blank lines and ``#`` comments are
  ignored, and a line that is no URL at all is kept as a :class:`BadLine` with its number
  (the rest of the file is unaffected). A URL listed twice is captured once.
- :func:`run_batch` opens one :class:`CaptureSession` and runs each URL through
  :func:`osint_capture.capture.capture_into_case` (every safeguard, the seal, the custody
  entry and the timestamp of a single capture), ``concurrency`` pages at a time, each in
  the session's fresh context, never starting two captures on one host less than
  ``host_delay`` seconds apart (:class:`HostScheduler`) while other hosts go on. A
  capture gives its place to the next page as soon as it is done with the browser: its
  sealing, logging and timestamp (disk work and a TSA's answer) go on beside the next
  page; at most twice ``concurrency`` captures are in flight.
- URLs the case's custody log already records as ``captured`` (the requested URL, as
  written) are skipped unless ``again``.
- A browser that dies mid-batch is relaunched by the session at the next capture; the
  captures that were in flight on it are retried once, and their outcome says so.
- Each URL ends in one :class:`BatchOutcome`, handed to the listener as it finishes;
  :func:`batch_exit_code` turns them into the command's exit code.

The library never prints or exits; disk work runs off the event loop.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError

from cases.actions import case_events
from cases.store import EvidenceStore
from cases.timestamping import TsaConfig
from chain_of_custody.errors import (
    EXIT_CAPTURE_FAILED,
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    BrowserCrashed,
    CaptureFailed,
    OsintCaptureError,
    UsageError,
    storage_error,
)
from chain_of_custody.signing import Signer
from osint_capture.capture import CaptureReport, capture_into_case
from osint_capture.engine.browser import BrowserChoice
from osint_capture.engine.model import CaptureOptions
from osint_capture.engine.session import CaptureSession, quiet_driver_leftovers
from osint_capture.lawful.rules import redact_url

__all__ = [
    "EXIT_PRIORITY",
    "OUTCOMES",
    "BadLine",
    "BatchEntry",
    "BatchFile",
    "BatchListener",
    "BatchOutcome",
    "BatchResult",
    "BatchSettings",
    "HostScheduler",
    "batch_exit_code",
    "captured_urls",
    "parse_batch",
    "run_batch",
]

# captured and partial are done (exit 0); skipped URLs were captured by an earlier run.
OUTCOMES = ("captured", "partial", "skipped", "refused", "failed", "malformed")

# Which code a batch exits with when URLs ended differently, most important first:
# 1, the evidence or its custody log is in doubt (nothing else matters until examined);
# 4, something public was not saved and trying again may still save it (time-critical);
# 3, the lawful-access rules refused it (trying again will not help);
# 2, a line of the file was no URL (a typo, fixed at leisure).
EXIT_PRIORITY = (EXIT_INTEGRITY, EXIT_CAPTURE_FAILED, EXIT_REFUSED, EXIT_USAGE)

_MAX_CONCURRENCY = 16
# Beyond a capture's own time limit (and its TSAs' bounds), how long it may take to seal
# before the batch stops waiting for it: only a capture stuck on a browser that stopped
# answering comes near it, and the batch must go on.
_ATTEMPT_GRACE = 60.0
_MAX_HOST_DELAY = 3600.0
# A URL has no whitespace: "#" after whitespace starts a comment, while "#" inside a URL
# is its fragment.
_TRAILING_COMMENT = re.compile(r"\s+#.*$")


# -- the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchEntry:
    """One URL of the file, and the line it is on (1-based)."""

    line: int
    url: str

    @property
    def host(self) -> str:
        """What the politeness delay is kept per: the host name, whatever the port."""
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def shown(self) -> str:
        """The URL as it may be printed: any user-info redacted."""
        return redact_url(self.url)


@dataclass(frozen=True)
class BadLine:
    """A line that is no URL: skipped, and reported with its number."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class BatchFile:
    """A parsed batch file: the URLs to capture, lines that were no URL, duplicates."""

    entries: tuple[BatchEntry, ...]
    bad: tuple[BadLine, ...] = ()
    # (line of the repeat, line first listed on)
    duplicates: tuple[tuple[BatchEntry, int], ...] = ()


def parse_batch(text: str) -> BatchFile:
    """One URL per line; blank lines and ``#`` comments ignored; bad lines kept aside."""
    entries: list[BatchEntry] = []
    bad: list[BadLine] = []
    duplicates: list[tuple[BatchEntry, int]] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _TRAILING_COMMENT.sub("", raw).strip()
        if not line or line.startswith("#"):
            continue
        reason = _malformed(line)
        if reason is not None:
            bad.append(BadLine(number, line, reason))
            continue
        entry = BatchEntry(number, line)
        if line in first_line:
            duplicates.append((entry, first_line[line]))
            continue
        first_line[line] = number
        entries.append(entry)
    return BatchFile(tuple(entries), tuple(bad), tuple(duplicates))


def _malformed(line: str) -> str | None:
    """Why ``line`` is no URL at all, or None. A URL of a scheme other than http(s) is a
    URL: the lawful-access rules refuse it, and that refusal is logged as for `capture`."""
    if any(ch.isspace() for ch in line):
        return "more than one word on the line (one URL per line)"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in line):
        return "a control character in the line"
    try:
        parts = urlsplit(line)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if not parts.scheme or "://" not in line:
        return "not a URL (give a full http(s):// address)"
    if not parts.hostname:
        return "the URL has no host"
    return None


def captured_urls(store: EvidenceStore, case_id: str) -> dict[str, str]:
    """Requested URL → item ID of every ``captured`` entry in the case's custody log
    (the latest item where a URL was captured more than once)."""
    found: dict[str, str] = {}
    for event in case_events(store, case_id):
        if event.get("action") != "captured":
            continue
        details = event.get("details")
        url = details.get("requested_url") if isinstance(details, dict) else None
        if isinstance(url, str) and isinstance(event.get("item_id"), str):
            found[url] = event["item_id"]
    return found


# -- outcomes --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOutcome:
    """How one line of the batch ended."""

    line: int
    url: str  # redacted of any user-info
    outcome: str  # one of OUTCOMES
    exit_code: int  # what `capture` would have exited with for this URL
    reason: str = ""
    item_id: str | None = None
    retried: bool = False  # the browser died during a first attempt
    report: CaptureReport | None = None

    @property
    def done(self) -> bool:
        return self.exit_code == EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "url": self.url,
            "outcome": self.outcome,
            "item_id": self.item_id,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "retried": self.retried,
            "capture": self.report.as_json() if self.report is not None else None,
        }


def batch_exit_code(outcomes: Iterable[BatchOutcome]) -> int:
    """0 when every URL was captured (partial and skipped count), else the code of
    :data:`EXIT_PRIORITY` ranked first among the outcomes'."""
    codes = {o.exit_code for o in outcomes} - {EXIT_OK}
    for code in EXIT_PRIORITY:
        if code in codes:
            return code
    return EXIT_CAPTURE_FAILED if codes else EXIT_OK


@dataclass(frozen=True)
class BatchResult:
    """Every outcome, in the order they finished, and how often the browser launched."""

    outcomes: tuple[BatchOutcome, ...]
    browser_launches: int = 0

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.outcomes)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


class BatchListener(Protocol):
    """Told as captures start and as each URL ends; the CLI shows progress with it.

    Called on the event loop: it must return quickly (print a line, move a bar).
    """

    def started(self, entry: BatchEntry, retry: bool) -> None:
        """A capture of ``entry`` begins (``retry``: the second attempt)."""

    def finished(self, outcome: BatchOutcome) -> None:
        """``outcome`` is final: its item, if any, is sealed and logged."""


class _Unheard:
    def started(self, entry: BatchEntry, retry: bool) -> None:
        pass

    def finished(self, outcome: BatchOutcome) -> None:
        pass


@dataclass(frozen=True)
class BatchSettings:
    """How the batch is run; checked as it is made."""

    concurrency: int = 2
    host_delay: float = 1.0
    again: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= _MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be between 1 and {_MAX_CONCURRENCY}")
        if not (math.isfinite(self.host_delay) and 0 <= self.host_delay <= _MAX_HOST_DELAY):
            raise UsageError(f"--host-delay must be between 0 and {_MAX_HOST_DELAY:g} seconds")


# -- scheduling ------------------------------------------------------------------------


class HostScheduler:
    """Which URL starts next, and when: the one whose host is free soonest (file order
    among equals), never two starts on one host less than ``host_delay`` apart.

    Pure: times are whatever clock the caller reads; nothing here waits.
    """

    def __init__(self, entries: Iterable[BatchEntry], host_delay: float) -> None:
        self._pending: list[BatchEntry] = list(entries)
        self._delay = host_delay
        self._free_at: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def take(self, now: float) -> tuple[BatchEntry, float] | None:
        """The next entry and the time it may start (``now`` or later), reserving that
        start on its host; None when nothing is pending."""
        if not self._pending:
            return None
        index = min(
            range(len(self._pending)),
            key=lambda i: (max(now, self._free_at.get(self._pending[i].host, now)), i),
        )
        entry = self._pending.pop(index)
        start = max(now, self._free_at.get(entry.host, now))
        self._free_at[entry.host] = start + self._delay
        return entry, start

    def retry(self, entry: BatchEntry) -> None:
        """Put ``entry`` back, ahead of everything not yet started."""
        self._pending.insert(0, entry)


# -- running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """One capture attempt: its report, or its error and whether the browser died."""

    report: CaptureReport | None = None
    error: OsintCaptureError | None = None
    browser_died: bool = False


# An attempt is handed the call that gives its page's place to the next URL.
_AttemptFn = Callable[[BatchEntry, Callable[[], None]], Awaitable[_Attempt]]


@dataclass
class _Clock:
    """The event loop's clock; tests pass their own."""

    now: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)


async def run_batch(
    store: EvidenceStore,
    case_id: str,
    batch: BatchFile,
    options: CaptureOptions,
    *,
    signer: Signer,
    tsa: TsaConfig | None = None,
    browser: BrowserChoice | None = None,
    settings: BatchSettings | None = None,
    listener: BatchListener | None = None,
) -> BatchResult:
    """Capture every entry of ``batch`` into case ``case_id``, as the module describes.

    Errors of one URL become its outcome; only errors before the first capture (an
    unknown case, a damaged custody log) are raised. Cancelled (Ctrl-C), it stops
    starting captures; those in flight end as leftovers, or finish sealing if they had
    begun to, as for a single capture.
    """
    quiet_driver_leftovers()
    settings = settings or BatchSettings()
    listener = listener or _Unheard()
    outcomes: list[BatchOutcome] = []

    def finish(outcome: BatchOutcome) -> None:
        outcomes.append(outcome)
        listener.finished(outcome)

    done = {} if settings.again else await asyncio.to_thread(captured_urls, store, case_id)
    for bad in batch.bad:
        finish(BatchOutcome(bad.line, bad.text, "malformed", EXIT_USAGE, reason=bad.reason))
    for entry, first in batch.duplicates:
        finish(_skipped(entry, f"listed already on line {first}"))
    todo: list[BatchEntry] = []
    for entry in batch.entries:
        if entry.url in done:
            item_id = done[entry.url]
            why = f"already captured in this case as item {item_id} (--again captures it again)"
            finish(_skipped(entry, why, item_id))
        else:
            todo.append(entry)
    if not todo:
        return BatchResult(tuple(outcomes))

    async with CaptureSession(browser) as session:

        async def attempt(entry: BatchEntry, browser_done: Callable[[], None]) -> _Attempt:
            return await _attempt_on(
                session, store, case_id, entry, options, signer, tsa, browser_done
            )

        await _run_all(todo, attempt, settings, listener, finish, _Clock())
        return BatchResult(tuple(outcomes), browser_launches=session.launches)


def _skipped(entry: BatchEntry, why: str, item_id: str | None = None) -> BatchOutcome:
    return BatchOutcome(entry.line, entry.shown, "skipped", EXIT_OK, reason=why, item_id=item_id)


async def _run_all(
    entries: list[BatchEntry],
    attempt: _AttemptFn,
    settings: BatchSettings,
    listener: BatchListener,
    finish: Callable[[BatchOutcome], None],
    clock: _Clock,
) -> None:
    """Workers taking entries from one scheduler until none is left: ``concurrency``
    pages in the browser at once, and at most twice as many captures in flight (a
    capture hands its page's place on when ``browser_done`` is called, or when it ends).
    """
    scheduler = HostScheduler(entries, settings.host_delay)
    first_errors: dict[BatchEntry, _Attempt] = {}
    pages = asyncio.Semaphore(settings.concurrency)

    async def worker() -> None:
        while True:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A capture that was sealing when cancelled runs to its end and returns;
                # nothing new may start after that.
                return
            async with _PagePlace(pages) as place:
                # Taken only with a place free: a start reserved on a host is kept.
                picked = scheduler.take(clock.now())
                if picked is None:
                    return  # a retry is put back by the worker whose capture failed, which takes it
                entry, start = picked
                wait = start - clock.now()
                if wait > 0:
                    await clock.sleep(wait)
                first = first_errors.get(entry)
                if first is not None:
                    retrying.add(entry)
                listener.started(entry, first is not None)
                result = await attempt(entry, place.give_up)
            if result.browser_died and first is None:
                first_errors[entry] = result
                scheduler.retry(entry)
                continue
            ended.add(entry)
            finish(_outcome(entry, result, first))

    ended: set[BatchEntry] = set()
    retrying: set[BatchEntry] = set()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(2 * settings.concurrency, len(entries))):
                group.create_task(worker())
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Interrupted (Ctrl-C) before a retry ended: its first attempt is its outcome,
        # so that what it failed with (and any partial item it kept) is still told.
        for entry, first in first_errors.items():
            if entry not in ended:
                finish(_outcome(entry, first, None, interrupted=entry in retrying))
        raise


class _PagePlace:
    """One of the batch's places for a page in the browser, held from taking an entry
    until the capture is done with the browser (:meth:`give_up`) or ends."""

    def __init__(self, places: asyncio.Semaphore) -> None:
        self._places = places
        self._held = False

    async def __aenter__(self) -> _PagePlace:
        await self._places.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.give_up()

    def give_up(self) -> None:
        if self._held:
            self._held = False
            self._places.release()


def _outcome(
    entry: BatchEntry, result: _Attempt, first: _Attempt | None, *, interrupted: bool | None = None
) -> BatchOutcome:
    """``interrupted``: the batch was interrupted before this entry's retry ended (True:
    the retry had begun, and ends as an ordinary leftover; False: it never began)."""
    retried_note = {
        None: "",
        True: "its retry was interrupted with the batch",
        False: "not retried: the batch was interrupted first",
    }[interrupted]
    if first is not None:
        assert first.error is not None
        retried_note = (
            f"retried once: the browser died during the first attempt ({first.error.message})"
        )
        kept = getattr(first.error, "item_id", None)
        if kept:
            retried_note += f"; its partial item {kept} is kept"
    report, error = result.report, result.error
    if report is not None:
        reasons = "; ".join(report.partial_reasons)
        reason = "; ".join(r for r in (reasons, retried_note) if r)
        kind = "partial" if report.status == "partial" else "captured"
        retried = first is not None
        return BatchOutcome(
            entry.line, entry.shown, kind, EXIT_OK, reason, report.item_id, retried, report
        )
    assert error is not None
    reason = "; ".join(r for r in (error.one_line(), retried_note) if r)
    kind = "refused" if error.exit_code == EXIT_REFUSED else "failed"
    return BatchOutcome(
        entry.line,
        entry.shown,
        kind,
        error.exit_code,
        reason,
        getattr(error, "item_id", None),
        first is not None or interrupted is True,
    )


async def _attempt_on(
    session: CaptureSession,
    store: EvidenceStore,
    case_id: str,
    entry: BatchEntry,
    options: CaptureOptions,
    signer: Signer,
    tsa: TsaConfig | None,
    browser_done: Callable[[], None] | None = None,
) -> _Attempt:
    """One capture on the shared session; an error is returned, never raised, with
    whether the browser it ran on died (then it is worth one more attempt)."""
    connected, launches = session.browser_connected, session.launches
    # Whether the capture's browser steps ended with a result (capture_into_case calls
    # browser_done then): a failure after that (sealing, stamping) is not the browser's,
    # even if a capture beside it has relaunched the browser meanwhile.
    engine_returned = False

    def done_with_browser() -> None:
        nonlocal engine_returned
        engine_returned = True
        if browser_done is not None:
            browser_done()

    bound = _attempt_bound(options, tsa)
    began = asyncio.get_running_loop().time()
    try:
        # In this task, not another (wait_for's): cancelled at the bound, a capture that
        # is sealing still runs to its end and returns its report, as on Ctrl-C.
        async with asyncio.timeout(bound):
            report = await capture_into_case(
                session,
                store,
                case_id,
                entry.url,
                options,
                signer=signer,
                tsa=tsa,
                browser_done=done_with_browser,
            )
        return _Attempt(report=report)
    except TimeoutError as exc:
        error: OsintCaptureError = CaptureFailed(
            f"the capture did not end within {bound:.0f} s, its time limit and "
            f"{_ATTEMPT_GRACE:.0f} s more: the browser stopped answering"
            if asyncio.get_running_loop().time() - began >= bound
            else f"unexpected TimeoutError: {_first_line(exc)}"
        )
    except OsintCaptureError as exc:
        error = exc
    except OSError as exc:  # the disk: one URL's outcome, as `capture` reports it
        error = storage_error(exc)
    except PlaywrightError as exc:  # the browser went away under a call
        error = CaptureFailed(f"the browser failed: {_first_line(exc)}")
    except Exception as exc:  # a bug met by one URL must not cost the others theirs
        error = CaptureFailed(f"unexpected {type(exc).__name__}: {_first_line(exc)}")
    # The launch this capture ran on: the one running as it began, else the one it (or a
    # capture beside it) started. That browser is gone if it died, or was replaced.
    ran_on = launches if connected else launches + 1
    launched = connected or session.launches > launches
    gone = launched and (not session.browser_connected or session.launches > ran_on)
    died = _browser_died(engine_returned, gone, error)
    # Only failures: a refusal stands (retrying it would log a second refusal).
    return _Attempt(error=error, browser_died=died and isinstance(error, CaptureFailed))


def _browser_died(engine_returned: bool, gone_now: bool, error: OsintCaptureError) -> bool:
    """Whether a failed attempt failed because its browser died (worth one more).

    Before the browser steps ended, a browser gone now is the cause. Once they ended
    with a result, only a crash that result reported is (a browser killed mid-page,
    raised as BrowserCrashed once its partial item is sealed), and only if the browser
    is gone: a later failure of another kind (a timeout while stamping) is not the
    browser's, even if a capture beside it relaunched the browser meanwhile.
    """
    if not engine_returned:
        return gone_now
    return gone_now and isinstance(error, BrowserCrashed)


def _attempt_bound(options: CaptureOptions, tsa: TsaConfig | None) -> float:
    """The longest one attempt is waited for: its time limit, its TSAs' bounds, grace."""
    stamping = tsa.timeout_s * len(tsa.urls) if tsa is not None else 0.0
    return options.time_limit + stamping + _ATTEMPT_GRACE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
