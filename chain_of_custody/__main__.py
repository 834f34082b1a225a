"""``python -m chain_of_custody verify PATH [--trust FINGERPRINT ...] [--json]``

PATH is an item directory (``…/items/ITEM_ID``) or a case directory (then every item and
the case's custody log). Exit status: 0 everything verifies, 1 an integrity failure,
2 a usage error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from chain_of_custody.errors import EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE, OsintCaptureError
from chain_of_custody.verify import (
    CaseReport,
    ItemReport,
    is_case_dir,
    is_item_dir,
    verify_case,
    verify_item,
)

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
        help="verify an item or a whole case",
        description="Verify an item directory, or a case directory and all its items.",
    )
    verify.add_argument("path", type=Path, help="item directory or case directory")
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
        return _verify(args.path, args.trust, as_json=args.json)
    except OsintCaptureError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _verify(path: Path, trust: list[str] | None, *, as_json: bool) -> int:
    report: ItemReport | CaseReport
    if is_item_dir(path):
        report = verify_item(path, trusted_fingerprints=trust)
    elif is_case_dir(path):
        report = verify_case(path, trusted_fingerprints=trust)
    elif not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return EXIT_USAGE
    else:
        print(
            f"error: {path} is neither an item directory (with manifest.json) "
            "nor a case directory (with items/ or custody.jsonl)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif isinstance(report, ItemReport):
        _print_item(report)
        print("VERIFIED" if report.ok else "FAILED")
    else:
        _print_case(report)
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def _print_item(report: ItemReport) -> None:
    print(f"item {report.item_id}  ({report.path})")
    for step in report.steps:
        mark = "skip" if step.skipped and step.ok else (" ok " if step.ok else "FAIL")
        print(f"  [{mark}] {step.number}. {step.name}: {step.detail}")
        for problem in step.problems[3:]:
            print(f"         {problem}")


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
    for problem in report.problems:
        print(f"  problem: {problem}")
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
