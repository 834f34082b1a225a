"""What every command of the CLI shares: the console, the evidence home, the signer."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from chain_of_custody.errors import NoSigningKey

if TYPE_CHECKING:
    from cases.store import EvidenceStore
    from cases.timestamping import TsaConfig
    from chain_of_custody.signing import Signer

__all__ = [
    "CliState",
    "console",
    "evidence_store",
    "operator_signer",
    "signer_if_any",
    "tsa_from_options",
]

# markup off: titles, URLs and "[complete]" are data, never Rich markup.
console = Console(highlight=False, soft_wrap=True, markup=False)


class CliState:
    home: Path | None = None


def evidence_store() -> EvidenceStore:
    from cases.store import EvidenceStore, resolve_home

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
    from cases.store import resolve_home
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


def tsa_from_options(
    urls: list[str] | None, certs: list[Path] | None, timeout_s: float
) -> TsaConfig | None:
    """The TSAs from ``--tsa``/``--tsa-cert``, else ``OSINT_CAPTURE_TSA`` (URLs separated
    by spaces) and ``OSINT_CAPTURE_TSA_CERTS`` (PEM files separated by ``:``, as in PATH).
    None when neither names a TSA: then nothing is sent anywhere."""
    chosen = list(urls or ()) or os.environ.get("OSINT_CAPTURE_TSA", "").split()
    files: list[str | Path] = list(certs or ())
    if not files:
        files = [p for p in os.environ.get("OSINT_CAPTURE_TSA_CERTS", "").split(os.pathsep) if p]
    if not files and not any(url.strip() for url in chosen):
        return None  # as tsa_config says, without importing it before every capture
    from cases.timestamping import tsa_config

    return tsa_config(chosen, files, timeout_s)
