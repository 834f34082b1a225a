"""``osint-capture verify TARGET``: check evidence, and log the examination in its case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chain_of_custody.errors import IntegrityError
from osint_capture.cli_common import console, evidence_store, signer_if_any

__all__ = ["verify"]


def verify(
    target: Annotated[
        str,
        typer.Argument(
            help="An item ID, a case ID, an item or case folder, a bundle (.zip) or a WACZ (.wacz)."
        ),
    ],
    trust: Annotated[
        list[str] | None,
        typer.Option("--trust", help="Accept only this signer fingerprint (repeatable)."),
    ] = None,
    trusted_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-key",
            help="Trust the public key in this PEM file, as `keys export` writes it (repeatable).",
        ),
    ] = None,
    tsa_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-root",
            help="RFC 3161 timestamps must chain to a certificate in this PEM file "
            "(repeatable); without it, to the root a reply carries (weaker).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    no_record: Annotated[
        bool,
        typer.Option("--no-record", help="Read only: do not log the examination."),
    ] = False,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="A bundle this case was exported in: the home's custody log must still "
            "hold the head it recorded.",
        ),
    ] = None,
) -> None:
    """Check evidence against its signed manifests and custody log, and log the check.

    Items and cases of the evidence home are logged as examined (a `verified` custody
    entry) when a signing key is at hand; folders elsewhere and bundles are only read.
    The same checks run without this tool: `python -m chain_of_custody verify TARGET`.
    """
    from cases.examine import verify_target
    from chain_of_custody.__main__ import trusted_keys, tsa_roots

    trusted = trusted_keys(trust, [str(p) for p in trusted_key or ()])
    roots = tsa_roots([str(p) for p in tsa_root or ()])
    signer, unsigned_because = (None, "--no-record") if no_record else signer_if_any()
    exam = verify_target(
        evidence_store(),
        target,
        trusted=trusted,
        signer=signer,
        against=against,
        tsa_roots=roots,
    )
    verdict = exam.verdict
    from cases.summary import item_summary

    summary = item_summary(exam.target.path) if exam.target.kind == "item" else None
    if as_json:
        out: dict[str, Any] = verdict.to_dict()
        if summary is not None:
            out["allow_private_network"] = summary.allow_private_network
        out["not_timestamped"] = list(_unstamped(exam.examined.report))
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        _print_checks(verdict, exam.target.path)
        if summary is not None:
            console.print(f"item {exam.target.path.name}: {summary.line()}")
        for item_id in _unstamped(exam.examined.report):
            # Not a failure: the item's time rests on the workstation's clock alone.
            console.print(f"not timestamped: {item_id} (no manifest.json.sig.tsr)")
    if exam.target.in_home and exam.entry is None and unsigned_because != "--no-record":
        typer.echo(
            f"note: the examination was not logged ({unsigned_because}); "
            "the outcome comes from the checks alone",
            err=True,
        )
    failed = verdict.first_failure
    if failed is not None:
        first = failed.detail.split("; ")[0]
        raise IntegrityError(
            f"{exam.target.kind} {target} is not what was captured and signed: step "
            f"{failed.step} ({failed.check}) fails for {failed.target}: {first}",
            hint="preserve the evidence as it is"
            + ("; the failed check is logged in the custody log" if exam.entry else ""),
        )
    if not as_json:
        console.print(f"VERIFIED: the {exam.target.kind} is exactly what was captured and signed.")


def _unstamped(report: Any) -> tuple[str, ...]:
    from chain_of_custody.report import not_timestamped
    from chain_of_custody.verify import CaseReport, ItemReport

    if isinstance(report, ItemReport | CaseReport):
        return not_timestamped(report)
    case = getattr(report, "case", None)  # a bundle's case, if it held one
    return not_timestamped(case) if isinstance(case, CaseReport) else ()


def _print_checks(verdict: Any, root: Path) -> None:
    table = Table("step", "target", "result", show_lines=False)
    table.columns[1].overflow = "fold"
    # Hashes and fingerprints are evidence: wrapped, never cut short with an ellipsis.
    table.add_column("detail", overflow="fold")
    prefix = str(root).rstrip("/") + "/"
    for check in verdict.checks:
        result = "skip" if check.skipped and check.ok else ("ok" if check.ok else "FAIL")
        shown = check.target
        if shown.rstrip("/") == str(root).rstrip("/"):
            shown = root.name
        elif shown.startswith(prefix):
            shown = shown[len(prefix) :]
        table.add_row(f"{check.step}. {check.check}", shown, result, check.detail)
    # Piped to a file or a report, the table gets room for its hashes.
    console.print(table, width=None if console.is_terminal else 160)
