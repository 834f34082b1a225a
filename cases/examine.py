"""Verify whatever an examiner names: an item or case of the evidence home by ID, a
folder, or a bundle — and log the examination where the evidence lives in the home.

An item or case of the home is examined against its own custody log and, when a signing
key is at hand, the examination is logged as a ``verified`` entry (FORMAT.md §10);
anything else — a folder copied out of the home, a bundle — is verified read-only, as
``python -m chain_of_custody verify`` would, and never written to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chain_of_custody.bundle import verify_bundle
from chain_of_custody.custody import line_sha256, split_log
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.hashing import sha256_bytes
from chain_of_custody.item import ITEMS_DIR_NAME, MANIFEST_NAME
from chain_of_custody.regular import read_regular_file
from chain_of_custody.report import (
    AGAINST_STEP,
    Check,
    Examined,
    Verdict,
    case_verdict,
    examine_path,
    item_verdict,
    verdict,
)
from chain_of_custody.signing import Signer
from chain_of_custody.verify import (
    ItemReport,
    is_case_dir,
    is_item_dir,
    verify_case,
    verify_item,
)

from .case import is_case_id, is_item_id
from .custody import CUSTODY_FILE, append_event, read_log_bytes

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
from .store import CASE_FILE, EvidenceStore

__all__ = ["Target", "TargetExamination", "against_bundle", "resolve_target", "verify_target"]

TargetKind = Literal["item", "case", "bundle", "wacz"]


@dataclass(frozen=True)
class Target:
    """What a name given to ``verify`` means: its kind, its path, and its case in the
    home (None for a folder outside the home, or a bundle)."""

    kind: TargetKind
    path: Path
    case_id: str | None = None
    item_id: str | None = None

    @property
    def in_home(self) -> bool:
        return self.case_id is not None


@dataclass(frozen=True)
class TargetExamination:
    """A verification's checks, what it was, and the ``verified`` entry if one was logged."""

    target: Target
    verdict: Verdict
    examined: Examined
    entry: dict[str, Any] | None


def resolve_target(store: EvidenceStore, name: str) -> Target:
    """An item ID or case ID of the home, else a path (item folder, case folder, bundle).

    Raises UsageError when the name is none of them.
    """
    if is_item_id(name) and not os.path.exists(name):
        case_id, item_dir = store.find_item(name)
        return Target("item", item_dir, case_id, name)
    if is_case_id(name) and (store.home / name / CASE_FILE).is_file() and not os.path.exists(name):
        return Target("case", store.case_dir(name), name)
    path = Path(name)
    if path.suffix.lower() == ".wacz":
        return Target("wacz", path)
    if path.is_file() or path.suffix.lower() == ".zip":
        return Target("bundle", path)
    if is_item_dir(path):
        home_case = _home_case_of(store, path, depth=2)
        return Target("item", path, home_case, path.name if home_case else None)
    if is_case_dir(path):
        return Target("case", path, _home_case_of(store, path, depth=0))
    if not path.exists():
        raise UsageError(
            f"no item, case, folder or bundle named {name!r} (evidence home {store.home})",
            hint="give an item ID, a case ID, an item or case folder, or a bundle .zip",
        )
    raise UsageError(
        f"{path} is neither an item folder (with manifest.json), a case folder (with items/ "
        "or custody.jsonl) nor a bundle (.zip)"
    )


def _home_case_of(store: EvidenceStore, path: Path, *, depth: int) -> str | None:
    """The case of the home that ``path`` is (depth 0) or is an item of (depth 2), if any."""
    real = Path(os.path.realpath(path))
    home = Path(os.path.realpath(store.home))
    case_dir = real.parents[depth - 1] if depth else real
    if depth and real.parent.name != ITEMS_DIR_NAME:
        return None
    if case_dir.parent != home or not (case_dir / CASE_FILE).is_file():
        return None
    return case_dir.name if is_case_id(case_dir.name) else None


def verify_target(
    store: EvidenceStore,
    name: str,
    *,
    trusted: Collection[str] | None,
    signer: Signer | None,
    against: Path | None = None,
    tsa_roots: Sequence[Certificate] | None = None,
) -> TargetExamination:
    """Verify what ``name`` names; log a ``verified`` entry when it lives in the home and
    ``signer`` is given. The checks decide the outcome, logged or not.

    ``against`` (a bundle this case was exported in) adds step 12: the home's log must
    still hold, unchanged, the custody head the bundle recorded (:func:`against_bundle`).
    Only a case of the home can be held to a bundle: anything else is a UsageError.
    """
    target = resolve_target(store, name)
    if against is not None and (target.kind != "case" or not target.in_home):
        raise UsageError(
            f"--against checks a case of the evidence home against a bundle; {name!r} is not one",
            hint="give the case ID: osint-capture verify CASE_ID --against FILE.zip",
        )
    if not target.in_home:
        examined = examine_path(target.path, trusted, tsa_roots)
        return TargetExamination(target, examined.verdict, examined, None)
    assert target.case_id is not None
    log = store.case_dir(target.case_id) / CUSTODY_FILE
    if not log.is_file():
        raise IntegrityError(f"case {target.case_id} has no custody log ({log} is missing)")
    if target.kind == "item":
        item = verify_item(
            target.path, trusted_fingerprints=trusted or None, custody_log=log, tsa_roots=tsa_roots
        )
        examined = Examined("item", item, item_verdict(item, str(target.path)))
        details = _item_details(item, target.path)
    else:
        case = verify_case(target.path, trusted_fingerprints=trusted or None, tsa_roots=tsa_roots)
        checked = case_verdict(case, str(target.path))
        if against is not None:
            assert target.case_id is not None
            step = against_bundle(store, target.case_id, against, trusted=trusted)
            checked = verdict(checked.target, "case", (*checked.checks, step))
        examined = Examined("case", case, checked)
        details = _case_details(examined.verdict, case.items)
        if against is not None:
            details["against"] = against.name
    entry = None
    if signer is not None:
        entry = append_event(
            store.case_dir(target.case_id),
            case_id=target.case_id,
            actor=signer.operator,
            action="verified",
            item_id=target.item_id,
            details=details,
            signer=signer,
        )
    return TargetExamination(target, examined.verdict, examined, entry)


def _item_details(report: ItemReport, item_dir: Path) -> dict[str, Any]:
    details: dict[str, Any] = {
        "ok": report.ok,
        "failed_steps": [step.number for step in report.steps if not step.ok],
    }
    # The manifest as verification read it: a regular file, never through a link.
    with contextlib.suppress(OSError):
        details["manifest_sha256"] = sha256_bytes(read_regular_file(item_dir / MANIFEST_NAME))
    return details


def _case_details(verdict: Verdict, items: Collection[ItemReport]) -> dict[str, Any]:
    return {
        "ok": verdict.ok,
        "scope": "case",
        "items": sorted(item.item_id for item in items),
        "failed_items": sorted(item.item_id for item in items if not item.ok),
        "failed_steps": sorted({c.step for c in verdict.checks if not c.ok}),
    }


def against_bundle(
    store: EvidenceStore, case_id: str, bundle: Path, *, trusted: Collection[str] | None
) -> Check:
    """Step 12: the home's custody log still holds the head ``bundle`` recorded.

    The bundle is verified first (it must pass, and be this case's); then the entry at
    the recorded sequence number must be in the home's log with the recorded hash.
    Because every entry is chained to the one before, that entry matching means every
    entry up to it is as it was at the export. A log cut back, rolled back to an older
    head, or rewritten since fails. Raises UsageError when ``bundle`` does not exist.
    """
    number, name = AGAINST_STEP
    target = str(store.case_dir(case_id) / CUSTODY_FILE)

    def failed(why: str) -> Check:
        return Check(number, name, target, False, why)

    report = verify_bundle(bundle, trusted_fingerprints=trusted or None)
    manifest = report.manifest
    if manifest is None or not manifest.present or manifest.head_seq is None:
        return failed(f"{bundle.name} has no bundle manifest, so it records no custody head")
    if not report.ok:
        first = report.problems[0] if report.problems else "see `verify` of the bundle"
        return failed(f"{bundle.name} does not verify itself, so its head proves nothing: {first}")
    if manifest.case_id != case_id:
        return failed(f"{bundle.name} is a bundle of case {manifest.case_id}, not {case_id}")
    seq, recorded = manifest.head_seq, manifest.head_sha256
    lines, _ = split_log(read_log_bytes(store.case_dir(case_id), case_id=case_id))
    if len(lines) < seq:
        return failed(
            f"the home's log has {len(lines)} entries, but {bundle.name} recorded entry {seq} "
            f"({recorded}) at its export: the log was cut back or rolled back since"
        )
    if line_sha256(lines[seq - 1]) != recorded:
        return failed(
            f"entry {seq} of the home's log is not the entry {bundle.name} recorded at its "
            f"export ({recorded}): the log was rewritten since"
        )
    return Check(
        number,
        name,
        target,
        True,
        f"entry {seq} is the head {bundle.name} recorded ({recorded}); the log holds "
        f"{len(lines)} entries",
    )
