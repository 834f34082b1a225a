"""A verification's outcome as a list of checks: what ``--json`` prints and tables show.

Each check is one numbered step with the file or folder it looked at (its *target*):
steps 1-7 for each item (:data:`chain_of_custody.verify.STEP_NAMES`), then, for a case,
step 8 (its custody log and signed head) and step 9 (the case folder holds what the log
records, and nothing else); for a bundle, step 10 (its members are safe and agree with
its ``SHA256SUMS``) and step 11 (its signed bundle manifest) before the case's; and for
``osint-capture verify CASE --against BUNDLE``, step 12 (the home's log still holds the
head the bundle recorded). The JSON form::

    {"ok": bool, "target": str, "kind": "item" | "case" | "bundle",
     "checks": [{"step": int, "check": str, "target": str, "ok": bool, "detail": str}]}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chain_of_custody.custody import CUSTODY_LOG_NAME, HEAD_NAME
from chain_of_custody.errors import UsageError
from chain_of_custody.item import ITEMS_DIR_NAME
from chain_of_custody.verify import (
    HEAD_STAMP_STEP,
    CaseReport,
    ItemReport,
    is_case_dir,
    is_item_dir,
    verify_case,
    verify_item,
)

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from chain_of_custody.bundle import BundleReport
    from chain_of_custody.wacz import WaczReport

__all__ = [
    "AGAINST_STEP",
    "BUNDLE_MANIFEST_STEP",
    "BUNDLE_STEP",
    "CASE_STEPS",
    "Check",
    "Examined",
    "Verdict",
    "bundle_verdict",
    "case_verdict",
    "examine_path",
    "item_verdict",
    "not_timestamped",
    "verdict",
    "wacz_verdict",
]

Kind = Literal["item", "case", "bundle", "wacz"]
CASE_STEPS = {
    8: "custody log and signed head verify",
    9: "the case folder holds what its log records, and nothing else",
}
BUNDLE_STEP = (10, "bundle members are safe and agree with SHA256SUMS")
BUNDLE_MANIFEST_STEP = (11, "bundle manifest is signed and lists every member")
AGAINST_STEP = (12, "the home's custody log still holds the head recorded in the bundle")


@dataclass(frozen=True)
class Check:
    """One numbered check of one target."""

    step: int
    check: str
    target: str
    ok: bool
    detail: str
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "check": self.check,
            "target": self.target,
            "ok": self.ok,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    """Every check of a target; ``ok`` only if each one is."""

    ok: bool
    target: str
    kind: Kind
    checks: tuple[Check, ...]

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "kind": self.kind,
            "checks": [c.to_dict() for c in self.checks],
        }


def verdict(target: str, kind: Kind, checks: Iterable[Check]) -> Verdict:
    listed = tuple(checks)
    return Verdict(ok=all(c.ok for c in listed), target=target, kind=kind, checks=listed)


def _item_checks(report: ItemReport, target: str) -> list[Check]:
    # Every problem, not the first few the step's own detail keeps: nothing found is hidden.
    return [
        Check(
            step.number,
            step.name,
            target,
            step.ok,
            "; ".join(step.problems) if step.problems else step.detail,
            step.skipped,
        )
        for step in report.steps
    ]


def item_verdict(report: ItemReport, target: str) -> Verdict:
    """The checks of one item folder."""
    return verdict(target, "item", _item_checks(report, target))


def _summarise(good: str, problems: Sequence[str]) -> str:
    return "; ".join(problems) if problems else good


def case_checks(report: CaseReport, target: str) -> list[Check]:
    """Steps 8 and 9 of a case, step 14 for each custody head stamp it holds, then steps
    1-7 (and 13, for a stamped item) of each of its items."""
    stamp_problems = {p for s in report.head_stamps for p in s.problems}
    log_problems = [
        p
        for p in report.problems
        if p.startswith((CUSTODY_LOG_NAME, HEAD_NAME)) and p not in stamp_problems
    ]
    other = [p for p in report.problems if p not in log_problems and p not in stamp_problems]
    if report.chain is None:
        log_good = ""
    else:
        facts = report.facts
        log_good = (
            f"{report.chain.entries} entries chain from the case's genesis; signed head agrees"
        )
        if facts is not None:
            log_good += (
                f"; case {facts.case_id} ({facts.category}), authority: {facts.authority}, "
                f"opened {facts.opened_at}" + (", closed" if facts.closed else ", open")
            )
    base = target.rstrip("/")
    checks = [
        Check(
            8,
            CASE_STEPS[8],
            f"{base}/{CUSTODY_LOG_NAME}",
            not log_problems and report.chain is not None,
            _summarise(log_good, log_problems),
        ),
        Check(
            9,
            CASE_STEPS[9],
            f"{base}/{ITEMS_DIR_NAME}",
            not other,
            _summarise(f"{len(report.items)} item(s), each recorded as captured", other),
        ),
    ]
    number, name = HEAD_STAMP_STEP
    checks.extend(
        Check(number, name, f"{base}/{stamp.detail.split(':', 1)[0]}", stamp.ok, stamp.detail)
        for stamp in report.head_stamps
    )
    for item in report.items:
        checks.extend(_item_checks(item, f"{base}/{ITEMS_DIR_NAME}/{item.item_id}"))
    return checks


def not_timestamped(report: ItemReport | CaseReport) -> tuple[str, ...]:
    """The item IDs without a stamp ("not timestamped", which is not a failure)."""
    items = (report,) if isinstance(report, ItemReport) else report.items
    return tuple(item.item_id for item in items if not item.timestamped)


def case_verdict(report: CaseReport, target: str) -> Verdict:
    """The checks of a case folder."""
    return verdict(target, "case", case_checks(report, target))


def bundle_verdict(report: BundleReport, target: str) -> Verdict:
    """The checks of a bundle: its members (step 10), then the case inside it."""
    number, name = BUNDLE_STEP
    checks = [
        Check(
            number,
            name,
            target,
            not report.member_problems,
            _summarise(
                f"{report.members} members, all safe"
                + (
                    f"; {report.checksums} SHA256SUMS line(s) agree"
                    if report.checksums is not None
                    else "; no SHA256SUMS"
                ),
                report.member_problems,
            ),
        )
    ]
    manifest = report.manifest
    if manifest is not None:
        number, name = BUNDLE_MANIFEST_STEP
        if not manifest.present:
            good = "no bundle manifest (not made by `osint-capture export`): nothing to check"
        else:
            good = (
                f"signed by key {manifest.signer}; {manifest.files} file(s) listed, all "
                f"present and matching; released to {manifest.recipient}; items "
                f"{', '.join(manifest.items)}; custody head {manifest.head_seq} "
                f"({manifest.head_sha256})"
            )
        checks.append(
            Check(
                number,
                name,
                f"{target.rstrip('/')}/bundle-manifest.json",
                manifest.ok,
                _summarise(good, manifest.problems),
                skipped=not manifest.present,
            )
        )
    if report.case is not None:
        checks.extend(case_checks(report.case, target))
    return verdict(target, "bundle", checks)


@dataclass(frozen=True)
class Examined:
    """What was verified at a path: its kind, the full report and the checks."""

    kind: Kind
    report: ItemReport | CaseReport | BundleReport | WaczReport
    verdict: Verdict


def wacz_verdict(report: WaczReport, target: str) -> Verdict:
    """The checks of a WACZ package: steps 20-22 (chain_of_custody.wacz)."""
    checks = [Check(s.number, s.name, s.target, s.ok, s.detail, s.skipped) for s in report.steps]
    return verdict(target, "wacz", checks)


def examine_path(
    path: Path,
    trusted: Collection[str] | None = None,
    tsa_roots: Sequence[Certificate] | None = None,
) -> Examined:
    """Verify whatever ``path`` is, read-only: an item folder, a case folder or a bundle.

    ``tsa_roots``: the roots timestamps must chain to (None: the replies' own, weaker).
    Raises UsageError when it is none of them (or does not exist).
    """
    target = str(path)
    if path.suffix.lower() == ".wacz":
        from chain_of_custody.wacz import verify_wacz

        package = verify_wacz(path, trusted_fingerprints=trusted)
        return Examined("wacz", package, wacz_verdict(package, target))
    if path.is_file() or path.suffix.lower() == ".zip":
        from chain_of_custody.bundle import verify_bundle

        bundle = verify_bundle(path, trusted_fingerprints=trusted, tsa_roots=tsa_roots)
        return Examined("bundle", bundle, bundle_verdict(bundle, target))
    if is_item_dir(path):
        item = verify_item(path, trusted_fingerprints=trusted, tsa_roots=tsa_roots)
        return Examined("item", item, item_verdict(item, target))
    if is_case_dir(path):
        case = verify_case(path, trusted_fingerprints=trusted, tsa_roots=tsa_roots)
        return Examined("case", case, case_verdict(case, target))
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    raise UsageError(
        f"{path} is neither an item folder (with manifest.json), a case folder (with items/ "
        "or custody.jsonl) nor a bundle (.zip)"
    )
