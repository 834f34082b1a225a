"""What every command of the CLI shares: the console, the evidence home, the signer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cases.store import EvidenceStore, resolve_home
from chain_of_custody.errors import NoSigningKey
from chain_of_custody.signing import Signer

__all__ = ["CliState", "console", "evidence_store", "operator_signer", "signer_if_any"]

# markup off: titles, URLs and "[complete]" are data, never Rich markup.
console = Console(highlight=False, soft_wrap=True, markup=False)


class CliState:
    home: Path | None = None


def evidence_store() -> EvidenceStore:
    return EvidenceStore(resolve_home(CliState.home))


def _ask_passphrase(info: Any) -> str:
    if not sys.stdin.isatty():
        raise NoSigningKey(
            "no passphrase for the signing key",
            hint="set OSINT_CAPTURE_PASSPHRASE or run from a terminal to be asked",
        )
    answer: str = typer.prompt(f"Passphrase for {info.operator}'s signing key", hide_input=True)
    return answer


def operator_signer() -> Signer:
    from osint_capture import keys

    # Raises with a hint naming `keys init` when there is no key, and refuses a key
    # folder inside the evidence home.
    return keys.signer_for(resolve_home(CliState.home), _ask_passphrase)


def signer_if_any() -> tuple[Signer | None, str]:
    """The signer, or None and why (no key, no passphrase): an examination needs none."""
    try:
        return operator_signer(), ""
    except NoSigningKey as exc:
        return None, exc.message
