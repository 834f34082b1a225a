"""``osint-capture export CASE_ID --out FILE.zip --recipient NAME``: a bundle for a prosecutor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osint_capture.cli_common import console, evidence_store, operator_signer

__all__ = ["export"]


def export(
    case_id: Annotated[str, typer.Argument(help="The case to export (open or closed).")],
    out: Annotated[Path, typer.Option("--out", help="The bundle to write (FILE.zip).")],
    recipient: Annotated[
        str, typer.Option("--recipient", help="Who receives the bundle (logged).")
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is released (logged).")
    ] = None,
    items: Annotated[
        list[str] | None,
        typer.Option(
            "--items", help="Release only these item IDs: --items A B, or repeated (default: all)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file already at --out.")
    ] = False,
    browser: Annotated[
        Path | None, typer.Option("--browser", help="Chromium binary that prints report.pdf.")
    ] = None,
    more_items: Annotated[
        list[str] | None,
        typer.Argument(help="More item IDs after --items ID (--items A B C).", show_default=False),
    ] = None,
) -> None:
    """Write one .zip a prosecutor, the defence and the court can check and read.

    Every selected item is verified first; the release is logged as an `exported`
    custody entry (recipient, reason, items, bundle name) that the bundle itself holds.
    """
    from cases.export import export_case
    from chain_of_custody.errors import UsageError
    from osint_capture.engine.browser import find_browser
    from osint_capture.report import build_renderer

    if more_items and not items:
        raise UsageError(f"unexpected argument {more_items[0]!r}", hint="item IDs follow --items")
    selected = _split([*(items or ()), *(more_items or ())])
    store = evidence_store()
    store.get_case(case_id)  # an unknown case is a usage error before the key is asked for
    signer = operator_signer()
    with build_renderer(find_browser(browser)) as render:
        result = export_case(
            store,
            case_id,
            out=out,
            recipient=recipient,
            reason=reason,
            items=selected,
            force=force,
            signer=signer,
            render=render,
        )
    console.print(f"Exported case {result.case_id} to {result.recipient}: {result.path}")
    console.print(f"  items:        {', '.join(result.items)}")
    console.print(f"  members:      {result.members} ({result.size:,} bytes, stored)")
    console.print(
        f"  custody head: entry {result.head_seq} ({result.head_sha256}), the export's own"
    )
    console.print(f"  check it:     python -m chain_of_custody verify {result.path}")


def _split(items: list[str]) -> list[str] | None:
    """``--items A --items B`` and ``--items A,B`` alike."""
    if not items:
        return None
    return [part.strip() for value in items for part in value.split(",") if part.strip()]
