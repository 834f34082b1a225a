"""A one-line account of an item for listings (``case show``, ``verify``).

It is read from the manifest without verifying it: a listing must work for a damaged item
too, and says "(manifest unreadable)" rather than fail. Whether an item is what was
captured is for :mod:`chain_of_custody.verify` to say, never for a summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.errors import IntegrityError
from chain_of_custody.item import MANIFEST_NAME, load_manifest
from chain_of_custody.regular import read_regular_file

__all__ = ["ItemSummary", "item_summary"]

_UNREADABLE = "(manifest unreadable)"


@dataclass(frozen=True)
class ItemSummary:
    """What a listing shows of an item; ``status`` is None when the manifest is unreadable.

    ``allow_private_network`` is None for an unreadable manifest (as ``verify --json``
    reports it), otherwise whether the capture was made with that lab-only switch.
    """

    status: str | None
    url: str | None
    allow_private_network: bool | None
    noarchive: bool = False
    noindex: bool = False

    @property
    def readable(self) -> bool:
        return self.status is not None

    def line(self) -> str:
        """``<status>  <url>`` followed by flags such as ``[lab only: ...]``, ``[noindex]``."""
        if not self.readable:
            return _UNREADABLE
        flags = ""
        if self.allow_private_network:
            flags += "  [lab only: --allow-private-network]"
        robots = (("noarchive", self.noarchive), ("noindex", self.noindex))
        flags += "".join(f"  [{name}]" for name, present in robots if present)
        return f"{self.status}  {self.url}{flags}"


def _section(provenance: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    # Provenance contents are not part of the checked format: a listing tolerates any shape.
    value = provenance.get(name)
    return value if isinstance(value, Mapping) else {}


def item_summary(item_dir: Path) -> ItemSummary:
    """The summary of the item in ``item_dir``, from its ``manifest.json``.

    Any manifest that is not one (not a regular file, say a link or a FIFO, which is
    never followed nor read; not JSON; JSON of another shape, such as ``[1]``) is
    summarised as unreadable: a listing never fails on hostile evidence.
    """
    try:
        manifest = load_manifest(read_regular_file(item_dir / MANIFEST_NAME))
    except (OSError, IntegrityError):
        return ItemSummary(status=None, url=None, allow_private_network=None)
    provenance: Mapping[str, Any] = manifest["provenance"]
    robots = _section(provenance, "robots")
    url = provenance.get("final_url") or provenance.get("requested_url")
    return ItemSummary(
        status=str(manifest["status"]),
        url=None if url is None else str(url),
        allow_private_network=bool(_section(provenance, "access").get("allow_private_network")),
        noarchive=bool(robots.get("noarchive")),
        noindex=bool(robots.get("noindex")),
    )
