"""``osint-capture custody …``: an item's timeline, transfers, notes, repair, the log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from chain_of_custody.errors import UsageError
from osint_capture.cli_common import console, evidence_store, operator_signer

if TYPE_CHECKING:
    from cases.actions import LoggedEvent

__all__ = ["custody_app"]

custody_app = typer.Typer(help="The chain-of-custody log of an item.", no_args_is_help=True)


@custody_app.command("show")
def custody_show(item_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print an item's custody timeline."""
    from cases import actions

    _, events = actions.item_events(evidence_store(), item_id)
    if as_json:
        typer.echo(json.dumps(events, ensure_ascii=False))
        return
    table = Table("seq", "time (UTC)", "actor", "action", "details")
    for event in events:
        table.add_row(
            str(event["seq"]),
            event["time"],
            event["actor"],
            event["action"],
            json.dumps(event.get("details", {}), ensure_ascii=False),
        )
    console.print(table)


def _print_logged(logged: LoggedEvent) -> None:
    entry = logged.entry
    console.print(
        f"Logged {entry['action']} #{entry['seq']} for item {logged.item_id} "
        f"in case {logged.case_id}."
    )


@custody_app.command("transfer")
def custody_transfer(
    item_id: str,
    to: Annotated[str, typer.Option("--to", help="Who receives the item.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it changes hands.")],
) -> None:
    """Record that an item passed to someone else."""
    from cases import actions

    signer = operator_signer()
    _print_logged(
        actions.transfer_item(evidence_store(), item_id, to=to, reason=reason, signer=signer)
    )


@custody_app.command("note")
def custody_note(
    item_id: str, text: Annotated[str, typer.Option("--text", help="The note.")]
) -> None:
    """Add a note to an item's custody log."""
    from cases import actions

    signer = operator_signer()
    _print_logged(actions.note_item(evidence_store(), item_id, text=text, signer=signer))


@custody_app.command("repair")
def custody_repair(
    case_id: str,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="Also log items whose manifest this key signed (fingerprint; repeatable).",
        ),
    ] = None,
) -> None:
    """Repair a case's custody log after a crash.

    Cuts a torn last line off (recording what it removed) and logs the capture of any
    item an interruption left without its 'captured' entry, if it verifies and its
    manifest is signed by a key that opened the case or logged a capture in it (or one
    given with --trust). It names and refuses any other.
    """
    from cases import actions
    from chain_of_custody.signing import normalize_fingerprint

    trusted = []
    for text in trust or ():
        try:
            trusted.append(normalize_fingerprint(text))
        except ValueError as exc:
            raise UsageError(f"--trust: {exc}") from None
    signer = operator_signer()
    outcome = actions.repair_case(evidence_store(), case_id, signer=signer, trusted=trusted)
    entry = outcome.log_entry
    if entry is not None:
        console.print(
            f"Repaired: removed {entry['details']['removed_size']} bytes; "
            f"logged as entry #{entry['seq']}."
        )
    for item_id in outcome.recovered:
        console.print(f"Logged the capture of item {item_id}, which an interruption left unlogged.")
    if outcome.refused:
        raise outcome.refusal_error()
    if entry is None and not outcome.recovered:
        console.print("The custody log needed no repair.")


@custody_app.command("log")
def custody_log(case_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print a whole case's custody log."""
    from cases import actions

    events = actions.case_events(evidence_store(), case_id)
    if as_json:
        typer.echo(json.dumps(events, ensure_ascii=False))
        return
    for event in events:
        console.print(
            f"#{event['seq']} {event['time']} {event['actor']}: {event['action']} "
            f"{event.get('item_id') or ''}"
        )
