"""``osint-capture replay TARGET``: see a capture as it was, offline, in ReplayWeb.page."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from osint_capture.cli_common import console, evidence_store

__all__ = ["replay"]


def replay(
    target: Annotated[
        str,
        typer.Argument(help="An item ID, an item folder, a bundle (.zip) or a WACZ (.wacz)."),
    ],
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (default: any free port).")
    ] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the address in the system's browser.")
    ] = False,
) -> None:
    """Serve the capture on 127.0.0.1 from its files alone, until Ctrl-C.

    Nothing is fetched from the live web: a request the archive cannot answer fails.
    """
    from chain_of_custody.errors import UsageError
    from osint_capture.replay import ReplayServer, open_source, replay_assets

    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0-65535, not {port}")
    assets = replay_assets()
    with open_source(evidence_store(), target) as source:
        try:
            server = ReplayServer(source, assets, port=port)
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        with server:
            console.print(f"Replaying {source.kind} {source.name} with ReplayWeb.page")
            for page in source.pages:
                console.print(f"  page: {page.url} ({page.ts})")
            console.print(f"Open {server.url}  (Ctrl-C to stop)")
            if open_browser:
                import webbrowser

                webbrowser.open(server.url)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:  # Ctrl-C is how replay is meant to end
                console.print("Stopped.")
