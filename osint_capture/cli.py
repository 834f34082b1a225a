"""The ``osint-capture`` command: parse, call the library, print, map errors to exit codes.

Exit codes: 0 done (a partial capture is done, and says so) · 1 integrity failure ·
2 usage error · 3 refused by the lawful-access rules · 4 capture failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.table import Table

from cases.case import CATEGORIES, CATEGORY_DESCRIPTIONS
from chain_of_custody.errors import (
    EXIT_CAPTURE_FAILED,
    EXIT_USAGE,
    OsintCaptureError,
    SigningKeyError,
    UsageError,
    storage_error,
)
from osint_capture.cli_batch import capture_batch
from osint_capture.cli_common import (
    CliState,
    console,
    evidence_store,
    operator_signer,
    tsa_from_options,
)
from osint_capture.cli_custody import custody_app
from osint_capture.cli_export import export
from osint_capture.cli_replay import replay
from osint_capture.cli_verify import verify

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from cases.store import EvidenceStore
    from cases.timestamping import TsaConfig
    from chain_of_custody.signing import Signer
    from osint_capture.capture import CaptureReport
    from osint_capture.engine.browser import BrowserChoice
    from osint_capture.engine.session import CaptureSession

__all__ = ["app", "main"]

app = typer.Typer(
    name="osint-capture",
    help="Capture public posts as court-ready evidence: WARC, screenshot, PDF, signed manifest.",
    no_args_is_help=True,
    add_completion=False,
    # Passphrases and keys live in local variables: never print them in a traceback.
    pretty_exceptions_show_locals=False,
)
case_app = typer.Typer(help="Open, list and show cases.", no_args_is_help=True)
keys_app = typer.Typer(help="The operator's signing key.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(keys_app, name="keys")
app.add_typer(custody_app, name="custody")
app.command()(verify)
app.command()(export)
app.command()(replay)
app.command("capture-batch")(capture_batch)


@app.callback()
def _root(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Evidence home (default: $OSINT_CAPTURE_HOME, else ./evidence).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    CliState.home = home


# -- cases -------------------------------------------------------------------------


@case_app.command("open")
def case_open(
    case_id: Annotated[str, typer.Argument(help="Case number, e.g. 2026-000123.")],
    title: Annotated[str, typer.Option("--title", help="What the case is about.")],
    category: Annotated[
        str,
        typer.Option("--category", help="Investigative purpose: " + ", ".join(CATEGORIES) + "."),
    ],
    investigator: Annotated[str, typer.Option("--investigator", help="Investigator in charge.")],
    authority: Annotated[
        str, typer.Option("--authority", help="Who approved this investigative use.")
    ],
) -> None:
    """Open a case. Captures can only go into an open case."""
    from cases import actions

    signer = operator_signer()
    store = evidence_store()
    case = actions.open_case(
        store,
        case_id,
        title=title,
        category=category,
        investigator=investigator,
        authority=authority,
        signer=signer,
    )
    console.print(
        f"Opened case {case.case_id} ({CATEGORY_DESCRIPTIONS[case.category]}) in "
        f"{store.case_dir(case.case_id)}"
    )


@case_app.command("list")
def case_list() -> None:
    """List the cases in the evidence home."""
    store = evidence_store()
    cases = store.list_cases()
    if not cases:
        console.print(f"No cases in {store.home}.")
        return
    table = Table("case", "status", "category", "items", "title")
    for case in cases:
        table.add_row(
            case.case_id,
            case.status,
            case.category,
            str(len(store.list_items(case.case_id))),
            case.title,
        )
    console.print(table)


@case_app.command("show")
def case_show(case_id: str) -> None:
    """Show a case, its items and any leftovers of interrupted captures."""
    store = evidence_store()
    case = store.get_case(case_id)
    for key, value in case.to_dict().items():
        console.print(f"{key:>13}: {value}")
    items = store.list_items(case_id)
    console.print(f"{'items':>13}: {len(items)}")
    from cases.summary import item_summary
    from cases.timestamping import is_awaiting, stamp_requested

    awaiting = unstamped = 0
    for item_id in items:
        item_dir = store.item_dir(case_id, item_id)
        summary = item_summary(item_dir)
        flag = ""
        if is_awaiting(item_dir):
            # Asked for and not obtained, or never asked for (no TSA configured).
            if stamp_requested(item_dir):
                flag, awaiting = "  [awaiting a timestamp]", awaiting + 1
            else:
                flag, unstamped = "  [not timestamped]", unstamped + 1
        console.print(f"{'':>13}  {item_id}  {summary.line()}{flag}")
    if awaiting or unstamped:
        console.print(
            f"{'timestamps':>13}: {awaiting} item(s) awaiting a timestamp, {unstamped} not "
            f"timestamped (`osint-capture timestamp {case_id} --tsa URL --tsa-cert PEM` "
            "stamps them all)"
        )
    for name in store.stray_entries(case_id):
        typer.echo(f"warning: stray entry in items/: {name} (not an item)", err=True)
    _report_leftovers(store, case_id)


@case_app.command("close")
def case_close(case_id: str) -> None:
    """Close a case: it keeps its evidence and accepts no new captures."""
    from cases import actions

    signer = operator_signer()
    case = actions.close_case(evidence_store(), case_id, signer=signer)
    console.print(f"Closed case {case.case_id}.")


@case_app.command("clean")
def case_clean(case_id: str) -> None:
    """Remove leftovers of interrupted captures (never a complete item), and log it."""
    from cases import actions

    signer = operator_signer()
    removed = actions.clean_case(evidence_store(), case_id, signer=signer)
    for leftover in removed:
        console.print(f"removed {leftover.kind} leftover {leftover.path}")
    if not removed:
        console.print("No leftovers.")


def _report_leftovers(store: EvidenceStore, case_id: str) -> None:
    from cases import actions

    for item_id in actions.unlogged_items(store, case_id):
        typer.echo(
            f"warning: item {item_id} has no 'captured' custody entry (interrupted after "
            f"publishing). Record it with `osint-capture custody repair {case_id}`.",
            err=True,
        )
    leftovers = store.leftovers(case_id)
    for leftover in leftovers:
        typer.echo(
            f"warning: leftover of an interrupted capture: {leftover.path} "
            f"({leftover.size_bytes} bytes); it is not evidence. "
            f"Remove it with `osint-capture case clean {case_id}`.",
            err=True,
        )


# -- capture -----------------------------------------------------------------------


_TSA_OPTION = typer.Option(
    "--tsa",
    help="RFC 3161 Time-Stamping Authority URL (repeatable, tried in order; default "
    "$OSINT_CAPTURE_TSA). It learns a hash and your address. None: nothing is sent.",
)
_TSA_CERT_OPTION = typer.Option(
    "--tsa-cert",
    help="PEM certificates a TSA's reply must chain to (repeatable; default "
    "$OSINT_CAPTURE_TSA_CERTS, ':'-separated).",
)
_TSA_TIMEOUT_OPTION = typer.Option("--tsa-timeout", help="Longest wait for each TSA, seconds.")


def capture_setup(
    case: str,
    browser: Path | None,
    tsa: list[str] | None,
    tsa_cert: list[Path] | None,
    tsa_timeout: float,
    *,
    report_leftovers: bool = True,
) -> tuple[EvidenceStore, TsaConfig | None, Signer, BrowserChoice | None]:
    """What `capture` and `capture-batch` check before any browser starts, in this
    order: the case, the TSA options, the signing key, the browser named (if any); then
    leftovers are reported, unless ``report_leftovers`` is off and the caller reports
    them itself (`capture` does, while the driver starts)."""
    from osint_capture.engine.browser import explicit_browser

    store = evidence_store()
    store.get_case(case)  # a missing case is a usage error before anything else
    tsa_config = tsa_from_options(tsa, tsa_cert, tsa_timeout)
    signer = operator_signer()  # no key: stop before the browser starts
    # A browser named is checked now; otherwise the capture's session finds one with
    # the Playwright driver it starts anyway (asking a driver of its own costs ~0.8 s).
    choice = explicit_browser(browser)
    if report_leftovers:
        _report_leftovers(store, case)
    return store, tsa_config, signer, choice


def _parse_viewport(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise UsageError(f"--viewport must look like 1280x800, not {text!r}") from None


@app.command()
def capture(
    url: Annotated[str, typer.Argument(help="The public post's address (http or https).")],
    case: Annotated[str, typer.Option("--case", help="The open case to capture into.")],
    allow_private_network: Annotated[
        bool,
        typer.Option(
            "--allow-private-network",
            help="Lab and test use only: allow loopback/private targets. Recorded and flagged.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Whole-capture limit, seconds.")
    ] = 60.0,
    size_limit: Annotated[int, typer.Option("--size-limit", help="Total bytes kept, MiB.")] = 200,
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
    tsa: Annotated[list[str] | None, _TSA_OPTION] = None,
    tsa_cert: Annotated[list[Path] | None, _TSA_CERT_OPTION] = None,
    tsa_timeout: Annotated[float, _TSA_TIMEOUT_OPTION] = 10.0,
) -> None:
    """Capture a public post into a case."""
    from osint_capture.engine.model import CaptureOptions
    from osint_capture.lawful.rules import refused_on_sight

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
    # Leftovers are reported in prepare: reading the whole custody log (longer as the
    # case grows) need not hold up the driver's start.
    store, tsa_config, signer, choice = capture_setup(
        case, browser, tsa, tsa_cert, tsa_timeout, report_leftovers=False
    )

    def prepare() -> Callable[[CaptureSession], Awaitable[CaptureReport]]:
        _report_leftovers(store, case)
        # Imported here: in run_on_session's thread, while Playwright's driver starts (or,
        # for a URL refused on sight, before anything of Playwright is imported at all).
        from osint_capture.capture import prepare_capture

        return prepare_capture(store, case, url, options, signer=signer, tsa=tsa_config)

    if refused_on_sight(url, allow_private_network=allow_private_network):
        # Refused on its face (a literal non-public address or localhost name, a scheme,
        # credentials): checked and logged here, with no Playwright imported and no
        # driver started for it. A Ctrl-C meanwhile may leave it unlogged, as it may any
        # command's entry; the log stays whole (its appends are atomic).
        prepare()  # raises Refused; were it not to, the capture goes on below as ever
    from osint_capture.engine.session import run_on_session

    report = run_on_session(choice, prepare)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
        return
    console.print(f"Captured {report.final_url} → item {report.item_id} [{report.status}]")
    console.print(f"  title:      {report.title}")
    console.print(f"  item:       {report.item_dir}")
    console.print(f"  manifest:   {report.manifest} (signed: {report.signature.name})")
    console.print(f"  WARC:       {report.warc} ({report.resources} responses)")
    if report.screenshot:
        console.print(f"  screenshot: {report.screenshot}")
    if allow_private_network:
        console.print(
            "  note: --allow-private-network was used (lab/test only); recorded in the manifest"
        )
    for reason in report.partial_reasons:
        console.print(f"  partial:    {reason}")
    for directive in report.robots_directives:
        console.print(f"  robots:     the page says {directive} (recorded in the manifest)")
    stamp = report.timestamp
    if stamp.state == "awaiting a timestamp":
        console.print(f"  timestamp:  awaiting a timestamp ({stamp.detail})")
        console.print(f"              later: osint-capture timestamp {case} --tsa URL ...")
    else:
        console.print(f"  timestamp:  {stamp.state} ({stamp.detail})")


# -- timestamps --------------------------------------------------------------------


@app.command()
def timestamp(
    case_id: Annotated[str, typer.Argument(help="The case whose items to stamp.")],
    tsa: Annotated[list[str] | None, _TSA_OPTION] = None,
    tsa_cert: Annotated[list[Path] | None, _TSA_CERT_OPTION] = None,
    tsa_timeout: Annotated[float, _TSA_TIMEOUT_OPTION] = 10.0,
) -> None:
    """Stamp every item still awaiting an RFC 3161 timestamp, then the custody log's head.

    Exit 4 when any stamp could not be obtained (each is named); what was stamped stays.
    """
    from cases.timestamping import stamp_awaiting
    from chain_of_custody.errors import TimestampFailed

    store = evidence_store()
    store.get_case(case_id)
    config = tsa_from_options(tsa, tsa_cert, tsa_timeout)
    if config is None:
        raise UsageError(
            "no TSA configured: nothing is sent anywhere unless you choose a TSA",
            hint="give --tsa URL and --tsa-cert PEM, or set OSINT_CAPTURE_TSA and "
            "OSINT_CAPTURE_TSA_CERTS",
        )
    signer = operator_signer()
    done = stamp_awaiting(store, case_id, config, signer=signer)
    for item in done.stamped:
        stamp = item.obtained.stamp
        console.print(
            f"stamped item {item.item_id}: genTime {stamp.gen_time_text} from "
            f"{item.obtained.url} ({item.path.name})"
        )
    if done.head is not None:
        stamp = done.head.obtained.stamp
        console.print(
            f"stamped custody head {done.head.seq}: genTime {stamp.gen_time_text} "
            f"({done.head.path})"
        )
    if not done.stamped and not done.failed:
        console.print("No item was awaiting a timestamp.")
    problems = [f"item {item_id}: {why}" for item_id, why in done.failed]
    if done.head_error is not None:
        problems.append(f"custody head: {done.head_error}")
    if problems:
        raise TimestampFailed(
            f"{len(problems)} stamp(s) not obtained: " + "; ".join(problems),
            hint="nothing was stored for those; run the command again when a TSA answers",
        )


# -- keys --------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(
    operator: Annotated[str, typer.Option("--operator", help="Your name as the signer.")],
) -> None:
    """Create the ECDSA P-384 signing key (encrypted with a passphrase)."""
    from cases.store import resolve_home
    from osint_capture import keys

    home = resolve_home(CliState.home)
    keys.check_key_location(home)  # before asking for a passphrase
    passphrase = keys.passphrase_from_env()
    if passphrase is None:
        if not sys.stdin.isatty():
            raise SigningKeyError("no passphrase given", hint="set OSINT_CAPTURE_PASSPHRASE")
        passphrase = typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    info = keys.init_key(operator, passphrase, evidence_home=home)
    console.print(f"Created signing key for {info.operator}")
    console.print(f"  fingerprint: {info.fingerprint}")
    console.print(f"  stored in:   {info.path}")


@keys_app.command("show")
def keys_show() -> None:
    """Print the operator and the key's fingerprint."""
    from osint_capture import keys

    info = keys.key_info()
    console.print(f"operator:    {info.operator}")
    console.print(f"fingerprint: {info.fingerprint}")
    console.print(f"created:     {info.created}")
    console.print(f"key file:    {info.path}")


@keys_app.command("export")
def keys_export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the public key (PEM).")],
) -> None:
    """Write the public key (SubjectPublicKeyInfo PEM) for verifiers."""
    from osint_capture import keys

    path = keys.export_public_key(out)
    console.print(f"Public key written to {path}")


# -- custody -----------------------------------------------------------------------


# -- verify ------------------------------------------------------------------------


# -- doctor and demo -----------------------------------------------------------------


@app.command()
def doctor(
    browser: Annotated[Path | None, typer.Option("--browser", help="Chromium binary.")] = None,
) -> None:
    """Report the browser found, its version, and anything missing."""
    from osint_capture.doctor import run_doctor

    problems = run_doctor(browser, console)
    if problems:
        raise typer.Exit(EXIT_USAGE)


@app.command()
def demo() -> None:
    """Start the bundled sample post site on 127.0.0.1 and capture its post into a demo case."""
    from osint_capture.demo.run import run_demo

    run_demo(CliState.home, console)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"osint-capture: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """Entry point: the one place errors become messages and exit codes."""
    try:
        _run()
    except SystemExit as leaving:
        _exit_without_teardown(leaving.code)


def _exit_without_teardown(code: str | int | None) -> NoReturn:
    """Exit as ``sys.exit(code)`` does, less the interpreter's teardown: freeing the ~580
    modules a capture has loaded takes ~0.25 s (docs/PERFORMANCE.md) and nothing needs it.

    Every file evidence depends on is written, fsynced and closed before this; exit
    handlers still run and output is flushed. While another thread still runs, the
    interpreter's own exit (which waits for it) is taken instead.
    """
    import atexit
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # as the interpreter does with a message
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # what the interpreter exits with when it cannot flush
    os._exit(status)


def _run() -> NoReturn:
    from osint_capture import keys

    # Before anything can start a child process (the browser, its driver, timedatectl).
    keys.take_secrets_from_environment()
    try:
        code = app(standalone_mode=False, prog_name="osint-capture")
    except OsintCaptureError as exc:
        _fail(exc.one_line(), exc.exit_code)
    except typer.Abort:
        _fail("aborted", EXIT_USAGE)
    except typer.TyperException as exc:  # Typer's own usage errors (vendored Click)
        message = exc.format_message().replace("\n", " ").strip()
        if not message:  # no arguments at all: the help was printed
            sys.exit(EXIT_USAGE)
        _fail(message, EXIT_USAGE)
    except KeyboardInterrupt:
        _fail("interrupted; nothing incomplete was published as evidence", EXIT_CAPTURE_FAILED)
    except OSError as exc:  # the disk: full, read-only, no permission
        error = storage_error(exc)
        _fail(error.one_line(), error.exit_code)
    except Exception as exc:  # a bug: one line, never a traceback (set OSINT_CAPTURE_DEBUG=1)
        if os.environ.get("OSINT_CAPTURE_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_CAPTURE_FAILED)
    if code == 130:  # Ctrl-C, caught inside Typer
        _fail("interrupted; nothing incomplete was published as evidence", EXIT_CAPTURE_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
