"""``osint-capture export CASE_ID --out FILE.zip --recipient NAME``: a bundle for a prosecutor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from osint_capture.cli_common import console, evidence_store, operator_signer, tsa_from_options

if TYPE_CHECKING:
    from cases.store import EvidenceStore

__all__ = ["export"]


def export(
    case_id: Annotated[str, typer.Argument(help="The case to export (open or closed).")],
    out: Annotated[
        Path,
        typer.Option("--out", help="The bundle to write (FILE.zip; FILE.wacz with --format wacz)."),
    ],
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
    tsa: Annotated[
        list[str] | None,
        typer.Option(
            "--tsa",
            help="RFC 3161 TSA URL to stamp the bundle's custody head (repeatable; default "
            "$OSINT_CAPTURE_TSA). It learns a hash and your address.",
        ),
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-cert",
            help="PEM certificates the TSA's reply must chain to (default "
            "$OSINT_CAPTURE_TSA_CERTS).",
        ),
    ] = None,
    tsa_timeout: Annotated[
        float, typer.Option("--tsa-timeout", help="Longest wait for each TSA, seconds.")
    ] = 10.0,
    package_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="zip: the bundle (default); wacz: a signed WACZ 1.1.1 package of the "
            "items' WARCs, for web-archive tools (--out FILE.wacz).",
        ),
    ] = "zip",
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
    if package_format not in ("zip", "wacz"):
        raise UsageError(f"--format must be zip or wacz, not {package_format!r}")
    store = evidence_store()
    store.get_case(case_id)  # an unknown case is a usage error before the key is asked for
    if package_format == "wacz":
        if tsa or tsa_cert:
            raise UsageError("--tsa and --tsa-cert stamp a bundle; a WACZ export takes neither")
        _export_wacz(store, case_id, out, recipient, reason, selected, force)
        return
    tsa_config = tsa_from_options(tsa, tsa_cert, tsa_timeout)
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
            tsa=tsa_config,
        )
    console.print(f"Exported case {result.case_id} to {result.recipient}: {result.path}")
    console.print(f"  items:        {', '.join(result.items)}")
    console.print(f"  members:      {result.members} ({result.size:,} bytes, stored)")
    console.print(
        f"  custody head: entry {result.head_seq} ({result.head_sha256}), the export's own"
    )
    stamped = "custody.head.tsr, " if result.head_stamped else "not timestamped: "
    console.print(f"  head stamp:   {stamped}{result.head_stamp}")
    console.print(f"  check it:     python -m chain_of_custody verify {result.path}")


def _export_wacz(
    store: EvidenceStore,
    case_id: str,
    out: Path,
    recipient: str,
    reason: str | None,
    selected: list[str] | None,
    force: bool,
) -> None:
    from cases.wacz import export_wacz
    from chain_of_custody.wacz import WACZ_VERSION

    result = export_wacz(
        store,
        case_id,
        out=out,
        recipient=recipient,
        reason=reason,
        items=selected,
        force=force,
        signer=operator_signer(),
    )
    console.print(f"Exported case {result.case_id} to {result.recipient}: {result.path}")
    console.print(f"  format:       WACZ {WACZ_VERSION}, signed by key {result.fingerprint}")
    console.print(f"  items:        {', '.join(result.items)}")
    console.print(f"  members:      {result.members} ({result.size:,} bytes, stored)")
    console.print(f"  datapackage:  sha256:{result.datapackage_sha256}")
    console.print(f"  custody:      entry {result.entry['seq']} (exported)")
    console.print(f"  check it:     python -m chain_of_custody verify {result.path}")


def _split(items: list[str]) -> list[str] | None:
    """``--items A --items B`` and ``--items A,B`` alike."""
    if not items:
        return None
    return [part.strip() for value in items for part in value.split(",") if part.strip()]
