"""``python -m chain_of_custody verify TARGET [--trust FP ...] [--trusted-key PEM ...]
[--tsa-root PEM ...] [--json]``

TARGET is an item folder (``…/items/ITEM_ID``), a case folder (then its custody log once
and every item against it), a bundle (``.zip``, read in a private temporary folder) or a
WACZ package (``.wacz``, read the same way).
Read-only, always. Exit status: 0 everything verifies, 1 an integrity failure, 2 a usage
error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from chain_of_custody.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_USAGE,
    OsintCaptureError,
    UsageError,
)
from chain_of_custody.report import Check, examine_path, not_timestamped
from chain_of_custody.signing import fingerprint_of_key_file
from chain_of_custody.verify import CaseReport, ItemReport, normalize_trusted
from chain_of_custody.wacz import WaczReport

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = ["main"]

_PROG = "python -m chain_of_custody"


class _Parser(argparse.ArgumentParser):
    # argparse prints a usage block and exits; the contract here is one stderr line, code 2.
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


class _ArgumentError(Exception):
    pass


def _parser() -> _Parser:
    parser = _Parser(prog=_PROG, description="Verify captured evidence offline.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    verify = commands.add_parser(
        "verify",
        help="verify an item, a whole case or a bundle",
        description="Verify an item folder, a case folder and all its items, or a bundle.",
    )
    verify.add_argument(
        "path", type=Path, help="item folder, case folder, bundle (.zip) or WACZ (.wacz)"
    )
    verify.add_argument(
        "--trust",
        action="append",
        metavar="FINGERPRINT",
        help=(
            "accept only signatures by this key (repeatable; 64 hex digits). Without it, "
            "every custody entry and custody.head must be signed by the key that opened "
            "the case; with it, by trusted keys only (that key included)"
        ),
    )
    verify.add_argument(
        "--trusted-key",
        action="append",
        metavar="PUB.pem",
        help="trust the public key in this file, as `keys export` writes it (repeatable)",
    )
    verify.add_argument(
        "--tsa-root",
        action="append",
        metavar="ROOT.pem",
        help=(
            "RFC 3161 timestamps must chain to a certificate in this PEM file (repeatable); "
            "without it, to the root a reply carries, reported as weaker"
        ),
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except _ArgumentError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        trusted = trusted_keys(args.trust, args.trusted_key)
        roots = tsa_roots(args.tsa_root)
        return _verify(args.path, trusted, roots, as_json=args.json)
    except OsintCaptureError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def trusted_keys(
    fingerprints: Sequence[str] | None, key_files: Sequence[str] | None
) -> frozenset[str] | None:
    """The fingerprints of ``--trust`` and ``--trusted-key`` together (None: neither given)."""
    if not fingerprints and not key_files:
        return None
    trusted = set(normalize_trusted(list(fingerprints or ())) or ())
    for path in key_files or ():
        try:
            trusted.add(fingerprint_of_key_file(path))
        except ValueError as exc:
            raise UsageError(f"--trusted-key: {exc}") from None
    return frozenset(trusted)


def tsa_roots(paths: Sequence[str] | None) -> tuple[Certificate, ...] | None:
    """The certificates of ``--tsa-root`` (None: not given)."""
    if not paths:
        return None
    from chain_of_custody.timestamp import load_certificates

    return load_certificates(paths, option="--tsa-root")


def _verify(
    path: Path,
    trusted: frozenset[str] | None,
    roots: Sequence[Certificate] | None = None,
    *,
    as_json: bool,
) -> int:
    examined = examine_path(path, trusted, roots)
    if as_json:
        document = examined.verdict.to_dict()
        if isinstance(examined.report, WaczReport):
            unstamped: Sequence[str] = ()  # a WACZ carries no item timestamps
        elif not isinstance(examined.report, ItemReport | CaseReport):
            unstamped = (
                () if examined.report.case is None else not_timestamped(examined.report.case)
            )
        else:
            unstamped = not_timestamped(examined.report)
        document["not_timestamped"] = list(unstamped)
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK if examined.verdict.ok else EXIT_INTEGRITY
    report = examined.report
    if isinstance(report, ItemReport):
        _print_item(report)
        print("VERIFIED" if report.ok else "FAILED")
    elif isinstance(report, CaseReport):
        _print_case(report)
    elif isinstance(report, WaczReport):
        print(f"wacz {path}")
        for check in examined.verdict.checks:
            print(f"  [{_mark(check)}] {check.step}. {check.check}: {check.detail}")
        print("VERIFIED" if examined.verdict.ok else "FAILED")
    else:
        bundle_check = examined.verdict.checks[0]
        print(f"bundle {path}")
        print(f"  [{_mark(bundle_check)}] {bundle_check.step}. {bundle_check.check}: ", end="")
        print(bundle_check.detail)
        for problem in report.member_problems[3:]:
            print(f"         {problem}")
        for check in examined.verdict.checks[1:]:
            if check.step == 11:
                print(f"  [{_mark(check)}] {check.step}. {check.check}: {check.detail}")
        if report.case is not None:
            _print_case(report.case)
        print("VERIFIED" if examined.verdict.ok else "FAILED")
    return EXIT_OK if examined.verdict.ok else EXIT_INTEGRITY


def _mark(check: Check) -> str:
    return "skip" if check.skipped and check.ok else (" ok " if check.ok else "FAIL")


def _print_item(report: ItemReport) -> None:
    print(f"item {report.item_id}  ({report.path})")
    for step in report.steps:
        mark = "skip" if step.skipped and step.ok else (" ok " if step.ok else "FAIL")
        print(f"  [{mark}] {step.number}. {step.name}: {step.detail}")
        for problem in step.problems[3:]:
            print(f"         {problem}")
    if not report.timestamped:
        print("  [ -- ] not timestamped (no manifest.json.sig.tsr; not a failure)")


def _print_case(report: CaseReport) -> None:
    print(f"case {report.case_id}  ({report.path})")
    facts = report.facts
    if facts is not None:
        # From the signed case-opened entry, not from case.json.
        print(f"  title: {facts.title}")
        print(f"  category: {facts.category}; investigator: {facts.investigator}")
        print(f"  authority: {facts.authority}")
        print(f"  opened {facts.opened_at} by key {facts.opened_by}")
        print(f"  status: closed {facts.closed_at}" if facts.closed else "  status: open")
    if report.chain is not None:
        state = "ok" if report.chain.ok else "FAILED"
        print(f"  custody log: {report.chain.entries} entries, chain {state}")
        for warning in report.chain.warnings:
            print(f"    warning: {warning}")
    stamp_problems = {p for s in report.head_stamps for p in s.problems}
    for problem in report.problems:
        if problem not in stamp_problems:
            print(f"  problem: {problem}")
    for stamp in report.head_stamps:
        print(f"  [{' ok ' if stamp.ok else 'FAIL'}] {stamp.number}. {stamp.name}: {stamp.detail}")
    for item in report.items:
        _print_item(item)
    failed = sum(1 for item in report.items if not item.ok)
    verdict = "VERIFIED" if report.ok else "FAILED"
    print(
        f"{verdict}: {len(report.items)} item(s), {failed} failed, "
        f"{len(report.problems)} case problem(s)"
    )


if __name__ == "__main__":
    sys.exit(main())
