"""``osint-capture capture-batch FILE --case CASE_ID``: many URLs on one browser."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain_of_custody.errors import UsageError
from osint_capture.cli_common import console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from osint_capture.batch import BatchEntry, BatchOutcome

__all__ = ["capture_batch"]

# markup off, as for stdout: URLs and reasons are data, never Rich markup.
_err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def capture_batch(
    file: Annotated[
        Path,
        typer.Argument(
            help="One URL per line; blank lines and # comments are ignored.", dir_okay=False
        ),
    ],
    case: Annotated[str, typer.Option("--case", help="The open case to capture into.")],
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            help="Captures at once in the browser (1-16), each in a fresh context.",
        ),
    ] = 2,
    host_delay: Annotated[
        float,
        typer.Option("--host-delay", help="Least time between capture starts on one host, s."),
    ] = 1.0,
    again: Annotated[
        bool, typer.Option("--again", help="Capture URLs the case already holds again.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line of the file as it ends.")
    ] = False,
    allow_private_network: Annotated[
        bool,
        typer.Option(
            "--allow-private-network",
            help="Lab and test use only: allow loopback/private targets. Recorded and flagged.",
        ),
    ] = False,
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Whole-capture limit per URL, seconds.")
    ] = 60.0,
    size_limit: Annotated[
        int, typer.Option("--size-limit", help="Total bytes kept per URL, MiB.")
    ] = 200,
    respect_robots: Annotated[
        bool, typer.Option("--respect-robots", help="Refuse when robots.txt disallows the URL.")
    ] = False,
    viewport: Annotated[str, typer.Option("--viewport", help="Browser window, WxH.")] = "1280x800",
    settle_timeout: Annotated[
        float,
        typer.Option("--settle-timeout", help="Longest wait for load and network quiet, seconds."),
    ] = 10.0,
    browser: Annotated[
        Path | None, typer.Option("--browser", help="Chromium binary to use.")
    ] = None,
    tsa: Annotated[
        list[str] | None,
        typer.Option(
            "--tsa",
            help="RFC 3161 Time-Stamping Authority URL (repeatable, tried in order; default "
            "$OSINT_CAPTURE_TSA). It learns a hash and your address. None: nothing is sent.",
        ),
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-cert",
            help="PEM certificates a TSA's reply must chain to (repeatable; default "
            "$OSINT_CAPTURE_TSA_CERTS, ':'-separated).",
        ),
    ] = None,
    tsa_timeout: Annotated[
        float, typer.Option("--tsa-timeout", help="Longest wait for each TSA, seconds.")
    ] = 10.0,
) -> None:
    """Capture every URL of FILE into a case, on one browser, as `capture` would each.

    Every rule, seal, custody entry and timestamp of `capture` applies to each URL. URLs
    the case already captured (its custody log's `captured` entries) are skipped unless
    --again; a line that is no URL is reported with its number and skipped. A browser
    that dies is relaunched, and the captures it had in flight are retried once.

    Exit 0 when every URL was captured (partial and skipped count); otherwise the code
    `capture` gives, the first of these any URL got: 1 (integrity: the custody log is
    damaged), 4 (failed), 3 (refused), 2 (a line that is no URL).
    """
    # Imported here, not above: the CLI module imports this one, and Playwright loads
    # only for a command that captures.
    from osint_capture.batch import BatchSettings, parse_batch, run_batch
    from osint_capture.cli import _parse_viewport, capture_setup
    from osint_capture.engine.model import CaptureOptions

    settings = BatchSettings(concurrency=concurrency, host_delay=host_delay, again=again)
    batch = parse_batch(_read_batch_file(file))
    if not batch.entries and not batch.bad:
        raise UsageError(f"{file} lists no URL", hint="one http(s) URL per line")
    width, height = _parse_viewport(viewport)
    options = CaptureOptions(
        time_limit=time_limit,
        size_limit=size_limit * 1024 * 1024,
        allow_private_network=allow_private_network,
        respect_robots=respect_robots,
        viewport_width=width,
        viewport_height=height,
        settle_timeout=settle_timeout,
    )
    import asyncio  # here, not at the top: `--help` need not import it

    store, tsa_config, signer, choice = capture_setup(case, browser, tsa, tsa_cert, tsa_timeout)
    total = len(batch.entries) + len(batch.bad) + len(batch.duplicates)
    shown = _Shown(total, as_json)
    shown.begin()
    try:
        result = asyncio.run(
            run_batch(
                store,
                case,
                batch,
                options,
                signer=signer,
                tsa=tsa_config,
                browser=choice,
                settings=settings,
                listener=shown,
            )
        )
    except KeyboardInterrupt:
        # Whatever finished is sealed and logged: say which before "interrupted".
        shown.end()
        shown.summary(interrupted=True)
        raise
    finally:
        shown.end()
    shown.summary()
    code = result.exit_code
    if allow_private_network and not as_json:
        console.print(
            "note: --allow-private-network was used (lab/test only); recorded in each manifest"
        )
    if code:
        typer.echo(f"osint-capture: error: {shown.failure_line()}", err=True)
        raise typer.Exit(code)


def _read_batch_file(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text", hint="one URL per line") from None
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None


class _Shown:
    """The batch as it is shown: a progress bar on a terminal (else a line per URL) on
    stderr, JSON lines or the summary table on stdout."""

    def __init__(self, total: int, as_json: bool) -> None:
        self._total = total
        self._json = as_json
        self._outcomes: list[BatchOutcome] = []
        self._running: list[str] = []
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def begin(self) -> None:
        if not _err.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("capturing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[current]}"),
            console=_err,
            transient=True,
        )
        self._task = self._progress.add_task("batch", total=self._total, rate="", current="")
        self._progress.start()

    def end(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.stop()

    def started(self, entry: BatchEntry, retry: bool) -> None:
        if entry.shown not in self._running:
            self._running.append(entry.shown)
        if retry:
            self._say(f"retrying line {entry.line} ({entry.shown}): the browser died; relaunched")
        self._refresh()

    def finished(self, outcome: BatchOutcome) -> None:
        self._outcomes.append(outcome)
        if outcome.url in self._running:
            self._running.remove(outcome.url)
        if self._json:
            import json

            sys.stdout.write(json.dumps(outcome.as_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        if outcome.outcome == "malformed":
            self._say(f"warning: line {outcome.line}: {outcome.reason}: {outcome.url!r}; skipped")
        else:
            item = f" item {outcome.item_id}" if outcome.item_id else ""
            why = f": {outcome.reason}" if outcome.reason else ""
            self._say(
                f"[{len(self._outcomes)}/{self._total}] {outcome.outcome} line {outcome.line} "
                f"{outcome.url}{item}{why}"
            )
        self._refresh()

    def _say(self, line: str) -> None:
        target = self._progress.console if self._progress is not None else _err
        target.print(line)

    def _refresh(self) -> None:
        if self._progress is None or self._task is None:
            return
        done = len(self._outcomes)
        minutes = (time.monotonic() - self._started) / 60
        rate = f"{done / minutes:.1f}/min" if minutes > 0 and done else ""
        self._progress.update(
            self._task, completed=done, rate=rate, current=" ".join(self._running[-4:])
        )

    def summary(self, interrupted: bool = False) -> None:
        counts = self._counts()
        line = f"{len(self._outcomes)} of {self._total} line(s) ended: " + ", ".join(
            f"{n} {kind}" for kind, n in counts.items()
        )
        if interrupted:
            line += "; interrupted before the rest"
        if self._json:
            _err.print(line)
            return
        table = Table()
        # Never cut short: an item ID or URL with an ellipsis cannot be looked up. IDs are
        # kept whole on one line (to copy); URLs and reasons fold.
        id_width = max((len(o.item_id) for o in self._outcomes if o.item_id), default=4)
        table.add_column("line", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("item", no_wrap=True, min_width=id_width)
        table.add_column("url", overflow="fold")
        table.add_column("reason", overflow="fold")
        for o in sorted(self._outcomes, key=lambda o: o.line):
            table.add_row(str(o.line), o.outcome, o.item_id or "", o.url, o.reason)
        console.print(table)
        console.print(line)

    def failure_line(self) -> str:
        not_done = ("refused", "failed", "malformed")
        parts = ", ".join(f"{n} {kind}" for kind, n in self._counts().items() if kind in not_done)
        return f"not every URL was captured: {parts}"

    def _counts(self) -> dict[str, int]:
        from osint_capture.batch import OUTCOMES

        counts = {k: sum(1 for o in self._outcomes if o.outcome == k) for k in OUTCOMES}
        return {k: n for k, n in counts.items() if n}
